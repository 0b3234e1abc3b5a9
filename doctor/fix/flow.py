"""What `registry-doctor check --fix` and `registry-doctor rollback` run; the CLI only parses
options and prints.

`fix`: inspect, plan, preflight; then, by the options, stop there (the plan), send the writes
with dryRun=All (server dry run, where the server has it), or take the lock, finish what a
dead run left, apply, and inspect again for the final report. A lock that cannot be taken
costs the fixes, never the verdicts.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.fix.cluster import Cluster, Deadline, timestamp
from registry_doctor.doctor.fix.executor import (
    Executor,
    machinery_access,
    preflight,
    reverted_versions,
    select,
    units,
)
from registry_doctor.doctor.fix.journal import (
    FAILED,
    ROLLED_BACK,
    UNFINISHED,
    VERIFIED,
    Journal,
    RunRecord,
)
from registry_doctor.doctor.fix.lease import Backend, Lease, LeaseLost, backend_for
from registry_doctor.doctor.fix.model import (
    CREATE,
    PLANNED,
    SKIPPED,
    VALIDATED,
    Action,
    FixOptions,
    ObjectRef,
)
from registry_doctor.doctor.fix.model import FAILED as ACTION_FAILED
from registry_doctor.doctor.fix.plan import attach, make_plan, planner_reads
from registry_doctor.doctor.fix.scope import confine_journal
from registry_doctor.doctor.kube import KubeClient, KubeError
from registry_doctor.doctor.model import Report, Status
from registry_doctor.doctor.snapshot.live import LiveSource

if TYPE_CHECKING:
    from registry_doctor.doctor.check import Check

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
        self.config = engine.settle(self.config, self.source)  # the names fixes may touch
        # --timeout bounds the whole run, fixes included (cluster.Deadline)
        self.cluster = Cluster(self.client, self.config.timeout,
                               dry_run=self.options.server_dry_run,
                               deadline=Deadline(self.config.timeout))
        self.journal = Journal(self.cluster, self.config.namespace)
        self.lock: Backend | None = None  # discovered by inspect()

    def budget(self) -> RunConfig:
        """The configuration for one more inspection: what is left of the run's deadline."""
        return replace(self.config, timeout=self.cluster.request_timeout())

    def inspect(self) -> Inspection:
        """Verdicts, the plan with its preflight, and what the preflight found."""
        report, snapshot = engine.inspect(self.budget(), self.checks, self.source,
                                          planner_reads(self.checks))
        actions = select(make_plan(report.results, snapshot, self.config, self.options,
                                   self.checks), self.options)
        try:
            self.lock = backend_for(self.cluster)
        except KubeError:
            self.lock = None  # apply_plan says why the lock cannot be taken
        lock = self.lock.ref(self.config.namespace).resource if self.lock else None
        machinery = [self.cluster.allowed(c)
                     for c in machinery_access(self.config.namespace, lock)]
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
        actions = select(make_plan(report.results, snapshot, snapshot.config, options, checks),
                         options)
        return attach(report, actions, {"mode": "plan", "note": "planned from a dump: RBAC, "
                                        "rollout state and cooldowns were not checked"})
    session = Session(config, options, checks, KubeClient(config.kubeconfig, config.context))
    found = session.inspect()
    if options.server_dry_run:
        actions, refusal = _dry_run(session.cluster, found.actions)
        dry_run = {"server": not refusal} | ({"reason": refusal} if refusal else {})
        return attach(found.report, actions,
                      {"mode": "server-dry-run", **found.facts, "dryRun": dry_run})
    if not options.apply or not found.work:
        return attach(found.report, found.actions,
                      {"mode": "apply" if options.apply else "plan", **found.facts})
    return apply_plan(session, found, printer)


def _dry_run(cluster: Cluster, actions: list[Action]) -> tuple[list[Action], str]:
    """Send each planned write with dryRun=All where the server supports it for that write:
    the server validates and admits, stores nothing. Where it does not (it would apply the
    write), nothing is sent and the action keeps the plan's client-side diff; answers the
    actions and why server dry run was not used, if it was not for some write."""
    outcome: dict[str, tuple[str, str]] = {}
    refusals: list[str] = []
    for unit in units(actions, ()):
        for write in unit.record.writes:
            refusal = _dry_run_refusal(cluster, write.object, write.operation)
            if refusal:
                refusals.append(refusal)
                outcome.update((a, (PLANNED, f"not sent: {refusal}; the diff is the "
                                    "client-side one")) for a in write.actions)
                continue
            try:
                if write.operation == CREATE:
                    cluster.create(write.object, write.backup or {})
                else:
                    cluster.patch(write.object, write.patch())
                result = (VALIDATED, "accepted by the API server (dryRun=All)")
            except KubeError as error:
                result = (ACTION_FAILED, f"refused by the API server: {error}")
            outcome.update((a, result) for a in write.actions)
    moved = [a.moved(*outcome[a.id]) if a.id in outcome else
             a.moved(a.state, "a redeploy has no dry run: not sent")
             if a.state == PLANNED else a for a in actions]
    return moved, "; ".join(dict.fromkeys(refusals))


def _dry_run_refusal(cluster: Cluster, ref: ObjectRef, operation: str) -> str | None:
    try:
        return cluster.dry_run_refusal(ref, "post" if operation == CREATE else "patch")
    except KubeError as error:
        return f"server dry run support unknown ({error})"


def apply_plan(session: Session, found: Inspection, printer: Printer) -> Report:
    """Take the lease, finish what dead runs left, apply the plan (planned again if that
    changed the cluster), and report what the cluster looks like afterwards."""
    config, options = session.config, session.options
    report, actions, facts = found.report, found.actions, found.facts
    run = RunRecord(new_run_id(), f"{socket.gethostname()} pid {os.getpid()}", timestamp())
    emit = Emitter(run.run, printer)
    try:
        lease = Lease(session.cluster, config.namespace, f"{run.holder} run {run.run}",
                      options.lease_seconds, session.lock)
        holder = lease.acquire()
    except KubeError as error:
        emit("lock", result="failed", message=str(error))
        return _not_applied(report, actions, {"mode": "apply", "run": run.run, **facts},
                            f"the run lock could not be taken: {error}",
                            {"acquired": False, "error": str(error)})
    if holder is not None:
        emit("lock", result="held by another run", holder=holder.describe())
        return _not_applied(report, actions, {"mode": "apply", "run": run.run, **facts},
                            f"lock {lease.ref} is held by {holder.describe()}",
                            {"acquired": False, "kind": lease.kind,
                             "holder": holder.describe()})
    emit("lock", result="acquired", lease=str(lease.ref), kind=lease.kind)
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
            lease.renew()
            again = session.inspect()
            lease.renew()
            report, actions, facts = again.report, again.actions, again.facts
        actions = executor.apply(actions, report.results)
    except (LeaseLost, KubeError) as error:
        interrupted = str(error)
        emit("interrupted", message=interrupted)
    finally:
        session.cluster.deadline.grace()  # past the deadline, still give the lease back
        lease.release()
    try:
        final = engine.run(session.budget(), session.checks, session.source)
    except KubeError as error:  # no time left to look again: the verdicts before the fix
        final, interrupted = report, interrupted or f"{error}: verdicts are from before the fix"
    summary = {"mode": "apply", "run": run.run, **facts,
               "lease": {"acquired": True, "name": str(lease.ref), "kind": lease.kind},
               "units": [{"checks": u.checks, "workloads": [w.short for w in u.workloads],
                          "state": u.state, "message": u.message} for u in run.units],
               "rollouts": executor.rollouts, "recovered": recovered,
               "writes": session.cluster.writes}
    if interrupted:
        summary["interrupted"] = interrupted
    return attach(final, actions, summary, _failed_verdicts(final, run))


def _not_applied(report: Report, actions: list[Action], summary: dict[str, Any], why: str,
                 lease: dict[str, Any]) -> Report:
    """The verdicts as inspected, each planned action skipped saying why."""
    actions = [a.moved(SKIPPED, f"not applied: {why}") if a.state == PLANNED else a
               for a in actions]
    return attach(report, actions, {**summary, "lease": lease})


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
             printer: Printer, clear: bool = False) -> RollbackResult:
    """Undo the standing (verified) changes of the newest run that has some, or of `run_id`.
    An undone fix is recorded (`reverted`): later runs plan it but do not apply it again until
    its objects change or `clear` lifts that for `run_id`."""
    session = Session(config, options, checks, KubeClient(config.kubeconfig, config.context))
    config = session.config  # the platform's names where the admin gave none
    runs = session.journal.runs()
    confine_journal(runs, config, options)  # only reported: the lease is not held here
    if clear:
        return _clear(session, runs, run_id)
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
        return RollbackResult(3, [f"not rolled back: lock {lease.ref} is held by "
                                  f"{holder.describe()}"])
    executor = Executor(session.cluster, config, options, checks, session.journal, run, emit,
                        tick=lease.renew)
    try:
        for unit in reversed(standing):
            executor.roll_back(unit, run, "rolled back by `registry-doctor rollback`")
            if unit.state == ROLLED_BACK:  # so that cron does not apply it again
                unit.reverted = {"at": timestamp(), "versions": reverted_versions(
                    session.cluster, unit)}
                session.journal.save(run)
    finally:
        session.cluster.deadline.grace()
        lease.release()
    failed = [u for u in standing if u.state != ROLLED_BACK]
    lines += [f"  {', '.join(u.checks)}: {u.state}: {u.message}" for u in standing]
    return RollbackResult(2 if failed else 0, lines)


def _clear(session: Session, runs: list[RunRecord], run_id: str | None) -> RollbackResult:
    """Let cron apply again the fixes an admin rolled back in `run_id`."""
    run = next((r for r in runs if r.run == run_id), None)
    held = [u for u in (run.units if run else []) if u.reverted and not u.reverted.get("cleared")]
    if run is None or not held:
        return RollbackResult(64, [f"nothing to clear: run {run_id} has no fix rolled back by "
                                   f"`registry-doctor rollback` in {session.journal.ref}"])
    if not session.options.apply:
        return RollbackResult(0, [f"run {run_id}: would let cron apply again: " + ", ".join(
            c for u in held for c in u.checks), "(add --yes to clear)"])
    for unit in held:
        unit.reverted = {**(unit.reverted or {}), "cleared": timestamp()}
    session.journal.save(run)
    return RollbackResult(0, [f"run {run_id}: cron may apply again: " + ", ".join(
        c for u in held for c in u.checks)])
