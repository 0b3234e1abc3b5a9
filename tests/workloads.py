"""Registry workloads built in tests: a DeploymentConfig that reads its configuration from a
configmap or secret, as the 3.x docs' "Overriding the registry configuration" sets it up."""

from __future__ import annotations

import base64
from typing import Any

from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.snapshot import Snapshot
from registry_doctor.doctor.snapshot.kinds import CATALOGUE

CONFIG_DIR = "/etc/docker/registry"
OPENSHIFT_IMAGE = "docker.io/openshift/origin-docker-registry:v3.11"
UPSTREAM_IMAGE = "docker.io/library/registry:2.8.2"


def registry_dc(image: str = OPENSHIFT_IMAGE, env: dict[str, Any] | None = None,
                config_from: tuple[str, str] | None = ("Secret", "registry-config"),
                replicas: int = 1, **container: Any) -> dict[str, Any]:
    """`config_from`: (kind, name) of the object mounted at CONFIG_DIR, with
    REGISTRY_CONFIGURATION_PATH pointing at its config.yml; None: the image's own file."""
    env_list = [{"name": k, **(v if isinstance(v, dict) else {"value": v})}
                for k, v in (env or {}).items()]
    mounts, volumes = [], []
    if config_from is not None:
        kind, name = config_from
        source = {"secret": {"secretName": name}} if kind == "Secret" else \
            {"configMap": {"name": name}}
        mounts.append({"name": "registry-config", "mountPath": CONFIG_DIR})
        volumes.append({"name": "registry-config", **source})
        env_list.insert(0, {"name": "REGISTRY_CONFIGURATION_PATH",
                            "value": f"{CONFIG_DIR}/config.yml"})
    return {
        "apiVersion": "apps.openshift.io/v1", "kind": "DeploymentConfig",
        "metadata": {"name": "docker-registry", "namespace": "default",
                     "labels": {"docker-registry": "default"}},
        "spec": {
            "replicas": replicas, "selector": {"docker-registry": "default"},
            "template": {
                "metadata": {"labels": {"docker-registry": "default"}},
                "spec": {"containers": [{"name": "registry", "image": image, "env": env_list,
                                         "volumeMounts": mounts, **container}],
                         "volumes": volumes}},
        },
    }


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": "default"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": data}


def snapshot_of(*objects: dict[str, Any]) -> Snapshot:
    """A snapshot holding `objects` in every collection of their kind."""
    collections: dict[str, list[dict]] = {}
    for obj in objects:
        for collection in CATALOGUE.values():
            if collection.kind == obj["kind"]:
                collections.setdefault(collection.name, []).append(obj)
    return Snapshot(config=RunConfig(), source={"type": "test"}, collections=collections)
