"""One applying run at a time: a lock in the registry's namespace, named `registry-doctor`.

Where the server has coordination.k8s.io/v1 (Kubernetes 1.14+; found by discovery) the lock is
a Lease. Where it has not (OpenShift 3.11 is Kubernetes 1.11) it is what client-go's leader
election used before Leases (k8s.io/client-go tools/leaderelection/resourcelock,
configmaplock.go): the annotation `control-plane.alpha.kubernetes.io/leader` on a ConfigMap,
holding a JSON LeaderElectionRecord (holderIdentity, leaseDurationSeconds, acquireTime,
renewTime, leaderTransitions). Either way every change is an update guarded by the object's
resourceVersion, so of two runs racing for it one gets a 409.

The holder renews the lock while it works (every third of its duration) and confirms it still
holds it before each write (`confirm`, installed as the cluster's write guard); a lock not
renewed within its duration belongs to a run that died and is taken over. Expiry is judged
with this host's clock against the holder's renewTime, so clocks must roughly agree (NTP), as
for client-go leader election.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from registry_doctor.doctor.fix.cluster import Cluster, now
from registry_doctor.doctor.fix.model import ObjectRef
from registry_doctor.doctor.kube import KubeError

LEASE_NAME = "registry-doctor"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"  # Lease times (metav1.MicroTime)
TIME = "%Y-%m-%dT%H:%M:%SZ"  # LeaderElectionRecord times (metav1.Time)


class LeaseLost(Exception):
    """Another run took the lock over, or it could not be renewed in time: this run must stop
    changing things."""


@dataclass(frozen=True)
class Record:
    """A LeaderElectionRecord, whichever object holds it."""

    holder: str
    duration: float
    acquired: datetime | None
    renewed: datetime | None
    transitions: int


@dataclass(frozen=True)
class Holder:
    identity: str
    renewed: datetime | None
    duration: float

    def describe(self) -> str:
        if self.renewed is None:
            return f"{self.identity} (never renewed)"
        age = (now() - self.renewed).total_seconds()
        return (f"{self.identity} (renewed {age:.0f}s ago, expires in "
                f"{max(self.duration - age, 0):.0f}s unless renewed)")


class LeaseObject:
    """The record as a coordination.k8s.io/v1 Lease's spec."""

    kind = "Lease"

    def ref(self, namespace: str) -> ObjectRef:
        return ObjectRef("coordination.k8s.io/v1", "Lease", "leases", LEASE_NAME, namespace)

    def read(self, obj: dict[str, Any]) -> Record:
        spec = obj.get("spec") or {}
        return Record(str(spec.get("holderIdentity") or ""),
                      float(spec.get("leaseDurationSeconds") or 0),
                      _parse(spec.get("acquireTime")),
                      _parse(spec.get("renewTime") or spec.get("acquireTime")),
                      int(spec.get("leaseTransitions") or 0))

    def written(self, obj: dict[str, Any], record: Record) -> dict[str, Any]:
        spec = {k: v for k, v in (obj.get("spec") or {}).items() if k != "holderIdentity"}
        if record.holder:
            spec["holderIdentity"] = record.holder
        spec.update(leaseDurationSeconds=int(record.duration),
                    leaseTransitions=record.transitions,
                    **{k: v.strftime(MICRO_TIME) for k, v in (("acquireTime", record.acquired),
                                                              ("renewTime", record.renewed))
                       if v is not None})
        return {**obj, "spec": spec}


class ConfigMapAnnotation:
    """The record as client-go's configmap lock kept it, for servers without Leases."""

    kind = "ConfigMap"

    def ref(self, namespace: str) -> ObjectRef:
        return ObjectRef("v1", "ConfigMap", "configmaps", LEASE_NAME, namespace)

    def read(self, obj: dict[str, Any]) -> Record:
        text = ((obj.get("metadata") or {}).get("annotations") or {}).get(LEADER_ANNOTATION)
        try:
            data = json.loads(text) if isinstance(text, str) else {}
        except ValueError:
            data = {}  # unreadable: as if never held, so it can be taken (client-go does too)
        data = data if isinstance(data, dict) else {}
        return Record(str(data.get("holderIdentity") or ""),
                      float(data.get("leaseDurationSeconds") or 0),
                      _parse(data.get("acquireTime")), _parse(data.get("renewTime")),
                      int(data.get("leaderTransitions") or 0))

    def written(self, obj: dict[str, Any], record: Record) -> dict[str, Any]:
        data = {"holderIdentity": record.holder, "leaseDurationSeconds": int(record.duration),
                "acquireTime": _format(record.acquired), "renewTime": _format(record.renewed),
                "leaderTransitions": record.transitions}
        metadata = dict(obj.get("metadata") or {})
        metadata["annotations"] = {**(metadata.get("annotations") or {}),
                                   LEADER_ANNOTATION: json.dumps(data)}
        return {**obj, "metadata": metadata}


Backend = LeaseObject | ConfigMapAnnotation


def backend_for(cluster: Cluster) -> Backend:
    """A Lease where the server serves coordination.k8s.io/v1 leases, else the ConfigMap
    annotation (raises KubeError when discovery itself fails)."""
    return LeaseObject() if cluster.serves("coordination.k8s.io/v1", "leases") \
        else ConfigMapAnnotation()


class Lease:
    """The run lock (a Lease or a ConfigMap annotation, as `backend` says)."""

    def __init__(self, cluster: Cluster, namespace: str, identity: str, duration: float,
                 backend: Backend | None = None) -> None:
        self.cluster, self.identity = cluster, identity
        self.duration = max(int(duration), 1)
        self.backend = backend or backend_for(cluster)
        self.ref = self.backend.ref(namespace)
        self._object: dict[str, Any] | None = None
        self._renewed = 0.0

    @property
    def kind(self) -> str:
        return self.backend.kind

    def acquire(self) -> Holder | None:
        """Take the lock: None when this run holds it now, else who does. While held, every
        write of the cluster first confirms it."""
        current = self.cluster.get(self.ref)
        if current is not None:
            record = self.backend.read(current)
            holder = Holder(record.holder, record.renewed, record.duration)
            if record.holder and record.holder != self.identity and not _expired(holder):
                return holder
        taken = self._write(current)
        if taken is None:
            self.cluster.write_guard = self.confirm
        return taken

    def renew(self) -> None:
        """Renew when a third of the duration has passed; LeaseLost if another run took it."""
        if self._object is None or time.monotonic() - self._renewed < self.duration / 3:
            return
        record = self.backend.read(self._object)
        renewed = Record(self.identity, self.duration, record.acquired, now(), record.transitions)
        try:
            self._store(self.cluster.update(self.ref, self.backend.written(self._object,
                                                                           renewed)))
        except KubeError as error:
            if error.status == 409:
                raise self._lost("was taken over by another run") from None
            raise

    def confirm(self, target: ObjectRef | None = None) -> None:
        """Before a write: renew when due, else read the lock and make sure it is still this
        run's, unchanged since this run last wrote it. LeaseLost otherwise."""
        if self._object is None:
            raise self._lost("is not held by this run")
        if target == self.ref:
            return  # writing the lock itself: guarded by its resourceVersion
        if time.monotonic() - self._renewed >= self.duration / 3:
            return self.renew()
        current = self.cluster.get(self.ref)
        if current is None:
            raise self._lost("was deleted")
        version = current["metadata"].get("resourceVersion")
        if version != self._object["metadata"].get("resourceVersion"):
            holder = self.backend.read(current).holder or "nobody"
            raise self._lost(f"was changed by another party (now held by {holder})")

    def release(self) -> None:
        """Give the lock up at the end (an error here only delays the next run)."""
        self.cluster.write_guard = None
        if self._object is None:
            return
        record = self.backend.read(self._object)
        released = Record("", record.duration, record.acquired, record.renewed,
                          record.transitions)
        with contextlib.suppress(KubeError):
            self.cluster.update(self.ref, self.backend.written(self._object, released))
        self._object = None

    def _write(self, current: dict[str, Any] | None) -> Holder | None:
        moment = now()
        try:
            if current is None:
                body = self.backend.written(
                    {"apiVersion": self.ref.api_version, "kind": self.ref.kind,
                     "metadata": {"name": LEASE_NAME, "namespace": self.ref.namespace}},
                    Record(self.identity, self.duration, moment, moment, 0))
                self._store(self.cluster.create(self.ref, body))
            else:
                record = self.backend.read(current)
                taken = Record(self.identity, self.duration, moment, moment,
                               record.transitions + (1 if record.holder else 0))
                self._store(self.cluster.update(self.ref, self.backend.written(current, taken)))
        except KubeError as error:
            if error.status != 409:
                raise
            again = self.cluster.get(self.ref)  # another run was quicker
            if again is None:
                return Holder("(unknown)", None, self.duration)
            record = self.backend.read(again)
            return Holder(record.holder or "(unknown)", record.renewed, record.duration)
        return None

    def _store(self, obj: dict[str, Any]) -> None:
        self._object, self._renewed = obj, time.monotonic()

    def _lost(self, why: str) -> LeaseLost:
        self._object = None
        self.cluster.write_guard = _refuse
        return LeaseLost(f"lock {self.ref} ({self.kind}) {why}: this run stops writing")


def _refuse(target: ObjectRef) -> None:
    raise LeaseLost(f"not writing {target}: this run lost its lock")


def _expired(holder: Holder) -> bool:
    return holder.renewed is None or now() > holder.renewed + timedelta(seconds=holder.duration)


def _format(moment: datetime | None) -> str | None:
    return moment.strftime(TIME) if moment is not None else None


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    for layout in (MICRO_TIME, TIME):
        try:
            return datetime.strptime(value, layout).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None
