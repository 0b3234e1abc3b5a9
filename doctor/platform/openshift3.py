"""OpenShift 3.x: the integrated registry `oc adm registry` deploys (a DeploymentConfig
`docker-registry` in `default`, or a DaemonSet with `--daemonset`), its Service and routes, and
the registry console (`registry-console`, Cockpit) the installer adds.

Sources: openshift/origin release-3.11 `pkg/oc/cli/admin/registry/registry.go` (what
`oc adm registry` creates), openshift-ansible release-3.11 `roles/cockpit-ui` (the console).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry_doctor.doctor.model import DEFAULT_NAMES
from registry_doctor.doctor.platform import Installation, with_names

if TYPE_CHECKING:
    from registry_doctor.doctor.config import RunConfig
    from registry_doctor.doctor.fix.model import Action
    from registry_doctor.doctor.snapshot import Snapshot, Source

# API groups only OpenShift serves (3.x serves them since 3.6; older masters only the legacy
# /oapi, which a 3.x-era dump shows as DeploymentConfigs of apiVersion v1: see detect).
OPENSHIFT_GROUPS = ("apps.openshift.io", "route.openshift.io", "oauth.openshift.io")


class OpenShift3:
    id = "openshift3"
    title = "OpenShift 3.x integrated registry"
    cli = "oc"
    doc_names = DEFAULT_NAMES
    collections = ("deploymentconfigs", "deployments", "daemonsets", "registry-pods",
                   "services", "routes", "endpoints", "console-pods")

    def detect(self, groups: frozenset[str]) -> str | None:
        served = [g for g in OPENSHIFT_GROUPS if g in groups]
        return f"the cluster serves {', '.join(served)}" if served else None

    def settle(self, config: RunConfig, source: Source) -> RunConfig:
        # What `oc adm registry` and the installer's registry console create.
        return with_names(config, {"namespace": "default", "registry_name": "docker-registry",
                                   "console_name": "registry-console"})

    def lower(self, actions: list[Action]) -> list[Action]:
        # A DeploymentConfig patch (its ConfigChange trigger, or an instantiate, redeploys).
        return actions

    def locate(self, snapshot: Snapshot) -> Installation:
        config = snapshot.config
        return Installation(platform=self.id, cli=self.cli, namespace=config.namespace,
                            registry_name=config.registry_name,
                            console_name=config.console_name, snapshot=snapshot)


ADAPTER = OpenShift3()
