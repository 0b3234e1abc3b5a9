"""The controllers behind a rollout, reduced to what remediation tests need (and a claim
binder: a created PersistentVolumeClaim is Bound at once).

OpenShift's DeploymentConfig controller and deployer pod, and the Deployment, DaemonSet and
StatefulSet controllers, finish a rollout in one step: the next ReplicationController
`NAME-<version>` (or the new pods; a StatefulSet's named `NAME-<ordinal>`) appear at once, and
the rollout ends in the phase the test asked for:

- `Complete`: the workload's pods are replaced by pods built from the new template, with the
  QoS class Kubernetes computes (pkg/apis/core/helper/qos);
- `Failed`: the old pods stay, as after the rolling strategy gave up;
- `Running`: nothing finishes; cancelling it (annotation `openshift.io/deployment.cancelled`)
  fails it, as the deployer does.
"""

from __future__ import annotations

import copy
import random
import threading
from typing import Any

from registry_doctor.doctor.quantity import QuantityError, parse_quantity

from . import errors
from .resources import by_name
from .store import Obj, ObjectStore, now

DEPLOYMENT_CONFIGS = by_name("deploymentconfigs")
REPLICATION_CONTROLLERS = by_name("replicationcontrollers")
PODS = by_name("pods")
CLAIMS = by_name("persistentvolumeclaims")
APP_WORKLOADS = (by_name("deployments"), by_name("daemonsets"), by_name("statefulsets"))
PHASES = ("Complete", "Failed", "Running")
PHASE = "openshift.io/deployment.phase"
CANCELLED = "openshift.io/deployment.cancelled"
LATEST_VERSION = "openshift.io/deployment-config.latest-version"
CONFIG_NAME = "openshift.io/deployment-config.name"
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"


class Deployer:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.outcomes: list[str] = []  # phases of the next rollouts, in order; then Complete
        # Start a DeploymentConfig rollout when its template changes and it has a ConfigChange
        # trigger, as OpenShift does; off by default so tests choose explicit instantiation.
        self.config_change_triggers = False
        self._lock = threading.RLock()

    def instantiate(self, namespace: str, name: str, request: Obj) -> Obj:
        """POST deploymentconfigs/NAME/instantiate (origin's instantiate REST)."""
        with self._lock:
            config = self.store.get(DEPLOYMENT_CONFIGS, namespace, name)
            if request.get("name") not in (None, name):
                raise errors.bad_request(f"the name in the DeploymentRequest "
                                         f"({request.get('name')}) does not match {name}")
            if (config.get("spec") or {}).get("paused"):
                raise errors.bad_request(f'cannot trigger a deployment for "{name}" because it '
                                         "is paused")
            return self._roll_out_config(config, "Manual", "manual change")

    def created(self, resource: Any, obj: Obj) -> None:
        """A new claim is bound at once, as by a dynamic provisioner."""
        if resource is CLAIMS:
            with self._lock:
                spec = obj.get("spec") or {}
                obj["status"] = {"phase": "Bound", "accessModes": spec.get("accessModes", []),
                                 "capacity": (spec.get("resources") or {}).get("requests", {})}
                self.store.put(obj)

    def written(self, resource: Any, before: Obj | None, after: Obj) -> None:
        """React to an API write, as the controllers watching it would."""
        with self._lock:
            if resource is DEPLOYMENT_CONFIGS:
                self._config_written(before, after)
            elif resource in APP_WORKLOADS:
                self._workload_written(before, after)
            elif resource is REPLICATION_CONTROLLERS:
                self._controller_written(after)

    def _next_phase(self) -> str:
        phase = self.outcomes.pop(0) if self.outcomes else "Complete"
        if phase not in PHASES:
            raise ValueError(f"unknown rollout outcome {phase!r}: use one of {PHASES}")
        return phase

    # DeploymentConfigs

    def _config_written(self, before: Obj | None, after: Obj) -> None:
        spec = after.get("spec") or {}
        template_changed = before is not None and \
            (before.get("spec") or {}).get("template") != spec.get("template")
        triggered = any((t or {}).get("type") == "ConfigChange" for t in spec.get("triggers") or [])
        if template_changed and triggered and self.config_change_triggers \
                and not spec.get("paused"):
            self._roll_out_config(after, "ConfigChange", "config change")
            return
        status = after.setdefault("status", {})
        if status.get("observedGeneration") != after["metadata"].get("generation"):
            status["observedGeneration"] = after["metadata"].get("generation")
            self.store.put(after)

    def _roll_out_config(self, config: Obj, cause: str, message: str) -> Obj:
        metadata, spec = config["metadata"], config.get("spec") or {}
        status = config.setdefault("status", {})
        version = int(status.get("latestVersion") or 0) + 1
        status.update(latestVersion=version, observedGeneration=metadata.get("generation"),
                      details={"message": message, "causes": [{"type": cause}]})
        phase = self._next_phase()
        name = f"{metadata['name']}-{version}"
        labels = {**(spec.get("selector") or {}), "deployment": name,
                  "deploymentconfig": metadata["name"]}
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {})["labels"] = {
            **(template["metadata"].get("labels") or {}), **labels}
        replicas = int(spec.get("replicas", 1) or 0)
        self.store.put({
            "apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {
                "name": name, "namespace": metadata["namespace"],
                "labels": {CONFIG_NAME: metadata["name"]},
                "annotations": {LATEST_VERSION: str(version), CONFIG_NAME: metadata["name"],
                                PHASE: phase, "openshift.io/deployment.replicas": str(replicas)},
                "ownerReferences": [_owner(config)],
            },
            "spec": {"replicas": replicas if phase == "Complete" else 0, "selector": labels,
                     "template": template},
            "status": {"replicas": replicas if phase == "Complete" else 0},
        })
        if phase == "Complete":
            self._replace_pods(metadata["namespace"], spec.get("selector") or {}, template,
                               name, replicas)
        return self.store.put(config)

    def _controller_written(self, controller: Obj) -> None:
        annotations = controller["metadata"].get("annotations") or {}
        if annotations.get(CANCELLED) == "true" and annotations.get(PHASE) in (
                "New", "Pending", "Running"):
            annotations[PHASE] = "Failed"
            annotations["openshift.io/deployment.status-reason"] = "cancelled by the user"
            self.store.put(controller)

    # Deployments and DaemonSets

    def _workload_written(self, before: Obj | None, after: Obj) -> None:
        spec = after.get("spec") or {}
        if before is None or (before.get("spec") or {}).get("template") == spec.get("template") \
                or spec.get("paused"):
            return
        phase = self._next_phase()
        metadata = after["metadata"]
        generation = metadata.get("generation")
        replicas = int(spec.get("replicas", 1) or 0) if after["kind"] != "DaemonSet" else 1
        status: dict[str, Any] = {"observedGeneration": generation}
        if phase == "Complete":
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            template_hash = "".join(random.choices(_SUFFIX, k=10))
            template = copy.deepcopy(spec.get("template") or {})
            template.setdefault("metadata", {})["labels"] = {
                **(template["metadata"].get("labels") or {}), "pod-template-hash": template_hash}
            ordered = after["kind"] == "StatefulSet"  # pods NAME-0, NAME-1, ...
            self._replace_pods(metadata["namespace"], selector, template,
                               metadata["name"] if ordered else
                               f"{metadata['name']}-{template_hash}", replicas, ordered)
            status.update(_complete_status(after["kind"], replicas,
                                           f"{metadata['name']}-{template_hash}"))
        elif phase == "Failed":
            status["conditions"] = [{"type": "Progressing", "status": "False",
                                     "reason": "ProgressDeadlineExceeded",
                                     "message": f"{after['kind']} \"{metadata['name']}\" has "
                                     "timed out progressing."}]
        after["status"] = {**(after.get("status") or {}), **status}
        self.store.put(after)

    # pods

    def _replace_pods(self, namespace: str, selector: dict[str, str], template: Obj,
                      prefix: str, replicas: int, ordered: bool = False) -> None:
        old = [p for p in self.store.snapshot(PODS)
               if p["metadata"].get("namespace") == namespace and selector
               and all((p["metadata"].get("labels") or {}).get(k) == v
                       for k, v in selector.items())]
        nodes = [p.get("spec", {}).get("nodeName") or "node-1" for p in old] or ["node-1"]
        for pod in old:
            self.store.delete(PODS, namespace, pod["metadata"]["name"], dry_run=False)
        for index in range(replicas):
            spec = copy.deepcopy(template.get("spec") or {})
            spec["nodeName"] = nodes[index % len(nodes)]
            self.store.put({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{prefix}-{index}" if ordered else
                             f"{prefix}-{''.join(random.choices(_SUFFIX, k=5))}",
                             "namespace": namespace,
                             "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                             "creationTimestamp": now()},
                "spec": spec,
                "status": {"phase": "Running", "qosClass": qos_class(spec),
                           "conditions": [{"type": "Ready", "status": "True"}]},
            })


def _owner(obj: Obj) -> Obj:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
            "name": obj["metadata"]["name"], "uid": obj["metadata"].get("uid"),
            "controller": True, "blockOwnerDeletion": True}


def _complete_status(kind: str, replicas: int, revision: str) -> Obj:
    if kind == "DaemonSet":
        return {"desiredNumberScheduled": replicas, "currentNumberScheduled": replicas,
                "updatedNumberScheduled": replicas, "numberAvailable": replicas,
                "numberReady": replicas}
    if kind == "StatefulSet":  # the update revision has become the current one
        return {"replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas,
                "availableReplicas": replicas, "currentReplicas": replicas,
                "currentRevision": revision, "updateRevision": revision}
    return {"replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [{"type": "Progressing", "status": "True",
                            "reason": "NewReplicaSetAvailable"}]}


def qos_class(pod_spec: Obj) -> str:
    """BestEffort, Burstable or Guaranteed, as the API server sets status.qosClass."""
    containers = [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]
    any_set, guaranteed = False, True
    for container in containers:
        resources = container.get("resources") or {}
        limits = _positive(resources.get("limits"))
        requests = {**limits, **_positive(resources.get("requests"))}  # defaulting
        any_set = any_set or bool(limits or requests)
        guaranteed = guaranteed and all(
            name in limits and requests.get(name) == limits[name] for name in ("cpu", "memory"))
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _positive(values: Any) -> dict[str, Any]:
    found = {}
    for name in ("cpu", "memory"):
        try:
            quantity = parse_quantity((values or {}).get(name))
        except QuantityError:
            continue
        if quantity > 0:
            found[name] = quantity
    return found
