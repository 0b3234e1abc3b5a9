"""API version profiles: what one kind of API server serves, selected per fake.

- `openshift-3.11`: an OpenShift 3.11 master, Kubernetes 1.11 (the default). No
  coordination.k8s.io group, CronJob only as batch/v1beta1, the OpenShift groups. Its handlers
  never read a `dryRun` query parameter: the DryRun feature gate came in 1.12 (alpha, off by
  default), beta in 1.13 (kubernetes `staging/src/k8s.io/apiserver/pkg/endpoints/handlers`
  create.go, update.go, patch.go before 1.12 read only `timeout` and `includeUninitialized`),
  so a write sent with `?dryRun=All` is applied. Its OpenAPI document lists no `dryRun`
  parameter, which is how a client finds out (kubectl's DryRunVerifier did the same).
- `openshift-4.14`: OpenShift 4.14, Kubernetes 1.27: the OpenShift groups of 3.x (4.14 still
  serves DeploymentConfigs) plus the image registry operator's CRDs and ClusterOperators;
  Lease as coordination.k8s.io/v1, CronJob as batch/v1 (the versions 1.33 serves too),
  server-side dry run.
- `kubernetes-1.33`: a current Kubernetes without OpenShift groups: Lease as
  coordination.k8s.io/v1, CronJob as batch/v1, server-side dry run (GA since 1.19).

The real OpenShift 3.11 also lists batch/v2alpha1 for CronJob; the fake serves each resource in
one version only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .resources import (
    CORE,
    KUBERNETES_1_11,
    KUBERNETES_1_33,
    OPENSHIFT,
    OPENSHIFT_4,
    ResourceType,
    by_name,
)

DEFAULT = "openshift-3.11"


@dataclass(frozen=True)
class Profile:
    name: str
    version: Mapping[str, str]  # the /version document
    resources: tuple[ResourceType, ...]
    dry_run: bool  # handles `?dryRun=All` (else the parameter is ignored and the write applied)
    openapi_title: str
    openapi_version: str

    @property
    def openshift_groups(self) -> tuple[str, ...]:
        return tuple(sorted({r.group for r in self.resources
                             if r.group.endswith(".openshift.io")}))

    def group_versions(self) -> dict[str, list[ResourceType]]:
        """Served resource types by group/version ("v1" for the core group), in discovery
        order."""
        served: dict[str, list[ResourceType]] = {}
        for resource in self.resources:
            served.setdefault(resource.api_version, []).append(resource)
        return served

    def by_path(self, group: str, version: str, plural: str) -> ResourceType | None:
        return next((r for r in self.resources
                     if (r.group, r.version, r.plural) == (group, version, plural)), None)

    def by_name(self, name: str) -> ResourceType:
        return by_name(name, self.resources)

    def for_object(self, obj: Mapping[str, Any]) -> ResourceType | None:
        """The served resource type for an object's apiVersion and kind, if any.

        Objects of other API versions of a served group map to the version served: an
        OpenShift 3.x dump may carry the legacy `apiVersion: v1` (the /oapi endpoint) for
        OpenShift kinds, `extensions/v1beta1` or `apps/v1beta2` for workloads, and a CronJob
        may come as batch/v1 or batch/v1beta1.
        """
        group, kind = str(obj.get("apiVersion", "")).rpartition("/")[0], obj.get("kind")
        served_from = {"": ("", *self.openshift_groups), "extensions": ("apps",)}.get(
            group, (group,))
        for candidate in served_from:
            found = next((r for r in self.resources if r.group == candidate and r.kind == kind),
                         None)
            if found is not None:
                return found
        return None


OPENSHIFT_3_11 = Profile(
    "openshift-3.11",
    {"major": "1", "minor": "11+", "gitVersion": "v1.11.0+d4cacc0", "gitCommit": "d4cacc0",
     "gitTreeState": "clean", "buildDate": "2019-09-18T13:32:01Z", "goVersion": "go1.10.8",
     "compiler": "gc", "platform": "linux/amd64"},
    CORE + OPENSHIFT + KUBERNETES_1_11, dry_run=False,
    openapi_title="OpenShift API (with Kubernetes)", openapi_version="v3.11.0")
KUBERNETES_1_33_PROFILE = Profile(
    "kubernetes-1.33",
    {"major": "1", "minor": "33", "gitVersion": "v1.33.1",
     "gitCommit": "8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828", "gitTreeState": "clean",
     "buildDate": "2025-05-15T08:19:08Z", "goVersion": "go1.24.2", "compiler": "gc",
     "platform": "linux/amd64"},
    CORE + KUBERNETES_1_33, dry_run=True, openapi_title="Kubernetes",
    openapi_version="v1.33.1")
OPENSHIFT_4_14 = Profile(
    "openshift-4.14",
    {"major": "1", "minor": "27", "gitVersion": "v1.27.6+f67aeb3", "gitCommit": "f67aeb3",
     "gitTreeState": "clean", "buildDate": "2023-10-12T07:42:49Z", "goVersion": "go1.20.10",
     "compiler": "gc", "platform": "linux/amd64"},
    CORE + OPENSHIFT + KUBERNETES_1_33 + OPENSHIFT_4, dry_run=True,
    openapi_title="Kubernetes", openapi_version="v1.27.6+f67aeb3")
PROFILES = {p.name: p for p in (OPENSHIFT_3_11, KUBERNETES_1_33_PROFILE, OPENSHIFT_4_14)}


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown API profile {name!r}: use one of {sorted(PROFILES)}") from None
