"""The executor: RBAC preflight, then units of changes applied under the lease, each
redeployed, verified by running its checks again, and rolled back when the rollout fails or the
fix did not hold. Unfinished units of a run that died are finished first (`recover`).

A unit ends in the run that starts it: a write answered with an error is judged by reading the
object again (the change is there, or not, or something else is), and any error after the
writes rolls the unit back. Only a journal that cannot be written, a lost lease or a killed
process leave a unit unfinished, for the next run to settle from what its objects hold.

Every applied action, redeploy, rollout, verdict and rollback is reported through `emit` (one
JSON line each on stdout for cron logs) and changed objects get a Kubernetes Event.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.fix import rollout
from registry_doctor.doctor.fix.cluster import Cluster, now, timestamp
from registry_doctor.doctor.fix.journal import (
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
from registry_doctor.doctor.fix.model import (
    APPLIED,
    BLOCKED,
    CREATE,
    DENIED,
    DISRUPTIVE,
    MANUAL,
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
from registry_doctor.doctor.fix.patch import guarded, reverse, value_at, version_of
from registry_doctor.doctor.fix.permissions import LOCKS, MACHINERY, machinery_names
from registry_doctor.doctor.fix.scope import OPERATOR_CONFIG
from registry_doctor.doctor.kube import KubeError
from registry_doctor.doctor.model import Result, Status
from registry_doctor.doctor.snapshot.redact import redact

if TYPE_CHECKING:
    from registry_doctor.doctor.check import Check

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


def machinery_access(namespace: str, lock: str | None = None) -> list[AccessCheck]:
    """What every applying run does besides its actions (asking RBAC itself aside); `lock`:
    the resource the run lock lives in (None: not known, both kinds are asked about)."""
    unused = {p for p in LOCKS if lock is not None and p.resource != lock}
    return [AccessCheck(verb, p.group, p.resource, namespace, name)
            for p in MACHINERY if not p.cluster_scoped and p not in unused for verb in p.verbs
            for name in machinery_names(p)]


def preflight(cluster: Cluster, options: FixOptions, actions: list[Action],
              machinery: list[AccessCheck], runs: list[RunRecord] | None,
              journal: Journal) -> list[Action]:
    """Ask RBAC about every write, look for reasons not to change or redeploy (paused,
    rollout in progress, cooldown, a fix an admin rolled back), and mark what may not or
    cannot be applied. A check's actions stand or fall together."""
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
            try:
                blockers[workload] = rollout.blocker(cluster, workload)
            except KubeError as error:
                blockers[workload] = f"cannot tell whether {workload.short} may be " \
                    f"redeployed: {error}"
        if action.state == PLANNED:
            blocker = blockers.get(workload) if workload else None
            blocker = blocker or _reverted(cluster, action, runs) or \
                _cooldown(journal, action, runs, options)
            action = _judged(action, refused_machinery, blocker)
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


def _cooldown(journal: Journal, action: Action, runs: list[RunRecord] | None,
              options: FixOptions) -> str | None:
    """Any object a run changed (written or redeployed) is not changed again within
    --cooldown: cron must not loop on a fix that does not hold, or fight a person."""
    objects = {r for r in (action.target, action.redeploy) if r is not None}
    if not objects or action.operation == MANUAL:
        return None
    if runs is None:
        return f"cooldown unknown: {journal.ref.short} cannot be read"
    last = journal.last_change(objects, runs)
    if last is None:
        return None
    moment, run, changed = last
    until = moment + timedelta(seconds=options.cooldown_seconds)
    if now() >= until:
        return None
    return (f"cooldown: run {run} changed {changed.short} at {timestamp(moment)}; "
            f"not again before {timestamp(until)} (--cooldown)")


def _reverted(cluster: Cluster, action: Action, runs: list[RunRecord] | None) -> str | None:
    """A fix of this check that an admin rolled back (`registry-doctor rollback`) is not
    applied again while the objects it restored are as the rollback left them."""
    for run in reversed(runs or []):
        for unit in run.units:
            if unit.reverted and action.check in unit.checks and not unit.reverted.get(
                    "cleared") and _unchanged_since(cluster, unit):
                return (f"rolled back by an admin (run {run.run}, at {unit.reverted['at']}): "
                        "not applied again until its objects change or `registry-doctor "
                        f"rollback --clear {run.run}`")
    return None


def _unchanged_since(cluster: Cluster, unit: UnitRecord) -> bool:
    versions = (unit.reverted or {}).get("versions")
    return versions is None or reverted_versions(cluster, unit) in (None, versions)


def reverted_versions(cluster: Cluster, unit: UnitRecord) -> dict[str, str] | None:
    """The versions of the unit's objects, as the admin's rollback leaves them (None: they
    cannot be read; the rollback then holds until cleared): the generation where there is
    one (it counts changes of the spec, not of the status a controller keeps updating), else
    the resourceVersion."""
    versions = {}
    for ref in unit.objects:
        try:
            metadata = (cluster.get(ref) or {}).get("metadata") or {}
        except KubeError:
            return None
        generation = metadata.get("generation")
        versions[_key(ref)] = f"generation {generation}" if generation is not None else \
            f"resourceVersion {metadata.get('resourceVersion')}"
    return versions


# Applying

@dataclass
class Unit:
    actions: list[Action]
    record: UnitRecord


def units(actions: list[Action], results: Sequence[Result]) -> list[Unit]:
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
    verdicts = {r.check: r for r in results}
    return [Unit(group, _record(group, verdicts)) for group in groups.values()]


def _record(actions: list[Action], verdicts: dict[str, Result]) -> UnitRecord:
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
    targets = {c: sorted({t for a in actions if a.check == c for t in a.targets})
               for c in checks}
    return UnitRecord(checks, {c: verdicts[c].status.value if c in verdicts else ""
                               for c in checks}, workloads, ordered,
                      actions=[a.id for a in actions],
                      targets={c: t for c, t in targets.items() if t},
                      problems={c: len(verdicts[c].problems) for c in checks if c in verdicts})


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

    def apply(self, actions: list[Action], results: Sequence[Result]) -> list[Action]:
        """Apply the planned actions unit by unit (`results`: the verdicts they fix)."""
        for unit in units(actions, results):
            self.tick()
            self.cluster.request_timeout()  # the deadline passed: no new unit
            self.run.units.append(unit.record)
            self._apply_unit(unit)
        return [a.moved(*self.states[a.id]) if a.id in self.states else a for a in actions]

    def _apply_unit(self, unit: Unit) -> None:
        record = unit.record
        try:
            record.baselines = {_key(w): rollout.version(self._existing(w))
                                for w in record.workloads}
            record.changed_at = timestamp()
            self.journal.save(self.run)  # the backups, before the first write
        except KubeError as error:
            return self._abandon(record, [], f"before any change: {error}")
        done: list[WriteRecord] = []
        for write in record.writes:
            try:
                written = self._write(write)
            except KubeError as error:
                self.cluster.deadline.grace()  # to find out, and undo, past the deadline too
                state, found = self._read_state(write, self.run.run)
                if state != "new" or found is None:  # not applied: undo what the unit wrote
                    undo = done if state == "old" else [*done, write]
                    return self._abandon(record, undo, f"{write.object}: {error}" + (
                        f"; afterwards found {state}" if state != "old" else ""))
                self.emit("write", object=str(write.object), result="applied",
                          message=f"the server applied it, then answered: {error}")
                written = found
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

    def _read_state(self, write: WriteRecord, run_id: str) -> tuple[str, dict[str, Any] | None]:
        """What the object holds now: `new` (the write is there), `old` (it is not; for a
        create, also an object of that name this run did not make), `mixed` or `gone` (someone
        else changed it), `unknown` (it cannot be read)."""
        try:
            current = self.cluster.get(write.object)
        except KubeError:
            return "unknown", None
        if write.operation == CREATE:
            made_here = current is not None and (current["metadata"].get("annotations") or {}) \
                .get(RUN_ANNOTATION) == run_id
            return ("new" if made_here else "old"), current
        return (version_of(current, write.changes) if current else "gone"), current

    def _applied(self, action_id: str, obj: dict[str, Any]) -> None:
        self.states[action_id] = (APPLIED, "")
        self.emit("action", action=action_id, object=_describe(obj), result=APPLIED,
                  resourceVersion=obj["metadata"].get("resourceVersion"))
        self._event(obj, "RegistryDoctorFix", f"{action_id} applied (run {self.run.run})")

    def _event(self, obj: dict[str, Any], reason: str, message: str,
               warning: bool = False) -> None:
        """Events are the audit trail, not the change: one that cannot be recorded is
        reported and the unit goes on."""
        try:
            self.cluster.record_event(obj, self.config.namespace, reason, message, warning)
        except KubeError as error:
            self.emit("event", reason=reason, result="not recorded", message=str(error))

    def _abandon(self, record: UnitRecord, undo: list[WriteRecord], why: str) -> None:
        """End a unit that could not be applied: undo what it wrote; `aborted` only when
        nothing of it remains on the server, else `failed` saying what remains."""
        self.cluster.deadline.grace()
        failures = self._undo(undo)
        if failures:
            self._end(record, FAILED, f"{why}; undo incomplete: {'; '.join(failures)}")
        else:
            kept = [str(w.object) for w in undo if w.operation == CREATE]
            self._end(record, ABORTED, f"not applied: {why}" + (
                "; what it had written was undone" if undo else "") + (
                f" (kept: {', '.join(kept)}, which it created)" if kept else ""))

    def _end(self, record: UnitRecord, state: str, message: str) -> None:
        record.state, record.message, record.undoing = state, message, None
        self._save(self.run)
        for action_id in record.actions:
            self.states[action_id] = ("failed" if state == ABORTED else state, message)
        self.emit("unit", checks=record.checks, result=state, message=message)

    def _save(self, run: RunRecord) -> None:
        """Record an outcome; when the journal cannot be written the unit stays unfinished
        there, and the next run settles it from what the objects hold."""
        try:
            self.journal.save(run)
        except KubeError as error:
            self.emit("journal", result="not saved", message=str(error))

    def _finish(self, record: UnitRecord, redeploy_actions: list[str], run: RunRecord) -> None:
        """Redeploy, wait, verify; roll back when the rollout or the checks say so, or when
        the cluster cannot be read on the way (the unit never stays half done)."""
        try:
            self._redeploy_and_verify(record, redeploy_actions, run)
        except KubeError as error:
            self.roll_back(record, run, f"interrupted: {error}")

    def _redeploy_and_verify(self, record: UnitRecord, redeploy_actions: list[str],
                             run: RunRecord) -> None:
        if record.workloads:
            record.state, record.redeployed_at = REDEPLOYING, timestamp()
            record.changed_at = record.changed_at or record.redeployed_at
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
        if _through_operator(record):
            return self._verify_operator_config(record, run)
        verdicts = self._verify(record)
        failing = [f"{c} {before} -> {after}" for c, before, after, ok in verdicts if not ok]
        if failing:
            return self.roll_back(record, run, "the fix did not hold: " + ", ".join(failing))
        record.state = VERIFIED
        record.message = ", ".join(f"{c} {b} -> {a}" for c, b, a, _ in verdicts)
        self._save(run)  # unsaved, the next run verifies it again: no reason to undo it
        self.emit("unit", checks=record.checks, result=VERIFIED, message=record.message)

    def _verify_operator_config(self, record: UnitRecord, run: RunRecord) -> None:
        """A change of the operator's Config is verified by re-reading it: the operator rolls
        the registry out on its own time, so the checks judge that on a later run. A Config
        that no longer holds the change (the CRD's validation or the operator dropped it) is
        rolled back."""
        for write in record.writes:
            current = self._existing(write.object)
            lost = [c.pointer for c in write.changes if value_at(current, c.path) != c.new]
            if lost:
                return self.roll_back(record, run, f"{write.object} does not hold the change "
                                      f"at {', '.join(lost)}")
        record.state = VERIFIED
        record.message = (f"{', '.join(str(w.object) for w in record.writes)} holds the change; "
                          "the operator rolls the registry out (the checks judge it on the "
                          "next run)")
        self._save(run)
        self.emit("unit", checks=record.checks, result=VERIFIED, message=record.message)

    def _roll_out(self, workload: ObjectRef, baseline: int, record: UnitRecord,
                  why: str) -> tuple[rollout.Rollout | None, rollout.Outcome]:
        """Redeploy (or follow the rollout already carrying the unit's changes) and wait."""
        try:
            started = rollout.start(self.cluster, workload, baseline, self.options.poll_seconds,
                                    _writes_to(record, workload))
        except KubeError as error:
            started = self._started_anyway(workload, baseline)
            if started is None:
                outcome = rollout.Outcome(False, "Refused", f"redeploy of {workload.short} "
                                          f"refused: {error}")
                self.emit("redeploy", workload=str(workload), result="refused",
                          message=outcome.message)
                return None, outcome
        how = "started" if started.started else "followed (already started)"
        self.emit("redeploy", workload=str(workload), rollout=started.name, result=how,
                  message=why)
        with contextlib.suppress(KubeError):  # the event names the object: skip it unread
            if (current := self.cluster.get(workload)) is not None:
                self._event(current, "RegistryDoctorRedeploy",
                            f"{started.name} {how} {why} (run {self.run.run})")
        return started, self._wait(started)

    def _started_anyway(self, workload: ObjectRef, baseline: int) -> rollout.Rollout | None:
        """The redeploy request failed: did the server start the rollout before failing?"""
        try:
            version = rollout.version(self._existing(workload))
        except KubeError:
            return None
        return rollout.Rollout(workload, version, started=True) if version > baseline else None

    def _wait(self, started: rollout.Rollout) -> rollout.Outcome:
        with self.cluster.deadline.paused():  # bounded by --rollout-timeout instead
            try:
                outcome = rollout.wait(self.cluster, started, self.options.rollout_timeout,
                                       self.options.poll_seconds, self.tick)
            except KubeError as error:
                outcome = rollout.Outcome(False, "Failed", f"{started.name} could not be "
                                          f"followed: {error}")
        self.rollouts.append({"rollout": started.name, **outcome.to_dict()})
        self.emit("rollout", rollout=started.name, result=outcome.phase, message=outcome.message)
        return outcome

    def _verify(self, record: UnitRecord) -> list[tuple[str, str, str, bool]]:
        """The unit's checks, run again (those of a dead run too, whatever this run selected);
        a check that no longer exists cannot vouch for its fix."""
        from registry_doctor.checks import all_checks
        from registry_doctor.doctor import engine
        from registry_doctor.doctor.snapshot.live import LiveSource

        self.tick()  # the lock is renewed around the checks, which may take a while
        known = {**all_checks(), **{c.meta.id: c for c in self.checks}}
        verdicts = [(c, record.statuses.get(c, ""), "unknown check", False)
                    for c in record.checks if c not in known]
        chosen = [known[c] for c in record.checks if c in known]
        budget = replace(self.config, timeout=self.cluster.request_timeout())
        report = engine.run(budget, chosen, LiveSource(self.cluster.client))
        self.tick()
        for result in report.results:
            before = record.statuses.get(result.check, "")
            how = held(record, result)
            verdicts.append((result.check, before, result.status.value, how is not None))
            self.emit("verify", check=result.check, before=before, after=result.status.value,
                      result=how or "not improved", summary=result.summary)
        return verdicts

    # Rolling back

    def roll_back(self, record: UnitRecord, run: RunRecord, reason: str) -> None:
        """Restore every object the unit changed (unless changed again since), redeploy the
        workloads a rollout of the fix reached, and record the outcome. A unit that only
        redeployed has nothing to restore and is not redeployed again. `undoing` is saved
        first: a run that dies here has its rollback finished by the next one."""
        self.cluster.deadline.grace()
        record.undoing = reason
        self._save(run)
        failures: list[str] = []
        current: dict[str, int] = {}
        for workload in record.workloads:  # before the undo: it may trigger a rollout itself
            try:
                current[_key(workload)] = rollout.version(self._existing(workload))
            except KubeError as error:
                failures.append(f"{workload.short}: {error}")
        failures += self._undo(record.writes)
        patched = any(w.operation == PATCH for w in record.writes)
        for workload in record.workloads:
            version = current.get(_key(workload), 0)
            if patched and version > record.baselines.get(_key(workload), version):
                _, outcome = self._roll_out(workload, version, record, "to roll back")
                if not outcome.ok:
                    failures.append(outcome.message)
        record.state = FAILED if failures else ROLLED_BACK
        record.message = f"{reason}; " + ("rollback incomplete: " + "; ".join(failures)
                                          if failures else "rolled back")
        record.undoing = None
        self._save(run)
        for action_id in record.actions:
            self.states[action_id] = (record.state, record.message)
        self.emit("unit", checks=record.checks, result=record.state, message=record.message)

    def _undo(self, writes: list[WriteRecord]) -> list[str]:
        """Reverse patches, newest first, each guarded by the fields still holding what the fix
        wrote; created objects are kept (a claim may already hold data)."""
        return [failure for write in reversed(writes)
                if (failure := self._undo_one(write)) is not None]

    def _undo_one(self, write: WriteRecord) -> str | None:
        if write.operation == CREATE:
            self.emit("rollback", object=str(write.object), result="kept",
                      message="created by the fix; delete it by hand if unwanted")
            return None
        try:
            current = self.cluster.get(write.object)
        except KubeError as error:
            return f"{write.object}: cannot be read to restore it: {error}"
        state = version_of(current, write.changes) if current else "gone"
        if state == "old":
            return None
        if state != "new":
            return f"{write.object} was changed since the fix ({state}): left as it is"
        try:
            restored = self.cluster.patch(write.object, guarded(
                reverse(write.changes), str(current["metadata"]["resourceVersion"])))
        except KubeError as error:
            state, restored = self._read_state(write, self.run.run)
            if state != "old" or restored is None:  # not restored after all
                return f"{write.object}: {error}" + (f" (now {state})" if state != "new" else "")
        self.emit("rollback", object=str(write.object), result="restored")
        self._event(restored, "RegistryDoctorRollback",
                    f"restored by registry-doctor (run {self.run.run})", warning=True)
        return None

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
        if unit.undoing is not None:  # it died rolling back: finish the rollback
            return self.roll_back(unit, run, f"{unit.undoing} (finished after run {run.run} "
                                             "was interrupted)")
        states = [self._read_state(w, run.run)[0] for w in unit.writes]
        if "unknown" in states:
            raise KubeError(f"cannot read the objects of run {run.run}'s unfinished unit "
                            f"({', '.join(unit.checks)}): left for the next run")
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

    def _existing(self, ref: ObjectRef) -> dict[str, Any]:
        found = self.cluster.get(ref)
        if found is None:
            raise KubeError(f"not found: {ref}", 404, "NotFound")
        return found


def improved(before: str, after: Status) -> bool:
    """The check passes now, or a crit became a warn."""
    return after in (Status.OK, Status.SKIP) or (before == "crit" and after is Status.WARN)


def held(record: UnitRecord, result: Result) -> str | None:
    """How the unit's fix held for this check (None: it did not): the check improved, or the
    findings the fix targeted are gone while the check got no worse and found no new problem
    (another finding of the same check may remain: the fix did not claim it)."""
    before = record.statuses.get(result.check, "")
    if improved(before, result.status):
        return "improved"
    targets = record.targets.get(result.check) or []
    if not targets or result.status.value != before or \
            any(t in result.problems for t in targets):
        return None
    if len(result.problems) > record.problems.get(result.check, 0) - len(targets):
        return None
    return "targeted finding fixed"


def _through_operator(record: UnitRecord) -> bool:
    """The unit only changes the operator's Config (OpenShift 4), which rolls out on its own."""
    return bool(record.writes) and not record.workloads and \
        all(w.object.kind == OPERATOR_CONFIG for w in record.writes)


def _writes_to(record: UnitRecord, workload: ObjectRef) -> bool:
    return any(w.object == workload for w in record.writes)


def _key(ref: ObjectRef) -> str:
    return f"{ref.kind}/{ref.namespace}/{ref.name}"


def _describe(obj: dict[str, Any]) -> str:
    return str(ObjectRef.of(obj))
