"""One applying run at a time: a coordination.k8s.io/v1 Lease in the registry's namespace.

The holder renews it while it works (every third of its duration); a lease not renewed within
its duration belongs to a run that died and is taken over. Expiry is judged with this host's
clock against the holder's renewTime, so clocks must roughly agree (NTP), as for client-go
leader election.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from doctor.fix.cluster import Cluster, now
from doctor.fix.model import ObjectRef
from doctor.kube import KubeError

LEASE_NAME = "registry-doctor"
MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


class LeaseLost(Exception):
    """Another run took the lease over: this run must stop changing things."""


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


class Lease:
    def __init__(self, cluster: Cluster, namespace: str, identity: str, duration: float) -> None:
        self.cluster, self.identity = cluster, identity
        self.duration = max(int(duration), 1)
        self.ref = ObjectRef("coordination.k8s.io/v1", "Lease", "leases", LEASE_NAME, namespace)
        self._object: dict[str, Any] | None = None
        self._renewed = 0.0

    def acquire(self) -> Holder | None:
        """Take the lease: None when this run holds it now, else who does."""
        current = self.cluster.get(self.ref)
        if current is None:
            return self._write(None)
        holder = _holder(current)
        if holder.identity and holder.identity != self.identity and not _expired(holder):
            return holder
        return self._write(current)

    def renew(self) -> None:
        """Renew when a third of the duration has passed; LeaseLost if another run took it."""
        if self._object is None or time.monotonic() - self._renewed < self.duration / 3:
            return
        try:
            self._store(self.cluster.update(self.ref, self._spec(self._object)))
        except KubeError as error:
            if error.status == 409:
                raise LeaseLost(f"lease {self.ref} was taken over by another run") from None
            raise

    def release(self) -> None:
        """Give the lease up at the end (an error here only delays the next run)."""
        if self._object is None:
            return
        released = self._spec(self._object)
        released["spec"].pop("holderIdentity", None)
        with contextlib.suppress(KubeError):
            self.cluster.update(self.ref, released)
        self._object = None

    def _write(self, current: dict[str, Any] | None) -> Holder | None:
        try:
            if current is None:
                body = self._spec({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                   "metadata": {"name": LEASE_NAME,
                                                "namespace": self.ref.namespace}}, new=True)
                self._store(self.cluster.create(self.ref, body))
            else:
                self._store(self.cluster.update(self.ref, self._spec(current, new=True)))
        except KubeError as error:
            if error.status != 409:
                raise
            again = self.cluster.get(self.ref)  # another run was quicker
            return _holder(again) if again else Holder("(unknown)", None, self.duration)
        return None

    def _spec(self, current: dict[str, Any], new: bool = False) -> dict[str, Any]:
        moment = now().strftime(MICRO_TIME)
        spec = dict(current.get("spec") or {})
        if new:
            transitions = int(spec.get("leaseTransitions") or 0)
            spec.update(acquireTime=moment,
                        leaseTransitions=transitions + (1 if spec.get("holderIdentity") else 0))
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=self.duration,
                    renewTime=moment)
        return {**current, "spec": spec}

    def _store(self, obj: dict[str, Any]) -> None:
        self._object, self._renewed = obj, time.monotonic()


def _holder(lease: dict[str, Any]) -> Holder:
    spec = lease.get("spec") or {}
    renewed = _parse(spec.get("renewTime") or spec.get("acquireTime"))
    return Holder(str(spec.get("holderIdentity") or ""), renewed,
                  float(spec.get("leaseDurationSeconds") or 0))


def _expired(holder: Holder) -> bool:
    return holder.renewed is None or now() > holder.renewed + timedelta(seconds=holder.duration)


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    for layout in (MICRO_TIME, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(value, layout).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None
