"""Platforms: where the pieces of one registry installation are, apart from what is wrong.

A platform adapter (one module of this package) recognises itself from the API groups the
cluster serves (a dump: those of the objects it holds), before anything is collected, names
where its registry is unless the admin did (`settle`), and locates one `Installation`: the
registry workload and its pods, its Service and routes, its store, its effective configuration
and the object that owns it, and the console when the platform has one. Checks, planners and
probes judge the installation; none of them searches for the registry on its own. Fix texts
name objects the way the platform's own CLI does.

Adapters are imported only when chosen, so loading check metadata stays light.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from registry_doctor.doctor.workload import (
    WORKLOAD_COLLECTIONS,
    Workload,
    as_dict,
    as_list,
    find_workload,
)

if TYPE_CHECKING:
    from registry_doctor.doctor.config import RunConfig
    from registry_doctor.doctor.fix.model import Action
    from registry_doctor.doctor.platform.store import StoreVolume
    from registry_doctor.doctor.registryconfig import Image, RegistryConfig
    from registry_doctor.doctor.snapshot import Snapshot, Source

# platform id -> adapter module in this package, in the order `auto` tries them: the most
# specific first (OpenShift 4 serves every group OpenShift 3 does); plain Kubernetes last, the
# fallback that recognises any cluster serving no OpenShift group.
ADAPTERS: dict[str, str] = {"openshift4": "openshift4", "openshift3": "openshift3",
                            "kubernetes": "kubernetes"}
AUTO = "auto"
# What `auto` judges a cluster as when nothing platform-specific is found.
FALLBACK = "openshift3"
# The run settings that name where the registry is; each platform has its own defaults.
NAME_FIELDS = ("namespace", "registry_name", "console_name")


class NamesNeeded(ValueError):
    """The platform cannot tell which registry to judge (e.g. discovery found several): the
    admin must name it (a usage error)."""


class Platform(Protocol):
    id: str
    title: str
    cli: str  # the command its admins use: "oc", "kubectl"
    # The snapshot collections it reads to locate an installation (they drive RBAC).
    collections: tuple[str, ...]
    # How the docs name its objects in fix texts (CheckMeta.platform_remediation).
    doc_names: Mapping[str, str]

    def detect(self, groups: frozenset[str]) -> str | None:
        """Evidence, from the API groups served, that the cluster is this platform, or None."""

    def settle(self, config: RunConfig, source: Source) -> RunConfig:
        """`config` with this platform's names (namespace, registry, console) where the admin
        gave none (`RunConfig.names_given`)."""

    def lower(self, actions: list[Action]) -> list[Action]:
        """The planners' intents as this platform writes them (e.g. chart values instead of a
        patch Helm would revert)."""

    def locate(self, snapshot: Snapshot) -> Installation:
        """The installation the run's settings name, read through `snapshot` (a reader's
        view: what the reader did not declare cannot be read)."""


def adapter(platform_id: str) -> Platform:
    if platform_id not in ADAPTERS:
        raise ValueError(f"unknown platform {platform_id!r} "
                         f"(choose from {', '.join([AUTO, *ADAPTERS])})")
    return importlib.import_module(f"{__name__}.{ADAPTERS[platform_id]}").ADAPTER


def choose(requested: str, source: Source, timeout: float) -> tuple[str, str]:
    """The platform id to judge the source as, and why: the one requested, or with `auto`
    the first adapter that recognises the API groups the source serves."""
    from registry_doctor.doctor.snapshot import CollectError

    if requested != AUTO:
        adapter(requested)
        return requested, "--platform " + requested
    fallback = FALLBACK
    try:
        groups = source.api_groups(timeout)
    except CollectError as error:  # the collection will say so too, object by object
        return fallback, f"{GROUPS_UNKNOWN} ({error}): judged as {fallback}"
    for platform_id in ADAPTERS:
        evidence = adapter(platform_id).detect(groups)
        if evidence:
            return platform_id, evidence
    raise AssertionError("the last adapter recognises any cluster")  # pragma: no cover


GROUPS_UNKNOWN = "API groups unknown"  # how `choose` says the platform is a guess


def guessed(config: RunConfig) -> bool:
    """The platform was guessed: the cluster did not say which groups it serves."""
    return config.platform_evidence.startswith(GROUPS_UNKNOWN)


def with_names(config: RunConfig, defaults: Mapping[str, str]) -> RunConfig:
    """`config` with `defaults` for the names the admin did not give."""
    given = config.names_given
    if given is None:
        return config
    return replace(config, **{k: v for k, v in defaults.items() if k not in given})


@dataclass(frozen=True)
class Installation:
    """One registry installation as its platform lays it out."""

    platform: str
    cli: str
    namespace: str
    registry_name: str  # the name it is looked up by (--registry)
    console_name: str  # (--console); "": the platform has no console
    snapshot: Snapshot = field(repr=False, compare=False)
    # How the platform's CLI names the registry's kind when it is not found (`dc/NAME`).
    workload_short: str = "dc"
    # The object that owns the registry's configuration, as the platform's CLI names it, when
    # it is not the workload (OpenShift 4: the operator's Config, which writes the workload),
    # and what a fix patches there: "" on platforms whose workload is its own.
    owner: str = ""
    # The registry image's defaults (doctor.registryconfig.Image) when its name does not tell
    # them (OpenShift 4 names its images by release digest); None: known from the name.
    image: Image | None = None
    # Why the registry workload may be absent on this platform, for the checks that need it.
    absent_hint: str = ""

    @cached_property
    def registry(self) -> Workload | None:
        """The registry's DeploymentConfig, Deployment, DaemonSet or StatefulSet (read when
        asked: a reader that never asks need not declare the workloads)."""
        return self._workload(self.registry_name)

    @cached_property
    def console(self) -> Workload | None:
        return self._workload(self.console_name) if self.console_name else None

    def _workload(self, name: str) -> Workload | None:
        return find_workload({c: self.snapshot.items(c) for c in WORKLOAD_COLLECTIONS}, name)

    def pods(self) -> list[dict[str, Any]]:
        """The registry's pods, selected by its workload's own selector."""
        return self.snapshot.items("registry-pods")

    def log_lines(self, pattern: re.Pattern[str]) -> list[tuple[str, str]]:
        """(pod, line) for each line of the registry pods' log tails that `pattern` finds."""
        pods = {str(as_dict(p.get("metadata")).get("name")) for p in self.pods()}
        return [(pod, line.strip()) for (namespace, pod), text in sorted(self.snapshot.logs.items())
                if namespace == self.namespace and pod in pods
                for line in text.splitlines() if pattern.search(line)]

    @cached_property
    def service(self) -> dict[str, Any] | None:
        """The registry's Service: the one named after it, else one selecting its pods."""
        name = self.registry.name if self.registry else self.registry_name
        named = self.snapshot.named("services", name)
        if named is not None or self.registry is None:
            return named
        labels = as_dict(as_dict(as_dict(self.registry.spec.get("template")).get("metadata"))
                         .get("labels"))
        for service in self.snapshot.items("services"):
            selector = as_dict(as_dict(service.get("spec")).get("selector"))
            if selector and selector.items() <= labels.items():
                return service
        return None

    @property
    def service_name(self) -> str:
        """The Service's name; without one, the name it would have."""
        return self.service["metadata"]["name"] if self.service else self.registry_name

    def routes(self) -> list[dict[str, Any]]:
        """Routes to the registry's Service."""
        def target(route: dict[str, Any]) -> tuple[object, object]:
            to = as_dict(as_dict(route.get("spec")).get("to"))
            return to.get("kind", "Service"), to.get("name")

        return [r for r in self.snapshot.items("routes")
                if target(r) == ("Service", self.service_name)]

    def ingresses(self) -> list[dict[str, Any]]:
        """Ingresses with a rule path or default backend on the registry's Service."""
        def services(ingress: dict[str, Any]) -> Iterator[object]:
            spec = as_dict(ingress.get("spec"))
            backends = [as_dict(spec.get("defaultBackend"))] + [
                as_dict(as_dict(path).get("backend"))
                for rule in as_list(spec.get("rules"))
                for path in as_list(as_dict(as_dict(rule).get("http")).get("paths"))]
            return (as_dict(b.get("service")).get("name") for b in backends)

        return [i for i in self.snapshot.items("ingresses")
                if self.service_name in services(i)]

    def endpoints(self) -> dict[str, Any] | None:
        return self.snapshot.named("endpoints", self.service_name)

    @cached_property
    def configuration(self) -> RegistryConfig | None:
        """The configuration the registry process runs with, with the object that owns it
        (`owner`: on 3.x the workload, whose env and volumes carry it) and the configmaps and
        secrets it is read from (`resources`); None without a registry."""
        from registry_doctor.doctor.registryconfig import resolve

        if self.registry is None:
            return None
        return resolve(self.snapshot, self.registry, self.image, self.owner)

    def store(self) -> StoreVolume | None:
        """The volume holding the filesystem driver's root directory, classified; None when
        the configuration is unresolved or no volume is mounted there."""
        from registry_doctor.doctor.platform.store import classify

        config = self.configuration
        mount = config.storage_mount() if config and config.unresolved is None else None
        return classify(self.snapshot, mount) if mount else None

    def owner_says(self, *fields: str) -> list[str]:
        """Evidence from the owner's spec (OpenShift 4: the operator's Config CR, collection
        `registry-operator-config`), one line per field: the cause an operator renders into
        the workload. Empty where the workload owns its configuration."""
        if not self.owner:
            return []
        from registry_doctor.doctor.snapshot.kinds import OPERATOR_CONFIG_NAME

        config = self.snapshot.named("registry-operator-config", OPERATOR_CONFIG_NAME)
        if config is None:
            return [f"{self.owner} not found: the operator has no configuration to render"]
        spec = as_dict(config.get("spec"))
        return [f"{self.owner} spec.{name}=" + (json.dumps(spec[name], sort_keys=True)
                                                if name in spec else "(not set)")
                for name in fields]

    def names(self) -> Mapping[str, str]:
        """How fix texts address this installation (`$cli scale $registry -n $namespace`).
        Each name is looked up when a text uses it: a check that names no Service need not
        read the services."""
        return _LazyNames({
            "cli": lambda: self.cli,
            "namespace": lambda: self.namespace,
            "registry": lambda: self.registry.ref if self.registry
            else f"{self.workload_short}/{self.registry_name}",
            "console": lambda: self.console.ref if self.console else f"dc/{self.console_name}",
            "service": lambda: f"svc/{self.service_name}",
            "rollout": self._rollout,
            "use_claim": self._use_claim,
            "owner": lambda: self.owner or (self.registry.ref if self.registry
                                            else f"{self.workload_short}/{self.registry_name}"),
        })

    def _rollout(self) -> str:
        """The subcommand that redeploys the registry: a DeploymentConfig's `oc rollout
        latest`, else `rollout restart` (kubectl's, for Deployments and DaemonSets)."""
        kind = self.registry.kind if self.registry else ""
        latest = kind == "DeploymentConfig" or (not kind and self.workload_short == "dc")
        return "rollout latest" if latest else "rollout restart"

    def _use_claim(self) -> str:
        """The command that puts the store on a claim: `oc set volume`; kubectl has no `set
        volume`, so a strategic merge patch of the store volume (merged by name)."""
        names = self.names()
        where = f"{names['registry']} -n {self.namespace}"
        if self.cli == "oc":
            return (f"oc set volume {where} --add --name=registry-storage -t pvc "
                    "--claim-name=<claim> --overwrite")
        store = self.store() if self.registry else None
        volume = store.name if store else "<volume>"
        return (f"{self.cli} patch {where} -p '{{\"spec\":{{\"template\":{{\"spec\":"
                f"{{\"volumes\":[{{\"name\":\"{volume}\",\"emptyDir\":null,"
                f"\"persistentVolumeClaim\":{{\"claimName\":\"<claim>\"}}}}]}}}}}}}}'")


class _LazyNames(Mapping[str, str]):
    def __init__(self, lookups: dict[str, Callable[[], str]]) -> None:
        self._lookups = lookups

    def __getitem__(self, key: str) -> str:
        return self._lookups[key]()

    def __iter__(self) -> Iterator[str]:
        return iter(self._lookups)

    def __len__(self) -> int:
        return len(self._lookups)


def installation(snapshot: Snapshot) -> Installation:
    return adapter(snapshot.platform).locate(snapshot)
