"""Redeploying a workload and following the rollout to its end.

- DeploymentConfig: what `oc rollout latest` does (openshift/origin release-3.11
  pkg/oc/cli/rollout/latest.go): refused when the DC is
  paused or its latest rollout has not ended; POST `instantiate` with `latest: true, force:
  true`; done when ReplicationController `NAME-<latestVersion>` says
  `openshift.io/deployment.phase: Complete` and no pod of an older rollout is left, failed on
  `Failed`. A DC with a ConfigChange trigger starts a rollout by itself when its template
  changes: that rollout is followed instead of starting a second one.
- Deployment, DaemonSet and StatefulSet: what `kubectl rollout restart` does (pod template
  annotation `kubectl.kubernetes.io/restartedAt`), unless the fix changed the template, which
  rolls out by itself; done or failed as `kubectl rollout status` judges it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from registry_doctor.doctor.fix.cluster import Cluster, timestamp
from registry_doctor.doctor.fix.model import ObjectRef
from registry_doctor.doctor.kube import KubeError
from registry_doctor.doctor.workload import as_dict, as_list

PHASE = "openshift.io/deployment.phase"
CANCELLED = "openshift.io/deployment.cancelled"
STATUS_REASON = "openshift.io/deployment.status-reason"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
TRIGGER_GRACE = 10.0  # how long a ConfigChange trigger gets to start its own rollout
CANCEL_GRACE = 30.0  # how long a cancelled rollout gets to stop


@dataclass(frozen=True)
class Rollout:
    workload: ObjectRef
    version: int  # DeploymentConfig latestVersion; Deployment or DaemonSet generation
    started: bool  # False: followed, started by a trigger or by an earlier run

    @property
    def name(self) -> str:
        if self.workload.kind == "DeploymentConfig":
            return f"rc/{self.workload.name}-{self.version}"
        return f"{self.workload.short} generation {self.version}"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    phase: str  # Complete, Failed, TimedOut, or Refused (the redeploy was not accepted)
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "phase": self.phase, "message": self.message}


def version(workload: dict[str, Any]) -> int:
    if workload["kind"] == "DeploymentConfig":
        return _int(as_dict(workload.get("status")).get("latestVersion"))
    return _int(workload["metadata"].get("generation"))


def blocker(cluster: Cluster, ref: ObjectRef) -> str | None:
    """Why `ref` must not be redeployed now, or None."""
    workload = cluster.get(ref)
    if workload is None:
        return f"{ref} does not exist"
    if as_dict(workload.get("spec")).get("paused"):
        return f"{ref.short} is paused: resume it first (oc rollout resume {ref.short})"
    if ref.kind == "DeploymentConfig":
        latest = version(workload)
        controller = cluster.get(_controller(ref, latest)) if latest else None
        phase = _phase(controller) if controller else None
        if phase not in (None, "Complete", "Failed"):
            return f"rollout #{latest} of {ref.short} is already in progress ({phase})"
        return None
    if _on_delete(workload):
        return f"{ref.short} has the OnDelete update strategy: a redeploy would replace no " \
            "pod (delete its pods, one at a time, to run a changed template)"
    done, message = _app_status(workload)
    return None if done is not None else f"a rollout of {ref.short} is in progress ({message})"


def _on_delete(workload: dict[str, Any]) -> bool:
    """A StatefulSet whose pods are replaced only when deleted (apps/v1
    StatefulSetUpdateStrategy type OnDelete)."""
    strategy = as_dict(as_dict(workload.get("spec")).get("updateStrategy"))
    return workload["kind"] == "StatefulSet" and strategy.get("type") == "OnDelete"


def start(cluster: Cluster, ref: ObjectRef, baseline: int, poll: float,
          template_changed: bool) -> Rollout:
    """The rollout that carries the changes made since `baseline`: followed when one already
    started (a trigger, or an earlier run), else started."""
    workload = _existing(cluster, ref)
    if version(workload) > baseline:
        return Rollout(ref, version(workload), started=False)
    if ref.kind != "DeploymentConfig":
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: timestamp()}}}}}
        return Rollout(ref, version(cluster.patch(ref, patch, merge=True)), started=True)
    if template_changed and _has_config_change_trigger(workload):
        workload = _settled(cluster, ref, workload, poll)
        if version(workload) > baseline:
            return Rollout(ref, version(workload), started=False)
    return Rollout(ref, version(cluster.instantiate(ref)), started=True)


def wait(cluster: Cluster, rollout: Rollout, timeout: float, poll: float,
         tick: Callable[[], None] = lambda: None) -> Outcome:
    """Poll until the rollout completes, fails or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        tick()
        done, message = _progress(cluster, rollout)
        if done is not None:
            return Outcome(done, "Complete" if done else "Failed", message)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Outcome(False, "TimedOut", f"{rollout.name} did not finish within "
                           f"{timeout:g}s ({message})")
        time.sleep(min(poll, remaining))


def cancel(cluster: Cluster, rollout: Rollout, reason: str, poll: float) -> None:
    """`oc rollout cancel` for a DeploymentConfig rollout, then wait for it to stop. A
    Deployment has no such thing: the rollback's template change supersedes its rollout."""
    if rollout.workload.kind != "DeploymentConfig":
        return
    annotations = {CANCELLED: "true", STATUS_REASON: f"cancelled by registry-doctor: {reason}"}
    cluster.patch(_controller(rollout.workload, rollout.version),
                  {"metadata": {"annotations": annotations}}, merge=True)
    wait(cluster, rollout, CANCEL_GRACE, poll)


def _progress(cluster: Cluster, rollout: Rollout) -> tuple[bool | None, str]:
    ref = rollout.workload
    if ref.kind != "DeploymentConfig":
        return _app_status(_existing(cluster, ref))
    controller = cluster.get(_controller(ref, rollout.version))
    if controller is None:
        return None, f"{rollout.name} not created yet"
    phase = _phase(controller)
    annotations = as_dict(controller["metadata"].get("annotations"))
    if phase == "Failed":
        return False, f"{rollout.name} failed: {annotations.get(STATUS_REASON) or 'see its events'}"
    if phase != "Complete":
        return None, f"{rollout.name} is {phase or 'New'}"
    stale = _old_pods(cluster, ref, controller["metadata"]["name"])
    if stale:
        return None, f"{rollout.name} complete, waiting for old pods to go: {', '.join(stale)}"
    return True, f"{rollout.name} complete"


def _app_status(workload: dict[str, Any]) -> tuple[bool | None, str]:
    """`kubectl rollout status` for a Deployment, DaemonSet or StatefulSet: (True done | False
    failed | None in progress, why)."""
    metadata, spec, status = workload["metadata"], as_dict(workload.get("spec")), \
        as_dict(workload.get("status"))
    name = f"{workload['kind'].lower()}/{metadata['name']}"
    if _int(metadata.get("generation")) > _int(status.get("observedGeneration")):
        return None, f"waiting for the controller to see {name}'s latest change"
    if workload["kind"] == "DaemonSet":
        desired = _int(status.get("desiredNumberScheduled"))
        updated, available = (_int(status.get("updatedNumberScheduled")),
                              _int(status.get("numberAvailable")))
        if updated < desired or available < desired:
            return None, f"{updated} of {desired} updated, {available} available"
        return True, f"{name} rolled out"
    if workload["kind"] == "StatefulSet":
        return _stateful_set_status(workload, name)
    for condition in as_list(status.get("conditions")):
        if as_dict(condition).get("reason") == "ProgressDeadlineExceeded":
            return False, f"{name} exceeded its progress deadline"
    wanted = _int(spec.get("replicas", 1))
    updated = _int(status.get("updatedReplicas"))
    if updated < wanted:
        return None, f"{updated} of {wanted} replicas updated"
    if _int(status.get("replicas")) > updated:
        return None, "old replicas are pending termination"
    if _int(status.get("availableReplicas")) < updated:
        return None, f"{_int(status.get('availableReplicas'))} of {updated} updated replicas " \
            "available"
    return True, f"{name} rolled out"


def _stateful_set_status(workload: dict[str, Any], name: str) -> tuple[bool | None, str]:
    """`kubectl rollout status` for a StatefulSet (kubectl pkg/polymorphichelpers
    rollout_status.go, StatefulSetStatusViewer): its pods up to the partition updated and
    ready, then the update revision current."""
    if _on_delete(workload):
        return False, f"{name} has the OnDelete update strategy: its pods are replaced only " \
            "when deleted"
    spec, status = as_dict(workload.get("spec")), as_dict(workload.get("status"))
    strategy = as_dict(spec.get("updateStrategy"))
    wanted = _int(spec.get("replicas", 1))
    ready = _int(status.get("readyReplicas"))
    if ready < wanted:
        return None, f"{ready} of {wanted} pods ready"
    partition = _int(as_dict(strategy.get("rollingUpdate")).get("partition"))
    updated = _int(status.get("updatedReplicas"))
    if partition > 0:
        if updated < wanted - partition:
            return None, f"{updated} of {wanted - partition} pods above partition {partition} " \
                "updated"
        return True, f"{name} rolled out up to partition {partition}"
    if status.get("updateRevision") != status.get("currentRevision"):
        return None, f"{updated} of {wanted} pods updated"
    return True, f"{name} rolled out"


def _old_pods(cluster: Cluster, ref: ObjectRef, controller: str) -> list[str]:
    """Pods of the DeploymentConfig that belong to an older rollout, or are terminating."""
    workload = _existing(cluster, ref)
    selector = as_dict(as_dict(workload.get("spec")).get("selector"))
    if not selector or not ref.namespace:
        return []
    terms = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    pods = cluster.list("v1", "pods", ref.namespace, terms)
    return sorted(p["metadata"]["name"] for p in pods
                  if as_dict(p["metadata"].get("labels")).get("deployment") != controller
                  or p["metadata"].get("deletionTimestamp"))


def _settled(cluster: Cluster, ref: ObjectRef, workload: dict[str, Any],
             poll: float) -> dict[str, Any]:
    """The DeploymentConfig once its controller has seen its latest generation (at most
    TRIGGER_GRACE seconds): only then is it known whether a trigger started a rollout."""
    deadline = time.monotonic() + TRIGGER_GRACE
    while _int(as_dict(workload.get("status")).get("observedGeneration")) < \
            _int(workload["metadata"].get("generation")) and time.monotonic() < deadline:
        time.sleep(min(poll, 1.0))
        workload = _existing(cluster, ref)
    return workload


def _has_config_change_trigger(workload: dict[str, Any]) -> bool:
    return any(as_dict(t).get("type") == "ConfigChange"
               for t in as_list(as_dict(workload.get("spec")).get("triggers")))


def _controller(ref: ObjectRef, latest: int) -> ObjectRef:
    return ObjectRef("v1", "ReplicationController", "replicationcontrollers",
                     f"{ref.name}-{latest}", ref.namespace)


def _phase(controller: dict[str, Any]) -> str | None:
    return as_dict(controller["metadata"].get("annotations")).get(PHASE)


def _existing(cluster: Cluster, ref: ObjectRef) -> dict[str, Any]:
    workload = cluster.get(ref)
    if workload is None:
        raise KubeError(f"not found: {ref}", 404, "NotFound")
    return workload


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
