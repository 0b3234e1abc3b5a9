"""The resource types the fake API server serves, with the discovery data of the real ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CRUD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
NAMESPACE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)
EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "type",
)


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = CRUD_VERBS
    fields: tuple[str, ...] = ()  # field selector labels beyond metadata.name/namespace
    subresources: tuple[Subresource, ...] = ()
    has_status: bool = False  # status is a subresource: writes to the object keep the stored one
    custom: bool = False  # defined by a CRD: no strategic merge patch, stricter updates

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """The group-qualified resource name, as in error messages: `deploymentconfigs.apps...`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def selectable_fields(self) -> tuple[str, ...]:
        scope = ("metadata.name", "metadata.namespace") if self.namespaced else ("metadata.name",)
        return scope + self.fields

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)


def _core(plural: str, kind: str, namespaced: bool = True, **kwargs: Any) -> ResourceType:
    return ResourceType("", "v1", plural, kind, namespaced, **kwargs)


# Every resource type some version profile serves (tests/kubefake/profiles.py picks its own). Each
# profile serves a resource in one version only: the store keeps one copy per type.
CORE: tuple[ResourceType, ...] = (
    _core("pods", "Pod", short_names=("po",), categories=("all",), fields=POD_FIELDS,
          subresources=(Subresource("log", "Pod", ("get",)),), has_status=True),
    _core("services", "Service", short_names=("svc",), categories=("all",), has_status=True),
    _core("configmaps", "ConfigMap", short_names=("cm",)),
    _core("secrets", "Secret", fields=("type",)),
    _core("persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",),
          has_status=True),
    _core("persistentvolumes", "PersistentVolume", False, short_names=("pv",), has_status=True),
    _core("namespaces", "Namespace", False, short_names=("ns",), verbs=NAMESPACE_VERBS,
          fields=("status.phase",), has_status=True),
    # nodes/proxy: the API server proxies to the node's kubelet (its summary API).
    _core("nodes", "Node", False, short_names=("no",), has_status=True,
          subresources=(Subresource("proxy", "Node", ("get",)),)),
    _core("limitranges", "LimitRange", short_names=("limits",)),
    _core("serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _core("events", "Event", short_names=("ev",), fields=EVENT_FIELDS),
    _core("endpoints", "Endpoints", short_names=("ep",)),
    _core("replicationcontrollers", "ReplicationController", short_names=("rc",),
          categories=("all",), fields=("status.replicas",), has_status=True),
    ResourceType("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("all",),
                 has_status=True),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), ("all",),
                 has_status=True),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("all",),
                 has_status=True),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), ("all",),
                 has_status=True),
    ResourceType("batch", "v1", "jobs", "Job", True, categories=("all",), has_status=True),
    ResourceType("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ("sc",)),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
                 False),
    ResourceType("authorization.k8s.io", "v1", "selfsubjectaccessreviews",
                 "SelfSubjectAccessReview", False, verbs=("create",)),
    # The prometheus-operator's CRDs (OpenShift 3.11 installs them with cluster monitoring).
    ResourceType("monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor", True,
                 ("smon",), ("prometheus-operator",), custom=True),
    ResourceType("monitoring.coreos.com", "v1", "prometheusrules", "PrometheusRule", True,
                 ("promrule",), ("prometheus-operator",), custom=True),
)
OPENSHIFT: tuple[ResourceType, ...] = (
    ResourceType("apps.openshift.io", "v1", "deploymentconfigs", "DeploymentConfig", True,
                 ("dc",), ("all",), has_status=True,
                 subresources=(Subresource("instantiate", "DeploymentRequest", ("create",)),)),
    ResourceType("route.openshift.io", "v1", "routes", "Route", True, categories=("all",),
                 has_status=True),
    ResourceType("oauth.openshift.io", "v1", "oauthclients", "OAuthClient", False),
    ResourceType("security.openshift.io", "v1", "securitycontextconstraints",
                 "SecurityContextConstraints", False, ("scc",)),
)
# Kubernetes 1.11: CronJob only as batch/v1beta1 (v1 came in 1.21), events.k8s.io/v1beta1
# (v1 in 1.19), no coordination.k8s.io (Lease: v1beta1 in 1.12, v1 in 1.14).
KUBERNETES_1_11: tuple[ResourceType, ...] = (
    ResourceType("batch", "v1beta1", "cronjobs", "CronJob", True, ("cj",), ("all",),
                 has_status=True),
    ResourceType("events.k8s.io", "v1beta1", "events", "Event", True, ("ev",)),
)
KUBERNETES_1_33: tuple[ResourceType, ...] = (
    ResourceType("batch", "v1", "cronjobs", "CronJob", True, ("cj",), ("all",),
                 has_status=True),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, ("ev",)),
    ResourceType("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",),
                 has_status=True),
)
# OpenShift 4's operator-run registry (openshift/api `imageregistry/v1`: Config and ImagePruner,
# both cluster-scoped CRDs) and the cluster version operator's ClusterOperator (openshift/api
# `config/v1`, cluster-scoped, short name `co`).
OPENSHIFT_4: tuple[ResourceType, ...] = (
    ResourceType("imageregistry.operator.openshift.io", "v1", "configs", "Config", False,
                 has_status=True, custom=True),
    ResourceType("imageregistry.operator.openshift.io", "v1", "imagepruners", "ImagePruner",
                 False, has_status=True, custom=True),
    ResourceType("config.openshift.io", "v1", "clusteroperators", "ClusterOperator", False,
                 ("co",), has_status=True, custom=True),
)
ALL_RESOURCES = CORE + OPENSHIFT + KUBERNETES_1_11 + KUBERNETES_1_33 + OPENSHIFT_4


def by_name(name: str, resources: tuple[ResourceType, ...] = ALL_RESOURCES) -> ResourceType:
    """A resource type by plural, `plural.group` or kind, as tests name them; core wins ties."""
    for resource in resources:
        if name in (resource.plural, resource.qualified, resource.kind):
            return resource
    raise KeyError(f"the fake API server does not serve {name!r}")
