"""Actions as data: which object a fix changes and how, whether a redeploy follows, how risky
it is, and what the RBAC preflight and the executor made of it (docs/remediation.md)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from registry_doctor.doctor.fix import patch as patching
from registry_doctor.doctor.snapshot.kinds import CATALOGUE
from registry_doctor.doctor.workload import WORKLOAD_COLLECTIONS

SAFE, DISRUPTIVE = "safe", "disruptive"
PATCH, CREATE, REDEPLOY, MANUAL = "patch", "create", "redeploy", "manual"
# What became of an action. `planned`: eligible to be applied; `manual`: steps for a person.
PLANNED, MANUAL_STEPS, SKIPPED = "planned", "manual", "skipped"
DENIED, BLOCKED = "denied", "blocked"
APPLIED, FAILED, ROLLED_BACK, VALIDATED = "applied", "failed", "rolled-back", "dry-run-ok"

_SHORT = {kind: short for kind, short in WORKLOAD_COLLECTIONS.values()} | {
    "Service": "svc", "PersistentVolumeClaim": "pvc", "ReplicationController": "rc"}


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    resource: str  # the plural in the URL
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectRef:
        """The reference of a snapshot object, with the API version the cluster serves (dumps
        of old clusters may say `v1` for OpenShift kinds)."""
        kind = obj["kind"]
        collection = next((c for c in CATALOGUE.values() if c.kind == kind), None)
        if collection is None:
            raise ValueError(f"remediation does not write {kind} objects")
        metadata = obj["metadata"]
        namespace = (metadata.get("namespace") or "default") if collection.namespaced else None
        return cls(collection.api_version, kind, collection.resource, metadata["name"],
                   namespace)

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def short(self) -> str:
        """As `oc` names it: `dc/docker-registry`."""
        return f"{_SHORT.get(self.kind, self.kind.lower())}/{self.name}"

    def __str__(self) -> str:
        return self.short + (f" in {self.namespace}" if self.namespace else "")

    def to_dict(self) -> dict[str, Any]:
        return {"apiVersion": self.api_version, "kind": self.kind, "namespace": self.namespace,
                "name": self.name}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectRef:
        return cls.of({"kind": data["kind"], "metadata": {
            "name": data["name"], "namespace": data.get("namespace")}})


@dataclass(frozen=True)
class Permission:
    """An RBAC rule a planner or the machinery may need (docs/remediation.md derives the Role
    from these)."""

    group: str
    resource: str  # plural, or plural/subresource
    verbs: tuple[str, ...]
    why: str
    cluster_scoped: bool = False
    openshift: bool = False  # only of use on OpenShift (implied by an *.openshift.io group)
    disruptive: bool = False  # only disruptive actions need it (--allow-disruptive)
    # Name symbols (doctor.config, permissions.FIXED_NAMES): RBAC grants these objects only
    # (resourceNames). Never on create without a name, nor list, which resourceNames cannot
    # restrict.
    names: tuple[str, ...] = ()
    # The platforms (doctor.platform ids) where it is of use; empty: every platform it serves.
    platforms: tuple[str, ...] = ()

    @property
    def openshift_only(self) -> bool:
        return self.openshift or self.group.endswith(".openshift.io")

    def to_dict(self) -> dict[str, Any]:
        return {"apiGroup": self.group, "resource": self.resource, "verbs": list(self.verbs),
                "clusterScoped": self.cluster_scoped, "openshiftOnly": self.openshift_only,
                "disruptiveOnly": self.disruptive, "names": list(self.names),
                "platforms": list(self.platforms), "why": self.why}


@dataclass(frozen=True)
class AccessCheck:
    """One SelfSubjectAccessReview and its answer (None: it could not be asked)."""

    verb: str
    group: str
    resource: str  # plural, or plural/subresource
    namespace: str | None
    name: str | None = None
    allowed: bool | None = None
    reason: str = ""

    def describe(self) -> str:
        qualified = f"{self.resource}.{self.group}" if self.group else self.resource
        what = f"{qualified}/{self.name}" if self.name else qualified
        return f"{self.verb} {what}" + (f" in {self.namespace}" if self.namespace else "")

    def to_dict(self) -> dict[str, Any]:
        return {"verb": self.verb, "apiGroup": self.group, "resource": self.resource,
                "namespace": self.namespace, "name": self.name, "allowed": self.allowed}


@dataclass(frozen=True)
class Action:
    """One planned change. `before`/`after` are the whole object as planned against and as
    wanted; the patch, the diff and the guard are derived from them."""

    check: str
    name: str  # unique within the check, e.g. "set-requests"
    summary: str
    operation: str  # patch, create, redeploy or manual
    target: ObjectRef | None = None
    risk: str = SAFE
    redeploy: ObjectRef | None = None  # the workload redeployed after the change
    before: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    after: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    notes: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()  # what a person does, for manual actions
    optional: bool = False  # applied only when --fix-only names the check
    # The check's findings (Result.problems) this action removes; empty: the check as a whole
    # must improve for the fix to hold.
    targets: tuple[str, ...] = ()
    access: tuple[AccessCheck, ...] = ()
    named_by: str = ""  # where the target's name came from, when not from configuration
    state: str = PLANNED
    message: str = ""

    @property
    def id(self) -> str:
        return f"{self.check}/{self.name}"

    @property
    def resource_version(self) -> str | None:
        """The version of the object the change was planned against: the write's guard."""
        if self.before is None:
            return None
        return str(self.before["metadata"].get("resourceVersion") or "") or None

    @property
    def changes(self) -> list[patching.Change]:
        if self.operation != PATCH or self.before is None or self.after is None:
            return []
        return patching.changes(self.before, self.after)

    @property
    def rbac(self) -> str:
        if any(a.allowed is False for a in self.access):
            return "denied"
        if self.access and all(a.allowed for a in self.access):
            return "allowed"
        return "unchecked"

    def moved(self, state: str, message: str = "") -> Action:
        return replace(self, state=state, message=message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "check": self.check,
            "summary": self.summary,
            "operation": self.operation,
            "object": self.target.to_dict() if self.target else None,
            "patch": self._patch_dict(),
            "diff": self._diff(),
            "redeploy": self.redeploy.to_dict() if self.redeploy else None,
            "risk": self.risk,
            "optional": self.optional,
            "resourceVersion": self.resource_version,
            "rbac": {"verdict": self.rbac, "checks": [a.to_dict() for a in self.access]},
            "notes": list(self.notes),
            "steps": list(self.steps),
            "state": self.state,
            "message": self.message,
        }

    def _patch_dict(self) -> dict[str, Any] | None:
        if self.operation == PATCH and self.before is not None and self.after is not None:
            return {"type": patching.JSON_PATCH,
                    "body": patching.shown_patch(self.before, self.after)}
        if self.operation == CREATE and self.after is not None:
            return {"type": "create", "body": patching.shown(self.after)}
        return None

    def _diff(self) -> str:
        if self.target is None or self.operation not in (PATCH, CREATE):
            return ""
        return patching.yaml_diff(self.before if self.operation == PATCH else None, self.after,
                                  str(self.target), self.resource_version)


@dataclass(frozen=True)
class FixOptions:
    """What `check --fix` was asked to do, and the values its planners use."""

    apply: bool = False  # --yes
    server_dry_run: bool = False  # --dry-run=server
    allow_disruptive: bool = False
    only: tuple[str, ...] = ()  # --fix-only: check ids
    requests_cpu: str = "100m"
    requests_memory: str = "256Mi"
    limits_cpu: str | None = None
    limits_memory: str | None = None
    claim_name: str | None = None
    claim_size: str | None = None
    storage_class: str | None = None
    cooldown_seconds: float = 3600.0
    rollout_timeout: float = 600.0
    lease_seconds: float = 60.0
    poll_seconds: float = 2.0  # how often a rollout is looked at
