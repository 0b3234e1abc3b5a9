"""OpenShift 3.x: the integrated registry `oc adm registry` deploys (a DeploymentConfig
`docker-registry` in `default`, or a DaemonSet with `--daemonset`), its Service and routes, and
the registry console (`registry-console`, Cockpit) the installer adds.

Sources: openshift/origin release-3.11 `pkg/oc/cli/admin/registry/registry.go` (what
`oc adm registry` creates), openshift-ansible release-3.11 `roles/cockpit-ui` (the console).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry_doctor.doctor.platform import Installation
from registry_doctor.doctor.snapshot.kinds import registry_workload
from registry_doctor.doctor.workload import as_list

if TYPE_CHECKING:
    from registry_doctor.doctor.snapshot import Snapshot

# Images of the 3.x registry (origin and OpenShift Container Platform).
REGISTRY_IMAGES = ("origin-docker-registry", "ose-docker-registry")
# Collections only an OpenShift cluster can hold.
OPENSHIFT_COLLECTIONS = ("deploymentconfigs", "routes", "oauthclients")


class OpenShift3:
    id = "openshift3"
    title = "OpenShift 3.x integrated registry"
    cli = "oc"
    collections = ("deploymentconfigs", "deployments", "daemonsets", "registry-pods",
                   "services", "routes", "endpoints", "console-pods")

    def detect(self, snapshot: Snapshot) -> str | None:
        registry = registry_workload(snapshot.collections, snapshot.config)
        if registry is not None:
            for _, container in registry.containers():
                image = str(container.get("image", ""))
                if any(name in image for name in REGISTRY_IMAGES):
                    return f"{registry.ref} runs {image}"
            if registry.kind == "DeploymentConfig":
                return f"{registry.ref} is a DeploymentConfig"
        for collection in OPENSHIFT_COLLECTIONS:
            found = as_list(snapshot.collections.get(collection))
            if found:
                return f"the cluster holds {len(found)} {collection}"
        return None

    def locate(self, snapshot: Snapshot) -> Installation:
        config = snapshot.config
        return Installation(platform=self.id, cli=self.cli, namespace=config.namespace,
                            registry_name=config.registry_name,
                            console_name=config.console_name, snapshot=snapshot)


ADAPTER = OpenShift3()
