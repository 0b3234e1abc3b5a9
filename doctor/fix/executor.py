"""The executor: RBAC preflight, then units of changes applied under the lease, each
redeployed, verified by running its checks again, and rolled back when the rollout fails or the
checks do not improve. Unfinished units of a run that died are finished first (`recover`).

Every applied action, redeploy, rollout, verdict and rollback is reported through `emit` (one
JSON line each on stdout for cron logs) and changed objects get a Kubernetes Event.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from doctor.config import RunConfig
from doctor.fix import rollout
from doctor.fix.cluster import Cluster, now, timestamp
from doctor.fix.journal import (
    ABORTED,
    FAILED,
    REDEPLOYING,
    ROLLED_BACK,
    UNFINISHED,
    VERIFIED,
    Journal,
    RunRecord,
    UnitRecord,
    WriteRecord,
)
from doctor.fix.model import (
    APPLIED,
    BLOCKED,
    CREATE,
    DENIED,
    DISRUPTIVE,
    MANUAL_STEPS,
    PATCH,
    PLANNED,
    REDEPLOY,
    SKIPPED,
    AccessCheck,
    Action,
    FixOptions,
    ObjectRef,
)
from doctor.fix.patch import guarded, reverse, version_of
from doctor.fix.permissions import MACHINERY, machinery_names
from doctor.kube import KubeError
from doctor.model import Status
from doctor.snapshot.redact import redact

if TYPE_CHECKING:
    from checks import Check

Emit = Callable[..., None]  # emit(event, **fields)
RUN_ANNOTATION = "registry-doctor.io/run"


# Which actions may be applied

def select(actions: Iterable[Action], options: FixOptions) -> list[Action]:
    """Skip what the options leave out (optional actions of checks not named by --fix-only,
    disruptive ones without --allow-disruptive) and a change to fields another action of the
    plan already changes."""
    chosen: list[Action] = []
    for action in actions:
        if action.state == PLANNED and action.optional and action.check not in options.only:
            action = action.moved(SKIPPED, f"optional: applied only with --fix-only "
                                  f"{action.check}")
        elif action.state == PLANNED and action.risk == DISRUPTIVE \
                and not options.allow_disruptive:
            action = action.moved(SKIPPED, "disruptive: applied only with --allow-disruptive")
        elif action.state == PLANNED and (rival := _rival(action, chosen)) is not None:
            action = action.moved(SKIPPED, f"changes fields {rival.id} changes: fix one at a "
                                  "time (--fix-only)")
        chosen.append(action)
    return together(chosen)


def _rival(action: Action, earlier: list[Action]) -> Action | None:
    """An earlier planned action changing the same fields of the same object."""
    paths = [c.path for c in action.changes]
    for other in earlier:
        if other.state == PLANNED and other.target == action.target and any(
                a[:len(b)] == b or b[:len(a)] == a for a in paths
                for b in (c.path for c in other.changes)):
            return other
    return None


def required_access(action: Action) -> list[AccessCheck]:
    """The SelfSubjectAccessReviews an action's writes need."""
    found = []
    target = action.target
    if action.operation == PATCH and target:
        found.append(AccessCheck("patch", target.group, target.resource, target.namespace,
                                 target.name))
    elif action.operation == CREATE and target:
        found.append(AccessCheck("create", target.group, target.resource, target.namespace))
    workload = action.redeploy
    if workload and workload.kind == "DeploymentConfig":
        found += [AccessCheck("create", workload.group, "deploymentconfigs/instantiate",
                              workload.namespace, workload.name),
                  AccessCheck("get", "", "replicationcontrollers", workload.namespace),
                  AccessCheck("list", "", "pods", workload.namespace)]
    elif workload:
        found.append(AccessCheck("patch", workload.group, workload.resource, workload.namespace,
                                 workload.name))
    return found


def machinery_access(namespace: str) -> list[AccessCheck]:
    """What every applying run does besides its actions (asking RBAC itself aside)."""
    return [AccessCheck(verb, p.group, p.resource, namespace, name)
            for p in MACHINERY if not p.cluster_scoped for verb in p.verbs
            for name in machinery_names(p)]


def preflight(cluster: Cluster, options: FixOptions, actions: list[Action],
              machinery: list[AccessCheck], runs: list[RunRecord] | None,
              journal: Journal) -> list[Action]:
    """Ask RBAC about every write, look for reasons not to redeploy (paused, rollout in
    progress, cooldown), and mark what may not or cannot be applied. A check's actions stand
    or fall together."""
    asked: dict[AccessCheck, AccessCheck] = {}
    blockers: dict[ObjectRef, str | None] = {}
    refused_machinery = "; ".join(m.describe() for m in machinery if not m.allowed)
    marked = []
    for action in actions:
        if action.operation in (PATCH, CREATE, REDEPLOY):
            wanted = required_access(action)
            for check in wanted:
                if check not in asked:
                    asked[check] = cluster.allowed(check)
            action = replace(action, access=tuple(asked[c] for c in wanted))
        workload = action.redeploy
        if action.state == PLANNED and workload is not None and workload not in blockers:
            blockers[workload] = rollout.blocker(cluster, workload) or \
                _cooldown(journal, workload, runs, options)
        if action.state == PLANNED:
            action = _judged(action, refused_machinery, blockers.get(workload))
        marked.append(action)
    return together(marked)


def _judged(action: Action, refused_machinery: str, blocker: str | None) -> Action:
    refused = [a for a in action.access if not a.allowed]
    if refused:
        return action.moved(DENIED, "not permitted: " + "; ".join(
            a.describe() + (f" ({a.reason})" if a.allowed is None else "") for a in refused))
    if refused_machinery:
        return action.moved(DENIED, f"registry-doctor itself may not: {refused_machinery}")
    if blocker:
        return action.moved(BLOCKED, blocker)
    return action


def together(actions: list[Action]) -> list[Action]:
    """Skip every planned action of a check one of whose required actions cannot be applied:
    half a fix would not verify."""
    stopped = {a.check: a for a in actions
               if not a.optional and a.state not in (PLANNED, MANUAL_STEPS)}
    return [a.moved(SKIPPED, f"not applied: {stopped[a.check].id} is {stopped[a.check].state}")
            if a.state == PLANNED and a.check in stopped else a for a in actions]


def _cooldown(journal: Journal, workload: ObjectRef, runs: list[RunRecord] | None,
              options: FixOptions) -> str | None:
    if runs is None:
        return f"cooldown of {workload.short} unknown: {journal.ref.short} cannot be read"
    last = journal.last_redeploy(workload, runs)
    if last is None:
        return None
    until = last[0] + timedelta(seconds=options.cooldown_seconds)
    if now() >= until:
        return None
    return (f"cooldown: run {last[1]} redeployed {workload.short} at {timestamp(last[0])}; "
            f"not again before {timestamp(until)} (--cooldown)")


# Applying

@dataclass
class Unit:
    actions: list[Action]
    record: UnitRecord


def units(actions: list[Action], statuses: dict[str, str]) -> list[Unit]:
    """Planned actions grouped into units: actions of one check, on one object or redeploying
    one workload stand or fall together (the connected groups of those relations)."""
    eligible = [a for a in actions if a.state == PLANNED]
    parent = list(range(len(eligible)))

    def root(index: int) -> int:
        while parent[index] != index:
            index = parent[index]
        return index

    first: dict[tuple[str, Any], int] = {}
    for index, action in enumerate(eligible):
        for key in (("check", action.check), ("object", action.target),
                    ("workload", action.redeploy)):
            if key[1] is None:
                continue
            if key in first:
                parent[root(index)] = root(first[key])
            else:
                first[key] = index
    groups: dict[int, list[Action]] = {}
    for index, action in enumerate(eligible):
        groups.setdefault(root(index), []).append(action)
    return [Unit(group, _record(group, statuses)) for group in groups.values()]


def _record(actions: list[Action], statuses: dict[str, str]) -> UnitRecord:
    writes: dict[ObjectRef, WriteRecord] = {}
    for action in actions:
        if action.operation not in (PATCH, CREATE) or action.target is None:
            continue
        write = writes.get(action.target)
        if write is None:
            # A patch's backup is for people (rollback uses the changes): no secret values in
            # it, not even the OAuthClient's secret (a create's is the body to create).
            backup = redact(action.before or {}) if action.operation == PATCH else action.after
            write = writes[action.target] = WriteRecord(
                action.target, action.operation, [], backup=copy.deepcopy(backup))
        write.actions.append(action.id)
        write.changes.extend(action.changes)
    workloads = sorted({a.redeploy for a in actions if a.redeploy},
                       key=lambda r: (r.kind, r.name))
    ordered = sorted(writes.values(), key=lambda w: (w.operation != CREATE,
                                                     w.object in workloads))
    checks = sorted({a.check for a in actions})
    return UnitRecord(checks, {c: statuses.get(c, "") for c in checks}, workloads, ordered,
                      actions=[a.id for a in actions])


@dataclass
class Executor:
    cluster: Cluster
    config: RunConfig
    options: FixOptions
    checks: Sequence[Check]
    journal: Journal
    run: RunRecord
    emit: Emit
    tick: Callable[[], None] = lambda: None  # renews the lease
    states: dict[str, tuple[str, str]] = field(default_factory=dict)  # action id -> outcome
    rollouts: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, actions: list[Action], statuses: dict[str, str]) -> list[Action]:
        for unit in units(actions, statuses):
            self.tick()
            self.run.units.append(unit.record)
            self._apply_unit(unit)
        return [a.moved(*self.states[a.id]) if a.id in self.states else a for a in actions]

    def _apply_unit(self, unit: Unit) -> None:
        record = unit.record
        try:
            record.baselines = {_key(w): rollout.version(self._existing(w))
                                for w in record.workloads}
        except KubeError as error:
            return self._abort(record, unit.actions, str(error))
        self.journal.save(self.run)
        done: list[WriteRecord] = []
        for write in record.writes:
            try:
                written = self._write(write)
            except KubeError as error:
                self._undo(done)
                return self._abort(record, unit.actions, f"{write.object}: {error}")
            done.append(write)
            for action_id in write.actions:
                self._applied(action_id, written)
        self._finish(record, [a.id for a in unit.actions if a.operation == REDEPLOY], self.run)

    def _write(self, write: WriteRecord) -> dict[str, Any]:
        if write.operation == CREATE:
            body = copy.deepcopy(write.backup) or {}
            body["metadata"].setdefault("annotations", {})[RUN_ANNOTATION] = self.run.run
            return self.cluster.create(write.object, body)
        return self.cluster.patch(write.object, write.patch())

    def _applied(self, action_id: str, obj: dict[str, Any]) -> None:
        self.states[action_id] = (APPLIED, "")
        self.emit("action", action=action_id, object=_describe(obj), result=APPLIED,
                  resourceVersion=obj["metadata"].get("resourceVersion"))
        self.cluster.record_event(obj, self.config.namespace, "RegistryDoctorFix",
                                  f"{action_id} applied (run {self.run.run})")

    def _abort(self, record: UnitRecord, actions: list[Action], why: str) -> None:
        record.state, record.message = ABORTED, f"not applied: {why}"
        self.journal.save(self.run)
        for action in actions:
            self.states[action.id] = ("failed", record.message)
            self.emit("action", action=action.id, result="failed", message=record.message)

    def _finish(self, record: UnitRecord, redeploy_actions: list[str], run: RunRecord) -> None:
        """Redeploy, wait, verify; roll back when the rollout or the checks say so."""
        if record.workloads:
            record.state, record.redeployed_at = REDEPLOYING, timestamp()
            self.journal.save(run)
        for workload in record.workloads:
            started, outcome = self._roll_out(workload, record.baselines.get(_key(workload), 0),
                                              record, f"for {', '.join(record.checks)}")
            if started is not None:
                for action_id in redeploy_actions:
                    self.states[action_id] = (APPLIED, started.name)
            if not outcome.ok:
                if started is not None and outcome.phase == "TimedOut":
                    rollout.cancel(self.cluster, started, outcome.message,
                                   self.options.poll_seconds)
                return self.roll_back(record, run, outcome.message)
        verdicts = self._verify(record)
        failing = [f"{c} {before} -> {after}" for c, before, after, ok in verdicts if not ok]
        if failing:
            return self.roll_back(record, run, "the fix did not hold: " + ", ".join(failing))
        record.state = VERIFIED
        record.message = ", ".join(f"{c} {b} -> {a}" for c, b, a, _ in verdicts)
        self.journal.save(run)
        self.emit("unit", checks=record.checks, result=VERIFIED, message=record.message)

    def _roll_out(self, workload: ObjectRef, baseline: int, record: UnitRecord,
                  why: str) -> tuple[rollout.Rollout | None, rollout.Outcome]:
        """Redeploy (or follow the rollout already carrying the unit's changes) and wait."""
        try:
            started = rollout.start(self.cluster, workload, baseline, self.options.poll_seconds,
                                    _writes_to(record, workload))
        except KubeError as error:
            outcome = rollout.Outcome(False, "Refused", f"redeploy of {workload.short} "
                                      f"refused: {error}")
            self.emit("redeploy", workload=str(workload), result="refused",
                      message=outcome.message)
            return None, outcome
        how = "started" if started.started else "followed (already started)"
        self.emit("redeploy", workload=str(workload), rollout=started.name, result=how,
                  message=why)
        self.cluster.record_event(self._existing(workload), self.config.namespace,
                                  "RegistryDoctorRedeploy",
                                  f"{started.name} {how} {why} (run {self.run.run})")
        return started, self._wait(started)

    def _wait(self, started: rollout.Rollout) -> rollout.Outcome:
        outcome = rollout.wait(self.cluster, started, self.options.rollout_timeout,
                               self.options.poll_seconds, self.tick)
        self.rollouts.append({"rollout": started.name, **outcome.to_dict()})
        self.emit("rollout", rollout=started.name, result=outcome.phase, message=outcome.message)
        return outcome

    def _verify(self, record: UnitRecord) -> list[tuple[str, str, str, bool]]:
        """The unit's checks, run again (those of a dead run too, whatever this run selected);
        a check that no longer exists cannot vouch for its fix."""
        from checks import all_checks
        from doctor import engine
        from doctor.snapshot.live import LiveSource

        known = {**all_checks(), **{c.meta.id: c for c in self.checks}}
        verdicts = [(c, record.statuses.get(c, ""), "unknown check", False)
                    for c in record.checks if c not in known]
        chosen = [known[c] for c in record.checks if c in known]
        report = engine.run(self.config, chosen, LiveSource(self.cluster.client))
        for result in report.results:
            before = record.statuses.get(result.check, "")
            ok = improved(before, result.status)
            verdicts.append((result.check, before, result.status.value, ok))
            self.emit("verify", check=result.check, before=before, after=result.status.value,
                      result="improved" if ok else "not improved", summary=result.summary)
        return verdicts

    # Rolling back

    def roll_back(self, record: UnitRecord, run: RunRecord, reason: str) -> None:
        """Restore every object the unit changed (unless changed again since), redeploy the
        workloads a rollout of the fix reached, and record the outcome. A unit that only
        redeployed has nothing to restore and is not redeployed again."""
        current = {_key(w): rollout.version(self._existing(w)) for w in record.workloads}
        failures = self._undo(record.writes)
        patched = any(w.operation == PATCH for w in record.writes)
        for workload in record.workloads:
            version = current[_key(workload)]
            if patched and version > record.baselines.get(_key(workload), version):
                _, outcome = self._roll_out(workload, version, record, "to roll back")
                if not outcome.ok:
                    failures.append(outcome.message)
        record.state = FAILED if failures else ROLLED_BACK
        record.message = f"{reason}; " + ("rollback incomplete: " + "; ".join(failures)
                                          if failures else "rolled back")
        self.journal.save(run)
        for action_id in record.actions:
            self.states[action_id] = (record.state, record.message)
        self.emit("unit", checks=record.checks, result=record.state, message=record.message)

    def _undo(self, writes: list[WriteRecord]) -> list[str]:
        """Reverse patches, newest first, each guarded by the fields still holding what the fix
        wrote; created objects are kept (a claim may already hold data)."""
        failures = []
        for write in reversed(writes):
            if write.operation == CREATE:
                self.emit("rollback", object=str(write.object), result="kept",
                          message="created by the fix; delete it by hand if unwanted")
                continue
            current = self.cluster.get(write.object)
            state = version_of(current, write.changes) if current else "gone"
            if state == "old":
                continue
            if state != "new":
                failures.append(f"{write.object} was changed since the fix ({state}): left as "
                                "it is")
                continue
            try:
                restored = self.cluster.patch(write.object, guarded(
                    reverse(write.changes), str(current["metadata"]["resourceVersion"])))
            except KubeError as error:
                failures.append(f"{write.object}: {error}")
                continue
            self.emit("rollback", object=str(write.object), result="restored")
            self.cluster.record_event(restored, self.config.namespace, "RegistryDoctorRollback",
                                      f"restored by registry-doctor (run {self.run.run})",
                                      warning=True)
        return failures

    # Recovering the units of a run that died

    def recover(self, runs: list[RunRecord]) -> list[str]:
        """Finish or undo the unfinished units of earlier runs (this run holds the lease, so
        their runs are gone). Answers what was done, one line per unit."""
        done = []
        for run in runs:
            if run.run == self.run.run:
                continue
            for unit in run.units:
                if unit.state in UNFINISHED:
                    self.emit("recover", unfinished=run.run, checks=unit.checks, found=unit.state)
                    self._recover(unit, run)
                    done.append(f"run {run.run} {', '.join(unit.checks)}: {unit.state}: "
                                f"{unit.message}")
        return done

    def _recover(self, unit: UnitRecord, run: RunRecord) -> None:
        states = [self._state_of(w) for w in unit.writes]
        if any(s not in ("old", "new") for s in states):
            unit.state = FAILED
            unit.message = (f"run {run.run} was interrupted and its objects changed since; "
                            "left as they are: restore from its backup by hand if needed")
        elif unit.writes and all(s == "old" for s in states):
            unit.state, unit.message = ABORTED, f"run {run.run} was interrupted before any change"
        elif "old" in states:
            failures = self._undo(unit.writes)
            unit.state = FAILED if failures else ABORTED
            unit.message = (f"run {run.run} was interrupted mid-way: its changes were undone "
                            "(objects it created are kept)") + (
                f", except: {'; '.join(failures)}" if failures else "")
        else:
            return self._finish(unit, [], run)
        self.journal.save(run)

    def _state_of(self, write: WriteRecord) -> str:
        current = self.cluster.get(write.object)
        if write.operation == CREATE:
            return "new" if current is not None else "old"
        return version_of(current, write.changes) if current else "gone"

    def _existing(self, ref: ObjectRef) -> dict[str, Any]:
        found = self.cluster.get(ref)
        if found is None:
            raise KubeError(f"not found: {ref}", 404, "NotFound")
        return found


def improved(before: str, after: Status) -> bool:
    """The fix held: the check passes now, or a crit became a warn."""
    return after in (Status.OK, Status.SKIP) or (before == "crit" and after is Status.WARN)


def _writes_to(record: UnitRecord, workload: ObjectRef) -> bool:
    return any(w.object == workload for w in record.writes)


def _key(ref: ObjectRef) -> str:
    return f"{ref.kind}/{ref.namespace}/{ref.name}"


def _describe(obj: dict[str, Any]) -> str:
    return str(ObjectRef.of(obj))
