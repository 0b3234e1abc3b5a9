"""The catalogue of what the snapshot can hold, and how narrowly each collection is fetched.

A check names the collections it reads in its metadata; the collector fetches exactly those
(plus what their scopes depend on), each with the narrowest query that finds what checks need:
the registry namespace, the workload's own label selector, a GET by name, a field selector on
the node. Nothing is listed cluster-wide when a scope exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from registry_doctor.doctor.config import (
    CLUSTER_OPERATOR,
    CONSOLE,
    CONSOLE_OAUTH_CLIENT,
    CONSOLE_SECRETS,
    OPERATOR_CONFIG,
    REGISTRY,
    REGISTRY_NAMESPACE,
    REGISTRY_SECRETS,
    RunConfig,
)
from registry_doctor.doctor.workload import (
    WORKLOAD_COLLECTIONS,
    Workload,
    as_dict,
    as_list,
    find_workload,
)

Collections = dict[str, list[dict]]


class ScopeUnavailable(Exception):
    """A collection's scope depends on data that could not be collected."""


@dataclass(frozen=True)
class Query:
    namespace: str | None = None
    name: str | None = None  # set: a GET by name, absent object = empty result
    label_selector: str | None = None
    field_selector: str | None = None

    def describe(self, resource: str) -> str:
        verb = "get" if self.name else "list"
        what = f"{resource}/{self.name}" if self.name else resource
        where = f" in {self.namespace}" if self.namespace else ""
        scope = "".join(
            f" {flag} {value}" for flag, value in
            (("-l", self.label_selector), ("--field-selector", self.field_selector)) if value
        )
        return f"{verb} {what}{where}{scope}"


@dataclass(frozen=True)
class Collection:
    name: str
    api_version: str  # "v1" or "group/version"
    resource: str  # plural, as in the URL
    kind: str
    namespaced: bool
    scope: Callable[[Collections, RunConfig], list[Query]]
    needs: tuple[str, ...] = ()
    # An API group that may be absent (no OpenShift): a 404 there means "none", not an error.
    optional_group: bool = False
    # What the scope's queries ask the API server, so RBAC grants exactly that (doctor/rbac.py):
    # "get" when they name objects, else "list"; all_namespaces when a namespaced resource is
    # read across namespaces (e.g. by node). tests/test_rbac.py holds the scopes to this.
    verb: str = "list"
    all_namespaces: bool = False
    # A RunConfig flag without which the scope reads nothing (and RBAC grants nothing).
    opt_in: str = ""
    # For "get": the name symbols (doctor.config) of every object the scope may name, so RBAC
    # grants those alone (resourceNames); empty: names the chart cannot know (a volume's).
    names: tuple[str, ...] = ()
    # The platforms (doctor.platform ids) whose clusters serve it; empty: every platform.
    # Elsewhere it is not collected at all (and RBAC grants nothing for it).
    platforms: tuple[str, ...] = ()

    def serves(self, platform: str) -> bool:
        return not self.platforms or platform in self.platforms

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]


def _in_namespace(_: Collections, config: RunConfig) -> list[Query]:
    return [Query(namespace=config.namespace)]


def _registry_and_console(_: Collections, config: RunConfig) -> list[Query]:
    """The registry's and the console's own objects, by name: a namespace such as `default`
    holds others (the router's, with its stats password) that are none of our business."""
    return [Query(namespace=config.namespace, name=n)
            for n in dict.fromkeys((config.registry_name, config.console_name)) if n]


def registry_workload(collections: Collections, config: RunConfig) -> Workload | None:
    return find_workload(collections, config.registry_name)


def console_workload(collections: Collections, config: RunConfig) -> Workload | None:
    """None where the platform has no console (an empty name)."""
    return find_workload(collections, config.console_name) if config.console_name else None


def _pods_of(workload: Workload | None, config: RunConfig) -> list[Query]:
    if workload is None:
        return []
    selector = workload.label_selector()
    if selector is None:  # an empty selector would match every pod in the namespace
        raise ScopeUnavailable(f"{workload.ref} has no pod selector in spec.selector")
    return [Query(namespace=config.namespace, label_selector=selector)]


def _registry_pods(collections: Collections, config: RunConfig) -> list[Query]:
    return _pods_of(registry_workload(collections, config), config)


def _console_pods(collections: Collections, config: RunConfig) -> list[Query]:
    return _pods_of(console_workload(collections, config), config)


def registry_claim_names(collections: Collections, config: RunConfig) -> list[str]:
    """The claims of the registry's pods: those its pod template names, and a StatefulSet's
    per-pod claims from its volumeClaimTemplates."""
    workload = registry_workload(collections, config)
    if workload is None:
        return []
    claims = [as_dict(as_dict(v).get("persistentVolumeClaim")).get("claimName")
              for v in as_list(workload.pod_spec.get("volumes"))]
    claims += [c for t in workload.claim_templates for c in workload.pod_claim_names(t)]
    return sorted({c for c in claims if isinstance(c, str)})


def secret_names(workload: Workload | None) -> list[str]:
    """Secrets a workload's pod template names: volumes, env and envFrom."""
    if workload is None:
        return []
    names: list[object] = []
    for volume in map(as_dict, as_list(workload.pod_spec.get("volumes"))):
        names.append(as_dict(volume.get("secret")).get("secretName"))
        for source in as_list(as_dict(volume.get("projected")).get("sources")):
            names.append(as_dict(as_dict(source).get("secret")).get("name"))
    for _, container in workload.containers():
        for env in as_list(container.get("env")):
            names.append(as_dict(as_dict(as_dict(env).get("valueFrom")).get("secretKeyRef"))
                         .get("name"))
        for source in as_list(container.get("envFrom")):
            names.append(as_dict(as_dict(source).get("secretRef")).get("name"))
    return _names(names)


def registry_secret_names(collections: Collections, config: RunConfig) -> list[str]:
    return secret_names(registry_workload(collections, config))


def _registry_secrets(collections: Collections, config: RunConfig) -> list[Query]:
    """The registry's own secrets, by name: never every secret of the namespace."""
    return [Query(namespace=config.namespace, name=n)
            for n in registry_secret_names(collections, config)]


def _console_secrets(collections: Collections, config: RunConfig) -> list[Query]:
    """The console's own secrets (its certificate), by name."""
    return [Query(namespace=config.namespace, name=n)
            for n in secret_names(console_workload(collections, config))]


def _registry_volumes(collections: Collections, config: RunConfig) -> list[Query]:
    """PVs bound to the registry's claims, by name: never the cluster's whole PV list."""
    wanted = set(registry_claim_names(collections, config))
    names = (as_dict(claim.get("spec")).get("volumeName")
             for claim in collections.get("persistentvolumeclaims", ())
             if claim["metadata"]["name"] in wanted)
    return [Query(name=n) for n in _names(names)]


def _registry_storage_classes(collections: Collections, config: RunConfig) -> list[Query]:
    wanted = set(registry_claim_names(collections, config))
    claims = [c for c in collections.get("persistentvolumeclaims", ())
              if c["metadata"]["name"] in wanted]
    names = (as_dict(o.get("spec")).get("storageClassName")
             for o in claims + collections.get("persistentvolumes", []))
    return [Query(name=n) for n in _names(names)]


def _console_oauth_client(collections: Collections, config: RunConfig) -> list[Query]:
    """The configured client (--console-oauth-client), never the one the console's env names:
    OAuthClients carry client secrets, so RBAC grants this one alone (docs/helm.md)."""
    if console_workload(collections, config) is None:
        return []
    return [Query(name=config.console_oauth_client)]


def console_env(console: Workload) -> dict[str, str]:
    """Literal env values of the console container (the first container of the pod)."""
    first = next(console.containers(), (0, {}))[1]
    return {
        str(e["name"]): str(e["value"])
        for e in as_list(first.get("env"))
        if isinstance(e, dict) and isinstance(e.get("name"), str) and "value" in e
    }


def _registry_service_endpoints(_: Collections, config: RunConfig) -> list[Query]:
    """The Endpoints object of the registry Service (same name): its pod addresses."""
    return [Query(namespace=config.namespace, name=config.registry_name)]


DC_LABEL = "openshift.io/deployment-config.name"  # set by the DC controller on its RCs


def _replication_controllers_of(workload: Workload | None, config: RunConfig) -> list[Query]:
    """A DeploymentConfig's deployments (one RC each), by the label its controller sets on
    them; nothing for a Deployment or DaemonSet."""
    if workload is None or workload.kind != "DeploymentConfig":
        return []
    return [Query(namespace=config.namespace, label_selector=f"{DC_LABEL}={workload.name}")]


def _registry_replication_controllers(collections: Collections,
                                      config: RunConfig) -> list[Query]:
    return _replication_controllers_of(registry_workload(collections, config), config)


def _console_replication_controllers(collections: Collections,
                                     config: RunConfig) -> list[Query]:
    return _replication_controllers_of(console_workload(collections, config), config)


REVISION = "deployment.kubernetes.io/revision"  # set by the Deployment controller on its RSs


def _registry_replica_sets(collections: Collections, config: RunConfig) -> list[Query]:
    """A registry Deployment's ReplicaSets, by the Deployment's own pod selector (every RS of
    the Deployment carries the template's labels plus pod-template-hash); nothing for a
    DeploymentConfig or DaemonSet."""
    workload = registry_workload(collections, config)
    if workload is None or workload.kind != "Deployment":
        return []
    return _pods_of(workload, config)


def newest_replica_set(replica_sets: Iterable[dict]) -> dict | None:
    """A Deployment's current revision: the ReplicaSet with the highest
    `deployment.kubernetes.io/revision` (Kubernetes pkg/controller/deployment/util/
    deployment_util.go sets it on each new RS; what `kubectl rollout history` lists)."""
    return _latest(replica_sets, REVISION)


def latest_replication_controller(controllers: Iterable[dict]) -> dict | None:
    """The DC's latest deployment: the RC with the highest
    `openshift.io/deployment-config.latest-version` annotation."""
    return _latest(controllers, "openshift.io/deployment-config.latest-version")


def _latest(objects: Iterable[dict], annotation: str) -> dict | None:
    def version(obj: dict) -> int:
        text = as_dict(as_dict(obj.get("metadata")).get("annotations")).get(annotation)
        return int(text) if isinstance(text, str) and text.isdigit() else -1

    return max(objects, key=version, default=None)


def _events_about(workload: Workload | None, subjects: Iterable[tuple[str, object]],
                  config: RunConfig) -> list[Query]:
    """Events about a workload and `subjects` (kind, name), one field selector per object.
    Events about one object are few (the recorder aggregates repeats into a count, the API
    server expires them after --event-ttl), so each answer is bounded without listing the
    namespace's events, which in `default` include every other tenant's."""
    if workload is None:
        return []
    return [Query(namespace=config.namespace,
                  field_selector=f"involvedObject.kind={kind},involvedObject.name={name}")
            for kind, name in dict.fromkeys([(workload.kind, workload.name), *subjects])
            if isinstance(name, str) and name]


def _controller_subjects(pods: Iterable[dict], controllers: Iterable[dict],
                         replica_sets: Iterable[dict] = ()) -> list[tuple[str, object]]:
    """The pods and the latest RC (DeploymentConfig) or newest RS (Deployment): where the
    events that explain a rollout are."""
    latest_rc = latest_replication_controller(controllers)
    newest_rs = newest_replica_set(replica_sets)
    return [*(("Pod", as_dict(p.get("metadata")).get("name")) for p in pods),
            *([("ReplicationController", as_dict(latest_rc.get("metadata")).get("name"))]
              if latest_rc else []),
            *([("ReplicaSet", as_dict(newest_rs.get("metadata")).get("name"))]
              if newest_rs else [])]


def _registry_events(collections: Collections, config: RunConfig) -> list[Query]:
    """Events about the registry's own objects: its workload, pods, latest RC or newest RS
    and claims."""
    subjects = _controller_subjects(collections.get("registry-pods", ()),
                                    collections.get("registry-replicationcontrollers", ()),
                                    collections.get("registry-replicasets", ()))
    claims = [("PersistentVolumeClaim", c) for c in registry_claim_names(collections, config)]
    return _events_about(registry_workload(collections, config), subjects + claims, config)


def _console_events(collections: Collections, config: RunConfig) -> list[Query]:
    """Events about the console's workload, pods and latest RC (the console is a
    DeploymentConfig of OpenShift 3.x)."""
    subjects = _controller_subjects(collections.get("console-pods", ()),
                                    collections.get("console-replicationcontrollers", ()))
    return _events_about(console_workload(collections, config), subjects, config)


def _console_service_endpoints(_: Collections, config: RunConfig) -> list[Query]:
    """The Endpoints object of the console Service (same name as the console); none where the
    platform has no console (an empty name would list every Endpoints of the namespace)."""
    return [Query(namespace=config.namespace, name=config.console_name)] \
        if config.console_name else []


def _registry_namespace(_: Collections, config: RunConfig) -> list[Query]:
    """The registry's Namespace, by name: on OpenShift its annotations hold the UID range the
    SCC admission assigns pods from (openshift.io/sa.scc.uid-range)."""
    return [Query(name=config.namespace)]


def _console_node_pods(collections: Collections, config: RunConfig) -> list[Query]:
    """Every pod on the nodes the console runs on: they may hold its host port. Only with
    --node-pod-scan: RBAC can grant that only as a list of every pod of the cluster."""
    if not config.node_pod_scan:
        return []
    nodes = (as_dict(p.get("spec")).get("nodeName") for p in collections.get("console-pods", ()))
    return [Query(field_selector=f"spec.nodeName={n}") for n in _names(nodes)]


def _names(values: Iterable[object]) -> list[str]:
    """The distinct non-empty strings among field values, sorted; a dump may hold lists or
    mappings there, which are not names (and not hashable)."""
    return sorted({v for v in values if isinstance(v, str) and v})


# OpenShift 4: the image registry operator's singletons (openshift/cluster-image-registry-operator
# `pkg/defaults/defaults.go`: the Config and ImagePruner named `cluster`, the ClusterOperator
# `image-registry`), read by name; absent groups (any other platform) mean none.
OPERATOR_CONFIG_NAME, CLUSTER_OPERATOR_NAME = "cluster", "image-registry"


OPENSHIFT4 = ("openshift4",)


def _operator_config(_: Collections, __: RunConfig) -> list[Query]:
    return [Query(name=OPERATOR_CONFIG_NAME)]


def _cluster_operator(_: Collections, __: RunConfig) -> list[Query]:
    return [Query(name=CLUSTER_OPERATOR_NAME)]


_WORKLOADS = tuple(WORKLOAD_COLLECTIONS)

CATALOGUE: dict[str, Collection] = {c.name: c for c in (
    Collection("deploymentconfigs", "apps.openshift.io/v1", "deploymentconfigs",
               "DeploymentConfig", True, _registry_and_console, optional_group=True,
               verb="get", names=(REGISTRY, CONSOLE)),
    Collection("deployments", "apps/v1", "deployments", "Deployment", True,
               _registry_and_console, verb="get", names=(REGISTRY, CONSOLE)),
    Collection("daemonsets", "apps/v1", "daemonsets", "DaemonSet", True, _registry_and_console,
               verb="get", names=(REGISTRY, CONSOLE)),
    # A registry with per-pod claims (volumeClaimTemplates), as plain Kubernetes runs one.
    Collection("statefulsets", "apps/v1", "statefulsets", "StatefulSet", True,
               _registry_and_console, verb="get", names=(REGISTRY, CONSOLE)),
    Collection("registry-pods", "v1", "pods", "Pod", True, _registry_pods, needs=_WORKLOADS),
    Collection("console-pods", "v1", "pods", "Pod", True, _console_pods, needs=_WORKLOADS),
    Collection("console-node-pods", "v1", "pods", "Pod", True, _console_node_pods,
               needs=("console-pods",), all_namespaces=True, opt_in="node_pod_scan"),
    Collection("registry-replicationcontrollers", "v1", "replicationcontrollers",
               "ReplicationController", True, _registry_replication_controllers,
               needs=_WORKLOADS),
    Collection("registry-events", "v1", "events", "Event", True, _registry_events,
               needs=(*_WORKLOADS, "registry-pods", "registry-replicationcontrollers",
                      "registry-replicasets")),
    Collection("limitranges", "v1", "limitranges", "LimitRange", True, _in_namespace),
    Collection("configmaps", "v1", "configmaps", "ConfigMap", True, _in_namespace),
    Collection("console-secrets", "v1", "secrets", "Secret", True, _console_secrets,
               needs=_WORKLOADS, verb="get", names=(CONSOLE_SECRETS,)),
    Collection("registry-secrets", "v1", "secrets", "Secret", True, _registry_secrets,
               needs=_WORKLOADS, verb="get", names=(REGISTRY_SECRETS,)),
    Collection("services", "v1", "services", "Service", True, _registry_and_console,
               verb="get", names=(REGISTRY, CONSOLE)),
    Collection("endpoints", "v1", "endpoints", "Endpoints", True, _registry_service_endpoints,
               verb="get", names=(REGISTRY,)),
    Collection("persistentvolumeclaims", "v1", "persistentvolumeclaims",
               "PersistentVolumeClaim", True, _in_namespace),
    Collection("persistentvolumes", "v1", "persistentvolumes", "PersistentVolume", False,
               _registry_volumes, needs=(*_WORKLOADS, "persistentvolumeclaims"), verb="get"),
    Collection("storageclasses", "storage.k8s.io/v1", "storageclasses", "StorageClass", False,
               _registry_storage_classes,
               needs=(*_WORKLOADS, "persistentvolumeclaims", "persistentvolumes"), verb="get"),
    Collection("routes", "route.openshift.io/v1", "routes", "Route", True, _in_namespace),
    Collection("oauthclients", "oauth.openshift.io/v1", "oauthclients", "OAuthClient", False,
               _console_oauth_client, needs=_WORKLOADS, verb="get",
               names=(CONSOLE_OAUTH_CLIENT,)),
    Collection("registry-operator-config", "imageregistry.operator.openshift.io/v1", "configs",
               "Config", False, _operator_config, optional_group=True, verb="get",
               names=(OPERATOR_CONFIG,), platforms=OPENSHIFT4),
    Collection("registry-imagepruner", "imageregistry.operator.openshift.io/v1",
               "imagepruners", "ImagePruner", False, _operator_config, optional_group=True,
               verb="get", names=(OPERATOR_CONFIG,), platforms=OPENSHIFT4),
    Collection("registry-clusteroperator", "config.openshift.io/v1", "clusteroperators",
               "ClusterOperator", False, _cluster_operator, optional_group=True, verb="get",
               names=(CLUSTER_OPERATOR,), platforms=OPENSHIFT4),
    Collection("registry-namespace", "v1", "namespaces", "Namespace", False,
               _registry_namespace, verb="get", names=(REGISTRY_NAMESPACE,)),
    Collection("registry-replicasets", "apps/v1", "replicasets", "ReplicaSet", True,
               _registry_replica_sets, needs=_WORKLOADS),
    Collection("console-replicationcontrollers", "v1", "replicationcontrollers",
               "ReplicationController", True, _console_replication_controllers,
               needs=_WORKLOADS),
    Collection("console-events", "v1", "events", "Event", True, _console_events,
               needs=(*_WORKLOADS, "console-pods", "console-replicationcontrollers")),
    Collection("console-endpoints", "v1", "endpoints", "Endpoints", True,
               _console_service_endpoints, verb="get", names=(CONSOLE,)),
    # Image pruning in the registry namespace (storage-capacity): CronJob is batch/v1 since
    # Kubernetes 1.21 and batch/v1beta1 only before (OpenShift 3.11), so both are read; the
    # version a server does not serve answers 404, which means none of that version.
    Collection("cronjobs", "batch/v1", "cronjobs", "CronJob", True, _in_namespace,
               optional_group=True),
    Collection("cronjobs-v1beta1", "batch/v1beta1", "cronjobs", "CronJob", True,
               _in_namespace, optional_group=True),
    Collection("jobs", "batch/v1", "jobs", "Job", True, _in_namespace),
    # networking.k8s.io/v1 since Kubernetes 1.19; OpenShift 3.11 serves no Ingress there.
    Collection("ingresses", "networking.k8s.io/v1", "ingresses", "Ingress", True, _in_namespace,
               optional_group=True),
)}

# Pod logs are read per pod (bounded tail) after the pods themselves.
LOG_COLLECTIONS = {"registry-logs": "registry-pods", "console-logs": "console-pods"}
# A log tail is bounded in bytes as well as lines, as the API's limitBytes bounds it: 20 registry
# replicas logging megabyte lines must not cost the run more than a few megabytes.
LOG_TAIL_BYTES = 32 * 1024


def closure(names: set[str]) -> set[str]:
    """`names` plus everything their scopes depend on."""
    wanted = set(names)
    wanted.update(LOG_COLLECTIONS[n] for n in names if n in LOG_COLLECTIONS)
    pending = [n for n in wanted if n in CATALOGUE]
    while pending:
        for dependency in CATALOGUE[pending.pop()].needs:
            if dependency not in wanted:
                wanted.add(dependency)
                pending.append(dependency)
    return wanted


def known_collections() -> set[str]:
    return set(CATALOGUE) | set(LOG_COLLECTIONS)
