"""What `registry-doctor check --fix` and `registry-doctor rollback` run; the CLI only parses
options and prints.

`fix`: inspect, plan, preflight; then, by the options, stop there (the plan), send the writes
with dryRun=All (server dry run), or take the lease, finish what a dead run left, apply, and
inspect again for the final report.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from doctor import engine
from doctor.config import RunConfig
from doctor.fix.cluster import Cluster, timestamp
from doctor.fix.executor import (
    Executor,
    machinery_access,
    preflight,
    select,
    units,
)
from doctor.fix.journal import FAILED, ROLLED_BACK, UNFINISHED, VERIFIED, Journal, RunRecord
from doctor.fix.lease import Lease, LeaseLost
from doctor.fix.model import CREATE, PLANNED, SKIPPED, VALIDATED, Action, FixOptions
from doctor.fix.model import FAILED as ACTION_FAILED
from doctor.fix.plan import attach, make_plan, planner_reads
from doctor.fix.scope import confine_journal
from doctor.kube import KubeClient, KubeError
from doctor.model import Report, Status
from doctor.snapshot.live import LiveSource

if TYPE_CHECKING:
    from checks import Check

Printer = Callable[[dict[str, Any]], None]  # receives each JSON line


def new_run_id() -> str:
    return f"{timestamp().replace('-', '').replace(':', '')}-{secrets.token_hex(3)}"


class Emitter:
    """Turns executor events into JSON lines: time, run, event, then the event's fields."""

    def __init__(self, run: str, printer: Printer) -> None:
        self.run, self.printer = run, printer

    def __call__(self, event: str, **fields: Any) -> None:
        self.printer({"time": timestamp(), "run": self.run, "event": event, **fields})


@dataclass
class Session:
    """One cluster connection and what was read through it."""

    config: RunConfig
    options: FixOptions
    checks: Sequence[Check]
    client: KubeClient

    def __post_init__(self) -> None:
        self.source = LiveSource(self.client)
        self.cluster = Cluster(self.client, self.config.timeout,
                               dry_run=self.options.server_dry_run)
        self.journal = Journal(self.cluster, self.config.namespace)

    def inspect(self) -> Inspection:
        """Verdicts, the plan with its preflight, and what the preflight found."""
        report, snapshot = engine.inspect(self.config, self.checks, self.source,
                                          planner_reads(self.checks))
        actions = select(make_plan(report.results, snapshot, self.config, self.options,
                                   self.checks), self.options)
        machinery = [self.cluster.allowed(c) for c in machinery_access(self.config.namespace)]
        try:
            runs: list[RunRecord] | None = self.journal.runs()
        except KubeError:
            runs = None
        actions = preflight(self.cluster, self.options, actions, machinery, runs, self.journal)
        facts = {"machinery": [m.to_dict() for m in machinery],
                 "journal": self.journal.problems}
        return Inspection(report, actions, facts, runs or [])


@dataclass
class Inspection:
    report: Report
    actions: list[Action]
    facts: dict[str, Any]  # what the preflight found, for the report's `fix`
    runs: list[RunRecord]  # the journal

    @property
    def work(self) -> bool:
        """Something to apply, or a dead run's unit to finish."""
        return any(a.state == PLANNED for a in self.actions) or any(
            u.state in UNFINISHED for r in self.runs for u in r.units)


def fix(config: RunConfig, options: FixOptions, checks: Sequence[Check],
        printer: Printer) -> Report:
    """The report of `check --fix` (raises KubeError when the cluster cannot be reached)."""
    if config.from_dir is not None:
        report, snapshot = engine.inspect(config, checks, also=planner_reads(checks))
        actions = select(make_plan(report.results, snapshot, config, options, checks), options)
        return attach(report, actions, {"mode": "plan", "note": "planned from a dump: RBAC, "
                                        "rollout state and cooldowns were not checked"})
    session = Session(config, options, checks, KubeClient(config.kubeconfig, config.context))
    found = session.inspect()
    if options.server_dry_run:
        return attach(found.report, _dry_run(session.cluster, found.actions),
                      {"mode": "server-dry-run", **found.facts})
    if not options.apply or not found.work:
        return attach(found.report, found.actions,
                      {"mode": "apply" if options.apply else "plan", **found.facts})
    return apply_plan(session, found, printer)


def _dry_run(cluster: Cluster, actions: list[Action]) -> list[Action]:
    """Send each planned write with dryRun=All: the server validates and admits, stores nothing."""
    outcome: dict[str, tuple[str, str]] = {}
    for unit in units(actions, {}):
        for write in unit.record.writes:
            try:
                if write.operation == CREATE:
                    cluster.create(write.object, write.backup or {})
                else:
                    cluster.patch(write.object, write.patch())
                result = (VALIDATED, "accepted by the API server (dryRun=All)")
            except KubeError as error:
                result = (ACTION_FAILED, f"refused by the API server: {error}")
            outcome.update((a, result) for a in write.actions)
    return [a.moved(*outcome[a.id]) if a.id in outcome else
            a.moved(a.state, "a redeploy has no dry run: not sent")
            if a.state == PLANNED else a for a in actions]


def apply_plan(session: Session, found: Inspection, printer: Printer) -> Report:
    """Take the lease, finish what dead runs left, apply the plan (planned again if that
    changed the cluster), and report what the cluster looks like afterwards."""
    config, options = session.config, session.options
    report, actions, facts = found.report, found.actions, found.facts
    run = RunRecord(new_run_id(), f"{socket.gethostname()} pid {os.getpid()}", timestamp())
    emit = Emitter(run.run, printer)
    lease = Lease(session.cluster, config.namespace, f"{run.holder} run {run.run}",
                  options.lease_seconds)
    holder = lease.acquire()
    if holder is not None:
        emit("lock", result="held by another run", holder=holder.describe())
        why = f"not applied: lease {lease.ref} is held by {holder.describe()}"
        actions = [a.moved(SKIPPED, why) if a.state == PLANNED else a for a in actions]
        return attach(report, actions, {"mode": "apply", "run": run.run, **facts,
                                        "lease": {"acquired": False,
                                                  "holder": holder.describe()}})
    emit("lock", result="acquired", lease=str(lease.ref))
    executor = Executor(session.cluster, config, options, session.checks, session.journal, run,
                        emit, tick=lease.renew)
    recovered: list[str] = []
    interrupted = ""
    try:
        runs = session.journal.runs()
        for refused in confine_journal(runs, config, options):
            session.journal.save(refused)
        recovered = executor.recover(runs)
        if recovered:  # the cluster changed: plan again from what it is now
            again = session.inspect()
            report, actions, facts = again.report, again.actions, again.facts
        actions = executor.apply(actions, {r.check: r.status.value for r in report.results})
    except (LeaseLost, KubeError) as error:
        interrupted = str(error)
        emit("interrupted", message=interrupted)
    finally:
        lease.release()
    final = engine.run(config, session.checks, session.source)
    summary = {"mode": "apply", "run": run.run, **facts,
               "lease": {"acquired": True, "name": str(lease.ref)},
               "units": [{"checks": u.checks, "workloads": [w.short for w in u.workloads],
                          "state": u.state, "message": u.message} for u in run.units],
               "rollouts": executor.rollouts, "recovered": recovered,
               "writes": session.cluster.writes}
    if interrupted:
        summary["interrupted"] = interrupted
    return attach(final, actions, summary, _failed_verdicts(final, run))


def _failed_verdicts(final: Report, run: RunRecord) -> dict[str, tuple[Status, str]]:
    """Checks whose fix was rolled back (or could not be) are crit, saying so."""
    verdicts = {}
    for unit in run.units:
        if unit.state not in (ROLLED_BACK, FAILED):
            continue
        for check in unit.checks:
            result = final.result(check)
            now = f"; now: {result.status.value}: {result.summary}" if result else ""
            verdicts[check] = (Status.CRIT, f"fix {unit.state}: {unit.message}{now}")
    return verdicts


@dataclass(frozen=True)
class RollbackResult:
    code: int
    lines: list[str]


def rollback(config: RunConfig, options: FixOptions, checks: Sequence[Check], run_id: str | None,
             printer: Printer) -> RollbackResult:
    """Undo the standing (verified) changes of the newest run that has some, or of `run_id`."""
    session = Session(config, options, checks, KubeClient(config.kubeconfig, config.context))
    runs = session.journal.runs()
    confine_journal(runs, config, options)  # only reported: the lease is not held here
    chosen = [r for r in runs if (r.run == run_id if run_id else
                                  any(u.state == VERIFIED for u in r.units))]
    if not chosen:
        what = f"run {run_id} is not in" if run_id else "no standing change in"
        return RollbackResult(0 if not run_id else 64, [f"nothing to roll back: {what} "
                                                        f"{session.journal.ref}"])
    run = chosen[-1]
    standing = [u for u in run.units if u.state == VERIFIED]
    lines = [f"run {run.run} ({run.started}, {run.holder}):"]
    for unit in standing:
        lines.append(f"  {', '.join(unit.checks)}: restore " + ", ".join(
            str(w.object) for w in unit.writes) + "".join(
            f"; redeploy {w.short}" for w in unit.workloads if unit.redeployed_at))
    if not options.apply:
        return RollbackResult(0, [*lines, "(add --yes to roll back)"])
    emit = Emitter(run.run, printer)
    lease = Lease(session.cluster, config.namespace,
                  f"{socket.gethostname()} pid {os.getpid()} rollback of {run.run}",
                  options.lease_seconds)
    holder = lease.acquire()
    if holder is not None:
        return RollbackResult(3, [f"not rolled back: lease {lease.ref} is held by "
                                  f"{holder.describe()}"])
    executor = Executor(session.cluster, config, options, checks, session.journal, run, emit,
                        tick=lease.renew)
    try:
        for unit in reversed(standing):
            executor.roll_back(unit, run, "rolled back by `registry-doctor rollback`")
    finally:
        lease.release()
    failed = [u for u in standing if u.state != ROLLED_BACK]
    lines += [f"  {', '.join(u.checks)}: {u.state}: {u.message}" for u in standing]
    return RollbackResult(2 if failed else 0, lines)
