"""A uniform view of the workload that runs the registry or the console.

`oc adm registry` creates a DeploymentConfig; plain Kubernetes installs use a Deployment, a
DaemonSet or a StatefulSet. Checks read them all the same way through `Workload`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from registry_doctor.doctor.model import Resource

# collection name -> (kind, short name used in evidence as `oc` prints it)
WORKLOAD_COLLECTIONS = {
    "deploymentconfigs": ("DeploymentConfig", "dc"),
    "deployments": ("Deployment", "deployment"),
    "daemonsets": ("DaemonSet", "ds"),
    "statefulsets": ("StatefulSet", "statefulset"),
}
# The snapshot collections a reader of the registry's or console's workload declares.
WORKLOAD_KINDS = tuple(WORKLOAD_COLLECTIONS)
# The volume type a StatefulSet's volumeClaimTemplate gives its pods: each pod's own claim.
CLAIM_TEMPLATE = "volumeClaimTemplate"


def as_dict(value: Any) -> dict[str, Any]:
    """`value` if it is a mapping, else an empty one: dumps may hold any type anywhere."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class Workload:
    kind: str
    short: str
    obj: dict[str, Any]

    @property
    def name(self) -> str:
        return self.obj["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return str(as_dict(self.obj.get("metadata")).get("namespace") or "default")

    @property
    def ref(self) -> str:
        return f"{self.short}/{self.name}"

    @property
    def resource(self) -> Resource:
        return Resource(self.kind, self.name, self.namespace)

    @property
    def spec(self) -> dict[str, Any]:
        return as_dict(self.obj.get("spec"))

    @property
    def replicas(self) -> int | None:
        """Desired pod count; None for a DaemonSet (one pod per eligible node)."""
        if self.kind == "DaemonSet":
            return None
        replicas = self.spec.get("replicas", 1)
        return replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else 1

    @property
    def rolling(self) -> str | None:
        """The rolling strategy's type (new pods start before old ones stop), with the API's
        default when unset; None for Recreate, OnDelete, a DaemonSet, a StatefulSet (its
        RollingUpdate deletes a pod before it recreates it: apps/v1 StatefulSetUpdateStrategy
        has no maxSurge), or a rolling strategy whose maxSurge comes to 0 pods: that one stops
        old pods first (maxUnavailable, which the API then makes at least 1)."""
        default = {"DeploymentConfig": "Rolling", "Deployment": "RollingUpdate"}.get(self.kind)
        strategy = as_dict(self.spec.get("strategy"))
        kind = strategy.get("type") or default
        if kind not in ("Rolling", "RollingUpdate") or not default:
            return None
        params = as_dict(strategy.get("rollingParams" if kind == "Rolling" else "rollingUpdate"))
        return kind if _surge(params.get("maxSurge"), self.replicas or 1) > 0 else None

    @property
    def pod_spec(self) -> dict[str, Any]:
        return as_dict(as_dict(self.spec.get("template")).get("spec"))

    @property
    def claim_templates(self) -> dict[str, dict[str, Any]]:
        """A StatefulSet's spec.volumeClaimTemplates by name; empty for other kinds."""
        if self.kind != "StatefulSet":
            return {}
        templates = (as_dict(t) for t in as_list(self.spec.get("volumeClaimTemplates")))
        return {name: t for t in templates
                if isinstance(name := as_dict(t.get("metadata")).get("name"), str)}

    @property
    def pod_spec_with_claims(self) -> dict[str, Any]:
        """The pod template's spec with the volumes its pods get: a StatefulSet's controller
        adds one per volumeClaimTemplate, replacing a template volume of the same name, each
        pod's own claim `<template>-<statefulset>-<ordinal>` (kubernetes
        pkg/controller/statefulset/stateful_set_utils.go: updateStorage,
        getPersistentVolumeClaimName). Here: `{"name": ..., "volumeClaimTemplate": <it>}`."""
        templates = self.claim_templates
        if not templates:
            return self.pod_spec
        volumes = [v for v in as_list(self.pod_spec.get("volumes"))
                   if as_dict(v).get("name") not in templates]
        volumes += [{"name": name, CLAIM_TEMPLATE: template}
                    for name, template in templates.items()]
        return {**self.pod_spec, "volumes": volumes}

    def pod_claim_names(self, template: str) -> list[str]:
        """The claims a StatefulSet's pods get from `template`, one per ordinal (from
        spec.ordinals.start, 0 by default)."""
        start = as_dict(self.spec.get("ordinals")).get("start", 0)
        start = start if isinstance(start, int) and not isinstance(start, bool) else 0
        return [f"{template}-{self.name}-{ordinal}"
                for ordinal in range(start, start + (self.replicas or 0))]

    def containers(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for index, container in enumerate(as_list(self.pod_spec.get("containers"))):
            if isinstance(container, dict):
                yield index, container

    def container_path(self, container: dict[str, Any], index: int) -> str:
        """Evidence path of a container, by name as `oc set` addresses it."""
        label = container.get("name") if isinstance(container.get("name"), str) else index
        return f"spec.template.spec.containers[{label}]"

    def main_container(self, preferred: str) -> tuple[int, dict[str, Any]] | None:
        containers = list(self.containers())
        for index, container in containers:
            if container.get("name") == preferred:
                return index, container
        return containers[0] if containers else None

    def label_selector(self) -> str | None:
        """The pod selector as a label-selector string, or None when it selects nothing."""
        selector = as_dict(self.spec.get("selector"))
        if self.kind == "DeploymentConfig":
            labels, expressions = selector, []
        else:
            labels = as_dict(selector.get("matchLabels"))
            expressions = as_list(selector.get("matchExpressions"))
        terms = [f"{key}={value}" for key, value in sorted(labels.items())
                 if isinstance(value, str | int)]
        terms.extend(filter(None, (_expression_term(e) for e in expressions)))
        return ",".join(terms) or None


def _surge(value: Any, replicas: int) -> int:
    """maxSurge in pods: an integer, or a percentage of the replicas rounded up; unset or
    unreadable is the API's default, 25% (k8s.io/apimachinery intstr
    GetScaledValueFromIntOrPercent, called with roundUp for maxSurge by both the Deployment
    controller and OpenShift's Rolling deployer)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    readable = isinstance(value, str) and value.endswith("%") and value[:-1].isdigit()
    percent = int(value[:-1]) if readable else 25
    return -(-percent * replicas // 100)  # rounded up


def _expression_term(expression: Any) -> str | None:
    expression = as_dict(expression)
    key, operator = expression.get("key"), expression.get("operator")
    values = ",".join(str(v) for v in as_list(expression.get("values")))
    if not isinstance(key, str):
        return None
    return {
        "In": f"{key} in ({values})",
        "NotIn": f"{key} notin ({values})",
        "Exists": key,
        "DoesNotExist": f"!{key}",
    }.get(str(operator))


def find_workload(collections: dict[str, list[dict[str, Any]]], name: str) -> Workload | None:
    """The DeploymentConfig, Deployment, DaemonSet or StatefulSet called `name`, in that order of
    preference."""
    for collection, (kind, short) in WORKLOAD_COLLECTIONS.items():
        for obj in collections.get(collection, ()):
            if obj["metadata"]["name"] == name:
                return Workload(kind, short, obj)
    return None
