"""The run journal: backups of every object a run changes, and how far each change got.

It lives in one Secret, `registry-doctor-backups`, in the registry's namespace: one key per run
(`<run id>.json`, the id starts with the UTC time so keys sort by age), the newest HISTORY runs
kept. A Secret, not a ConfigMap, because the objects backed up hold secret values (the
registry's REGISTRY_HTTP_SECRET env, the console's private key).

A unit (the changes of one or more checks that stand or fall together, with the workloads they
redeploy) is saved before its first write (`applying`, with the backups and `changedAt`, the
cooldown record), before its redeploy (`redeploying`), before a rollback (`undoing`: why) and
when it ends (`verified`, `rolled-back`, `aborted` or `failed`). A run that dies leaves its
unit `applying` or `redeploying`; the next run finishes it, or finishes its rollback when
`undoing` is set (docs/remediation.md, "Crashes"). A unit rolled back by `registry-doctor
rollback` keeps `reverted` (when, and the versions of its objects afterwards): its fix is not
applied again while those objects stay as they are, unless the admin clears it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from registry_doctor.doctor.fix.cluster import Cluster
from registry_doctor.doctor.fix.model import ObjectRef
from registry_doctor.doctor.fix.patch import Change, forward, guarded
from registry_doctor.doctor.kube import CONNECTION_FAILED, KubeError

SECRET_NAME = "registry-doctor-backups"
HISTORY = 10  # runs kept
MAX_BYTES = 900 * 1024  # a Secret holds at most 1 MiB
APPLYING, REDEPLOYING = "applying", "redeploying"
VERIFIED, ROLLED_BACK, ABORTED, FAILED = "verified", "rolled-back", "aborted", "failed"
UNFINISHED = (APPLYING, REDEPLOYING)


@dataclass
class WriteRecord:
    object: ObjectRef
    operation: str  # "patch" or "create"
    actions: list[str]
    changes: list[Change] = field(default_factory=list)  # patch: what it changes
    backup: dict[str, Any] | None = None  # patch: the object before; create: the object made

    def patch(self) -> list[dict[str, Any]]:
        """The JSON patch that makes the change, guarded by the backup's resourceVersion."""
        version = str((self.backup or {}).get("metadata", {}).get("resourceVersion", ""))
        return guarded(forward(self.changes), version)

    def to_json(self) -> dict[str, Any]:
        return {"object": self.object.to_dict(), "operation": self.operation,
                "actions": self.actions, "changes": [c.to_json() for c in self.changes],
                "backup": self.backup}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WriteRecord:
        return cls(ObjectRef.from_dict(data["object"]), data["operation"], list(data["actions"]),
                   [Change.from_json(c) for c in data.get("changes", [])], data.get("backup"))


@dataclass
class UnitRecord:
    checks: list[str]
    statuses: dict[str, str]  # check id -> status before the fix
    workloads: list[ObjectRef]  # redeployed after the writes
    writes: list[WriteRecord]
    baselines: dict[str, int] = field(default_factory=dict)  # workload -> rollout version before
    actions: list[str] = field(default_factory=list)  # ids of every action of the unit
    state: str = APPLYING
    redeployed_at: str | None = None  # when the redeploy was asked for
    message: str = ""
    changed_at: str | None = None  # when its first write or redeploy was sent (cooldown)
    undoing: str | None = None  # a rollback in progress, and why
    reverted: dict[str, Any] | None = None  # rolled back by an admin: {"at", "versions"}
    targets: dict[str, list[str]] = field(default_factory=dict)  # check -> findings it fixes
    problems: dict[str, int] = field(default_factory=dict)  # check -> problems found before

    @property
    def objects(self) -> list[ObjectRef]:
        """Everything the unit changes: written objects and redeployed workloads."""
        return list(dict.fromkeys([*(w.object for w in self.writes), *self.workloads]))

    def to_json(self) -> dict[str, Any]:
        return {"checks": self.checks, "statuses": self.statuses,
                "workloads": [w.to_dict() for w in self.workloads],
                "writes": [w.to_json() for w in self.writes], "baselines": self.baselines,
                "actions": self.actions, "state": self.state, "redeployedAt": self.redeployed_at,
                "message": self.message, "changedAt": self.changed_at, "undoing": self.undoing,
                "reverted": self.reverted, "targets": self.targets, "problems": self.problems}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UnitRecord:
        return cls(list(data["checks"]), dict(data.get("statuses", {})),
                   [ObjectRef.from_dict(w) for w in data.get("workloads", [])],
                   [WriteRecord.from_json(w) for w in data.get("writes", [])],
                   dict(data.get("baselines", {})), list(data.get("actions", [])),
                   data.get("state", FAILED),
                   data.get("redeployedAt"), data.get("message", ""),
                   data.get("changedAt") or data.get("redeployedAt"), data.get("undoing"),
                   data.get("reverted"), dict(data.get("targets") or {}),
                   dict(data.get("problems") or {}))


@dataclass
class RunRecord:
    run: str
    holder: str
    started: str
    units: list[UnitRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "holder": self.holder, "started": self.started,
                "units": [u.to_json() for u in self.units]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        return cls(data["run"], data.get("holder", ""), data.get("started", ""),
                   [UnitRecord.from_json(u) for u in data.get("units", [])])


class Journal:
    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.ref = ObjectRef("v1", "Secret", "secrets", SECRET_NAME, namespace)
        self.problems: list[str] = []  # entries that could not be read

    def runs(self) -> list[RunRecord]:
        """Every recorded run, oldest first."""
        secret = self.cluster.get(self.ref)
        self.problems = []
        return [run for key, value in sorted(((secret or {}).get("data") or {}).items())
                if (run := self._decode(key, value)) is not None]

    def save(self, record: RunRecord) -> None:
        """Write `record` (under its run id), keeping the newest HISTORY runs. A conflict, a
        5xx or a dropped connection is retried from a fresh read: the entry is written whole,
        so writing it again is harmless (also when the failed write had been committed)."""
        data = json.dumps(record.to_json(), separators=(",", ":"))
        for attempt in range(3):
            secret = self.cluster.get(self.ref)
            entries = dict((secret or {}).get("data") or {})
            entries[f"{record.run}.json"] = base64.b64encode(data.encode()).decode()
            for key in sorted(entries)[:-HISTORY]:
                del entries[key]
            while len(entries) > 1 and sum(map(len, entries.values())) > MAX_BYTES:
                del entries[min(entries)]
            try:
                if secret is None:
                    self.cluster.create(self.ref, _secret(self.ref, entries))
                else:
                    self.cluster.update(self.ref, {**secret, "data": entries})
                return
            except KubeError as error:
                if not _retriable(error) or attempt == 2:
                    raise

    def last_change(self, objects: set[ObjectRef], runs: list[RunRecord]
                    ) -> tuple[datetime, str, ObjectRef] | None:
        """When a run last changed (wrote or redeployed) one of `objects`, which run, which
        object. Units that aborted before changing anything do not count."""
        moments = [(_parse(u.changed_at), run.run, ref) for run in runs for u in run.units
                   if u.state != ABORTED for ref in u.objects if ref in objects]
        known = [(m, r, o) for m, r, o in moments if m is not None]
        return max(known, key=lambda k: k[0]) if known else None

    def _decode(self, key: str, value: Any) -> RunRecord | None:
        try:
            return RunRecord.from_json(json.loads(base64.b64decode(value, validate=True)))
        except (binascii.Error, ValueError, TypeError, KeyError, AttributeError) as error:
            self.problems.append(f"secret/{SECRET_NAME} key {key}: unreadable ({error})")
            return None


def _retriable(error: KubeError) -> bool:
    """Someone else wrote the secret (409), or the write's outcome is unknown."""
    return error.status == 409 or (error.status or 0) >= 500 or \
        error.reason == CONNECTION_FAILED


def _secret(ref: ObjectRef, entries: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": ref.name, "namespace": ref.namespace,
                         "labels": {"app.kubernetes.io/managed-by": "registry-doctor"}},
            "data": entries}


def _parse(value: str | None) -> datetime | None:
    try:
        return datetime.strptime(value or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
