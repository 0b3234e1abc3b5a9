"""OpenShift 4: the image registry the cluster-image-registry-operator runs: Deployment
`image-registry` in `openshift-image-registry` (labels `docker-registry: default`), its pods,
Service and routes. The operator writes no config.yml: it renders the Deployment's environment
(REGISTRY_STORAGE=filesystem|s3|..., the S3 settings, a shared-credentials file from secret
`image-registry-private-configuration`) from its cluster-scoped Config CR
`configs.imageregistry.operator.openshift.io/cluster`, which therefore owns the configuration:
a fix patches the CR's spec, never the Deployment (the operator reverts that). There is no
registry console on 4.x.

Sources: openshift/cluster-image-registry-operator `pkg/defaults/defaults.go` (names),
`pkg/resource/podtemplatespec.go` (env, volumes, resources), `pkg/storage/s3/s3.go`;
openshift/api `imageregistry/v1/types.go` (the CR).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from registry_doctor.doctor.platform import Installation, with_names
from registry_doctor.doctor.registryconfig import OPENSHIFT4_IMAGE
from registry_doctor.doctor.snapshot.kinds import OPERATOR_CONFIG_NAME

if TYPE_CHECKING:
    from registry_doctor.doctor.config import RunConfig
    from registry_doctor.doctor.fix.model import Action
    from registry_doctor.doctor.snapshot import Snapshot, Source

OPERATOR_GROUP = "imageregistry.operator.openshift.io"
NAMESPACE, REGISTRY = "openshift-image-registry", "image-registry"
# How `oc` names the CR, in texts and in `oc patch <resource> <name>`.
OPERATOR_RESOURCE = f"configs.{OPERATOR_GROUP}"
OWNER = f"{OPERATOR_RESOURCE}/{OPERATOR_CONFIG_NAME}"
ABSENT = (f"the operator deploys none while {OWNER} is Removed (the bare-metal default) or "
          "configures no storage: see registry-operator")


class OpenShift4:
    id = "openshift4"
    title = "OpenShift 4 image registry (cluster-image-registry-operator)"
    cli = "oc"
    # How the docs name its objects in fix texts (a report names the installation found).
    doc_names = MappingProxyType({
        "cli": "oc", "namespace": NAMESPACE, "registry": f"deployment/{REGISTRY}",
        "console": "none", "service": f"svc/{REGISTRY}", "owner": OWNER})
    collections = ("deployments", "registry-pods", "services", "routes", "endpoints",
                   "registry-operator-config", "registry-clusteroperator",
                   "registry-imagepruner")

    def detect(self, groups: frozenset[str]) -> str | None:
        return f"the cluster serves {OPERATOR_GROUP}" if OPERATOR_GROUP in groups else None

    def settle(self, config: RunConfig, source: Source) -> RunConfig:
        # No registry console on 4.x: an empty name matches no workload and reads nothing.
        return with_names(config, {"namespace": NAMESPACE, "registry_name": REGISTRY,
                                   "console_name": ""})

    def lower(self, actions: list[Action]) -> list[Action]:
        # The planners already wrote the operator's Config (PlanContext.configure).
        return actions

    def locate(self, snapshot: Snapshot) -> Installation:
        config = snapshot.config
        return Installation(platform=self.id, cli=self.cli, namespace=config.namespace,
                            registry_name=config.registry_name, console_name="",
                            snapshot=snapshot, owner=OWNER, image=OPENSHIFT4_IMAGE,
                            absent_hint=ABSENT)


ADAPTER = OpenShift4()
