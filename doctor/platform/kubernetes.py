"""Plain Kubernetes: the distribution registry (`registry`, `distribution/distribution` images),
typically installed by the twuni/docker-registry Helm chart: a Deployment named after the
release, its ConfigMap `<fullname>-config` (config.yml) and Secret `<fullname>-secret`
(haSharedSecret, S3 keys) read through `REGISTRY_*` env, a Service on port 5000 and an optional
Ingress; or a StatefulSet, whose volumeClaimTemplates give each pod its own claim. No console.

The registry has no fixed name here, so unless the admin names it (`--registry NAME -n NS`) it
is discovered: the Deployments and StatefulSets labelled `app=docker-registry` (the chart's
label, twuni/docker-registry.helm `templates/deployment.yaml`), in the namespace given, else in
every namespace, that look like a distribution registry (`looks_like_distribution`).

Sources: twuni/docker-registry.helm `templates/deployment.yaml`, `templates/_helpers.tpl`,
`values.yaml`; distribution/distribution `docs/content/about/configuration.md` (REGISTRY_*
overrides), distribution/distribution-library-image `Dockerfile` (EXPOSE 5000).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from registry_doctor.doctor.platform import Installation, NamesNeeded, with_names
from registry_doctor.doctor.platform.openshift3 import OPENSHIFT_GROUPS
from registry_doctor.doctor.snapshot import CollectError
from registry_doctor.doctor.snapshot.kinds import Collection, Query
from registry_doctor.doctor.workload import WORKLOAD_COLLECTIONS, Workload, as_dict, as_list

if TYPE_CHECKING:
    from registry_doctor.doctor.config import RunConfig
    from registry_doctor.doctor.fix.model import Action
    from registry_doctor.doctor.snapshot import Snapshot, Source

CHART_LABEL = "app=docker-registry"
DEFAULT_NAMESPACE = "default"  # kubectl's, when nothing is found and none is given
DEFAULT_NAME = "docker-registry"  # the chart's fullname for a release called docker-registry
REGISTRY_PORT = 5000  # distribution-library-image Dockerfile: EXPOSE 5000


def image_repository(image: str) -> str:
    """`docker.io/library/registry:3.0.0@sha256:...` -> `docker.io/library/registry`."""
    name = image.split("@")[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: name.rindex(":")]
    return name


def _distribution_image(image: str) -> bool:
    repository = image_repository(image)
    return repository == "registry" or repository.endswith(("/library/registry",
                                                            "distribution/distribution"))


def looks_like_distribution(workload: Workload) -> str | None:
    """Why `workload` runs a distribution registry (the first container that shows it), or
    None; OpenShift's own registry (the 3.x `docker-registry=default` operand, its
    `dockerregistry` binary and REGISTRY_OPENSHIFT_* env) is not one."""
    labels = as_dict(as_dict(workload.obj.get("metadata")).get("labels"))
    if labels.get("docker-registry") == "default":
        return None
    for _, container in workload.containers():
        argv = [str(w) for w in as_list(container.get("command")) + as_list(container.get("args"))]
        env = [str(as_dict(e).get("name")) for e in as_list(container.get("env"))]
        if any(w.endswith("dockerregistry") for w in argv) \
                or any(n.startswith("REGISTRY_OPENSHIFT_") for n in env):
            return None
        image = str(container.get("image") or "")
        ports = [as_dict(p).get("containerPort") for p in as_list(container.get("ports"))]
        signs = [f"image {image}" if _distribution_image(image) else "",
                 "serve ... config.yml" if "serve" in argv
                 and any(w.endswith("config.yml") for w in argv) else "",
                 f"containerPort {REGISTRY_PORT}" if REGISTRY_PORT in ports else "",
                 "REGISTRY_* env" if any(n.startswith("REGISTRY_") for n in env) else ""]
        if any(signs):
            return ", ".join(s for s in signs if s)
    return None


class Kubernetes:
    id = "kubernetes"
    title = "Distribution registry on plain Kubernetes"
    cli = "kubectl"
    collections = ("deployments", "statefulsets", "registry-pods", "registry-replicasets",
                   "services", "endpoints", "ingresses")

    def detect(self, groups: frozenset[str]) -> str | None:
        # The fallback, tried last: any cluster that is not OpenShift.
        if any(g in groups for g in OPENSHIFT_GROUPS):
            return None
        return f"no OpenShift API group served ({', '.join(OPENSHIFT_GROUPS)})"

    def settle(self, config: RunConfig, source: Source) -> RunConfig:
        # No registry console here: an empty name matches no workload and reads nothing.
        config = with_names(config, {"console_name": ""})
        given = config.names_given
        if given is None or {"namespace", "registry_name"} <= given:
            return config
        namespace = config.namespace if "namespace" in given else None
        where = f"namespace {namespace}" if namespace else "any namespace"
        try:
            found = [w for w in discover(source, namespace, config.timeout)
                     if "registry_name" not in given or w.name == config.registry_name]
        except CollectError as error:
            return self._not_found(config, f"discovery in {where} failed ({error})")
        if len(found) > 1:
            listed = ", ".join(f"{w.ref} -n {w.namespace}" for w in found)
            raise NamesNeeded(f"{len(found)} distribution registries found in {where} "
                              f"({listed}): name one with --registry NAME -n NAMESPACE")
        if found:
            registry = found[0]
            return replace(with_names(config, {"namespace": registry.namespace,
                                               "registry_name": registry.name}),
                           platform_evidence=f"registry found in {where}: {registry.ref} -n "
                           f"{registry.namespace}, labelled {CHART_LABEL} "
                           f"({looks_like_distribution(registry)})")
        what = f"named {config.registry_name} " if "registry_name" in given else ""
        return self._not_found(config, f"no Deployment or StatefulSet {what}labelled "
                               f"{CHART_LABEL} runs a distribution registry in {where}")

    @staticmethod
    def _not_found(config: RunConfig, search: str) -> RunConfig:
        """Names that find nothing, and why: each check says so (CheckContext.registry)."""
        return replace(with_names(config, {"namespace": DEFAULT_NAMESPACE,
                                           "registry_name": DEFAULT_NAME}),
                       registry_search=search)

    def lower(self, actions: list[Action]) -> list[Action]:
        """Patches stay Deployment or StatefulSet patches (kubectl semantics, then a rollout of
        the workload), except where Helm manages the object: then the chart values to change."""
        from registry_doctor.doctor.platform.helm import lower

        return lower(actions)

    def locate(self, snapshot: Snapshot) -> Installation:
        config = snapshot.config
        return Installation(platform=self.id, cli=self.cli, namespace=config.namespace,
                            registry_name=config.registry_name,
                            console_name=config.console_name, snapshot=snapshot,
                            workload_short="deployment")


def _discovery_list(api_version: str, resource: str, kind: str) -> Collection:
    """A list of `resource` by label, in one namespace or across namespaces, outside the
    catalogue: it runs before collection (settle) and only when the admin named no registry."""
    return Collection(f"discovery-{resource}", api_version, resource, kind, True,
                      lambda *_: [], all_namespaces=True)


# What discovery lists: the chart's Deployment, or a StatefulSet (with per-pod claims).
DISCOVERY = (_discovery_list("apps/v1", "deployments", "Deployment"),
             _discovery_list("apps/v1", "statefulsets", "StatefulSet"))


def discover(source: Source, namespace: str | None, timeout: float) -> list[Workload]:
    """The workloads labelled as the chart labels them that look like a distribution registry:
    one scoped list per kind (by label; RBAC: list deployments and statefulsets, in the
    namespace or cluster-wide), answered by a dump alike."""
    query = Query(namespace=namespace, label_selector=CHART_LABEL)
    found = (Workload(collection.kind, WORKLOAD_COLLECTIONS[collection.resource][1], obj)
             for collection in DISCOVERY
             for obj in source.fetch(collection, query, timeout))
    return sorted((w for w in found if looks_like_distribution(w)),
                  key=lambda w: (w.namespace, w.kind, w.name))


ADAPTER = Kubernetes()
