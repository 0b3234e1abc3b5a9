"""The planner API: how a check proposes fixes, and how plans are made and put in a report.

A check module may define `plan`, a `Planner` (the `@planner(...)` decorator over a function
`(ctx: PlanContext) -> list[Action]`), next to `META` and `evaluate`. It is called only when the
check failed (warn or crit), and is pure like `evaluate`: it reads `ctx.snapshot`, never the
cluster. The decorator's arguments are the RBAC rules its actions may need
(doctor/fix/permissions.py), from which `registry-doctor permissions` and the Helm chart's Role
are derived.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.fix.model import (
    CREATE,
    DENIED,
    FAILED,
    MANUAL,
    MANUAL_STEPS,
    PATCH,
    REDEPLOY,
    SAFE,
    Action,
    FixOptions,
    ObjectRef,
    Permission,
)
from registry_doctor.doctor.fix.scope import Managed, confine, refused_message
from registry_doctor.doctor.model import Remediation, Report, Result, Status
from registry_doctor.doctor.platform import adapter
from registry_doctor.doctor.snapshot import Snapshot
from registry_doctor.doctor.snapshot.kinds import OPERATOR_CONFIG_NAME
from registry_doctor.doctor.workload import Workload, as_dict

if TYPE_CHECKING:
    from registry_doctor.doctor.check import Check
    from registry_doctor.doctor.platform import Installation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanContext:
    snapshot: Snapshot
    config: RunConfig
    options: FixOptions
    result: Result  # the failing verdict being fixed

    @property
    def check(self) -> str:
        return self.result.check

    @cached_property
    def installation(self) -> Installation:
        """The installation its check judged, read through the planner's declared reads."""
        return self.snapshot.installation()

    def registry(self) -> Workload | None:
        return self.installation.registry

    def console(self) -> Workload | None:
        return self.installation.console

    def findings(self, *markers: str, about: str = "") -> tuple[str, ...]:
        """The failing verdict's warn/crit findings that contain `about` and any of `markers`:
        what an action targets (Action.targets), verified gone after the fix."""
        return tuple(p for p in self.result.problems
                     if about in p and any(m in p for m in markers))

    def patch(self, before: dict[str, Any], after: dict[str, Any], name: str, summary: str, *,
              risk: str = SAFE, redeploy: Workload | None = None,
              notes: Iterable[str] = (), targets: Iterable[str] = (),
              named_by: str = "") -> Action:
        """Change `before` (a snapshot object) into `after`, guarded by its resourceVersion.
        `targets`: the findings it removes (`findings`). `named_by`: where the object's name
        came from when the cluster named it (a pod template, an env value), for the refusal
        doctor.fix.scope gives outside its set."""
        return Action(self.check, name, summary, PATCH, ObjectRef.of(before), risk,
                      _ref(redeploy), before, after, tuple(notes), targets=tuple(targets),
                      named_by=named_by)

    def create(self, obj: dict[str, Any], name: str, summary: str, *, risk: str = SAFE,
               redeploy: Workload | None = None, notes: Iterable[str] = ()) -> Action:
        return Action(self.check, name, summary, CREATE, ObjectRef.of(obj), risk,
                      _ref(redeploy), None, obj, tuple(notes))

    def redeploy(self, workload: Workload, name: str, summary: str, *,
                 notes: Iterable[str] = (), optional: bool = False) -> Action:
        """A rollout of `workload` with nothing changed first (e.g. its template already holds
        the fix but the running pods predate it)."""
        ref = _ref(workload)
        return Action(self.check, name, summary, REDEPLOY, ref, SAFE, ref, notes=tuple(notes),
                      optional=optional)

    @property
    def operated(self) -> bool:
        """An operator owns the registry's configuration (OpenShift 4): fixes are lowered to
        its Config CR (`configure`), never the workload it writes and would revert."""
        return bool(self.installation.owner)

    def configure(self, spec: dict[str, Any], name: str, summary: str, *, risk: str = SAFE,
                  notes: Iterable[str] = (), targets: Iterable[str] = ()) -> Action:
        """An intent lowered for an operated registry: `spec` merged into the operator's
        Config CR spec as a JSON merge patch (RFC 7386: None removes a field). The operator
        rolls the registry out: no redeploy of ours."""
        owner = self.installation.owner
        config = self.snapshot.named("registry-operator-config", OPERATOR_CONFIG_NAME)
        if config is None:
            return self.manual(name, summary, [
                f"{owner} was not found: set spec {spec} there with `oc patch "
                f"{owner.replace('/', ' ')} --type merge`"])
        after = copy.deepcopy(config)
        after["spec"] = merge_patch(as_dict(after.get("spec")), spec)
        return self.patch(config, after, name, summary, risk=risk, targets=targets,
                          notes=[*notes, f"the operator rolls the registry out from {owner}"])

    def refused(self, name: str, target: dict[str, Any], summary: str, named_by: str) -> Action:
        """A change the planner will not propose: its target is outside the configured set
        (doctor.fix.scope says why)."""
        ref = ObjectRef.of(target)
        why = Managed.of(self.config, self.options).refusal(ref) or f"{ref} is not managed"
        return Action(self.check, name, summary, PATCH, ref, named_by=named_by, state=DENIED,
                      message=refused_message(why, named_by))

    def manual(self, name: str, summary: str, steps: Iterable[str], *,
               target: dict[str, Any] | None = None) -> Action:
        return Action(self.check, name, summary, MANUAL, ObjectRef.of(target) if target else None,
                      steps=tuple(steps), state=MANUAL_STEPS)


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`target` with `patch` applied as RFC 7386 says (what `oc patch --type merge` sends)."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict):
            merged[key] = merge_patch(as_dict(merged.get(key)), value)
        else:
            merged[key] = value
    return merged


def _ref(workload: Workload | None) -> ObjectRef | None:
    return ObjectRef.of(workload.obj) if workload is not None else None


PlanFunction = Callable[[PlanContext], list[Action]]


@dataclass(frozen=True)
class Planner:
    function: PlanFunction
    needs: tuple[Permission, ...]
    reads: tuple[str, ...]  # snapshot collections it reads beyond its check's META.kinds

    def __call__(self, ctx: PlanContext) -> list[Action]:
        return self.function(ctx)


def planner(*needs: Permission, reads: Iterable[str] = ()) -> Callable[[PlanFunction], Planner]:
    """Declare a check's planner, the RBAC rules its actions may need and the snapshot
    collections it reads that its check does not."""
    def wrap(function: PlanFunction) -> Planner:
        return Planner(function, tuple(needs), tuple(reads))
    return wrap


def planner_reads(checks: Sequence[Check]) -> set[str]:
    return {k for c in checks if c.plan is not None for k in c.plan.reads}


def make_plan(results: Iterable[Result], snapshot: Snapshot, config: RunConfig,
              options: FixOptions, checks: Sequence[Check]) -> list[Action]:
    """Every action the failing checks propose (only those of `options.only`, when given),
    those touching an object outside the configured set refused (doctor.fix.scope)."""
    by_id = {c.meta.id: c for c in checks if c.plan is not None}
    actions: list[Action] = []
    for result in results:
        check = by_id.get(result.check)
        if check is None or check.plan is None or result.status not in (Status.WARN, Status.CRIT) \
                or (options.only and result.check not in options.only):
            continue
        view = snapshot.for_reader(f"the planner of {check.meta.id}",
                                   (*check.meta.kinds, *check.plan.reads))
        try:
            actions.extend(check.plan(PlanContext(view, config, options, result)))
        except Exception as error:  # a planner bug must not cost the other checks their fixes
            log.exception("planner of %s failed", result.check)
            actions.append(Action(result.check, "plan", "no plan: internal error in its "
                                  f"planner: {type(error).__name__}: {error}", MANUAL,
                                  state=FAILED))
    return confine(adapter(snapshot.platform).lower(actions), config, options)


def attach(report: Report, actions: Iterable[Action], fix: dict[str, Any],
           verdicts: dict[str, tuple[Status, str]] | None = None) -> Report:
    """The report with each result's `remediation.actions` filled in, `fix` set, and the
    statuses and summaries of `verdicts` (check id -> status, summary) imposed."""
    by_check: dict[str, list[dict[str, Any]]] = {}
    for action in actions:
        by_check.setdefault(action.check, []).append(action.to_dict())
    results = []
    for result in report.results:
        if result.check in (verdicts or {}):
            status, summary = verdicts[result.check]  # type: ignore[index]
            result = replace(result, status=status, summary=summary)
        planned = tuple(by_check.get(result.check, ()))
        if planned or result.remediation is not None:
            remediation = result.remediation or Remediation(
                "acted on by --fix: see the actions", f"docs/checks/{result.check}.md")
            result = replace(result, remediation=replace(remediation, actions=planned))
        results.append(result)
    return replace(report, results=tuple(results), fix=fix)
