"""storage-permissions: the registry's store is writable by the user the registry runs as.

"Deploying a Registry on Existing Clusters" (OpenShift Origin 3.x docs), "Non-Production Use":
the registry image runs as UID 1001 and a host directory needs `chown 1001:root <path>`, else
pushes fail with `mkdir /registry/docker: permission denied`. Kubernetes docs, "Configure a
Security Context for a Pod": the kubelet makes a volume group-writable for `fsGroup` only for
volumes that support ownership management (block devices, emptyDir), never for hostPath or NFS,
whose owner is set on the node or the NFS server. On OpenShift the SCC admission writes the
UID it assigns into the pod (`runAsUser`, annotation `openshift.io/scc`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from registry_doctor.doctor.check import CheckContext, NotApplicable, NotEvaluable
from registry_doctor.doctor.known_issues import quoted
from registry_doctor.doctor.model import CheckMeta, Resource, Result, Severity, Status
from registry_doctor.doctor.platform.store import BLOCK, FILE, StoreVolume, classify
from registry_doctor.doctor.registryconfig import CONFIG_KINDS, REMOTE_DRIVERS, RegistryConfig
from registry_doctor.doctor.workload import as_dict, as_list

META = CheckMeta(
    id="storage-permissions",
    title="Registry store is writable by the registry's user",
    severity=Severity.CRIT,
    kinds=(*CONFIG_KINDS, "persistentvolumeclaims", "persistentvolumes", "storageclasses",
           "registry-pods", "registry-logs"),
    description=(
        "Skips remote storage drivers (S3 and other object stores). For the filesystem "
        "driver: crit when a registry pod's recent log has a `permission denied` or "
        "`read-only file system` line about the storage root (the line is quoted). Otherwise "
        "the user the registry runs as (runAsUser of the running pod, as the SCC admitted it, "
        "else of the template, else UID 1001 of the 3.x image) is compared with the store: a "
        "hostPath directory (the kubelet never changes its owner) or a block volume without "
        "fsGroup (a new file system's root belongs to root, mode 0755) is warn for a non-root "
        "user; emptyDir, NFS and other shared file systems, or a root user, are ok, with the "
        "owner the export or path needs named."
    ),
    remediation=(
        "Make the store writable by the registry's user (UID 1001 for the 3.x image; the "
        "finding names the UID): on the NFS server or the node, `chown 1001:root <path>` and "
        "`chmod 0770 <path>` on the export or host directory; on a block volume, set the "
        "pod's fsGroup (`$cli patch $registry -n $namespace -p "
        "'{\"spec\":{\"template\":{\"spec\":{\"securityContext\":{\"fsGroup\":1001}}}}}'`). "
        "Then restart the registry pods (`$cli rollout latest $registry -n $namespace` on "
        "3.x)."
    ),
    platform_remediation={
        "openshift4": (
            "Make the store writable by the registry's user (the finding names the UID): on "
            "the NFS server, `chown` and `chmod 0770` the export; the operator owns the "
            "Deployment, so a pod fsGroup cannot be set there. Then delete the registry pods "
            "(`$cli delete pods -n $namespace -l docker-registry=default`): the Deployment "
            "recreates them."),
    },
)

# OpenShift 3.x registry images run as this user (their Dockerfile's `USER 1001`).
OPENSHIFT_REGISTRY_UID = 1001
_OPENSHIFT_IMAGES = re.compile(r"(origin|ose)-docker-registry")
_DENIED = re.compile(r"permission denied|read-only file system", re.IGNORECASE)


@dataclass(frozen=True)
class Identity:
    """Who the registry process is, and where that was read."""

    uid: int | None
    fs_group: int | None
    evidence: tuple[str, ...]

    @property
    def user(self) -> str:
        return "an unknown UID" if self.uid is None else f"UID {self.uid}"


def evaluate(ctx: CheckContext) -> Result:
    workload = ctx.registry()
    config = ctx.configuration()
    if config.unresolved:
        raise NotEvaluable(config.unresolved)
    if config.driver in REMOTE_DRIVERS or config.driver == "inmemory":
        raise NotApplicable(f"the {config.driver} storage driver writes no files in the pod")
    if config.driver != "filesystem":
        cause = config.fatal[0] if config.fatal else "no storage driver"
        raise NotEvaluable(f"cannot tell where images are stored: {cause} (see registry-config)")
    identity = _identity(ctx, config)
    mount = config.storage_mount()
    store = classify(ctx.snapshot, mount) if mount is not None else None
    details = [config.source_line, config.describe_root(), *identity.evidence]
    resources = [workload.resource]
    if store is not None:
        details.append(f"{config.filesystem_root} is on volume {store.name} ({store.type}), "
                       f"{store.mount.field}")
        if store.claim_name is not None:
            resources.append(Resource("PersistentVolumeClaim", store.claim_name,
                                      workload.namespace))
    fix = _fix(ctx, identity, config, store)
    denied = _denied_lines(ctx, config.filesystem_root)
    if denied:
        pod, line = denied[0]
        return ctx.failed(f"{identity.user} cannot write the store at "
                          f"{config.filesystem_root}: pod/{pod} logs \"{quoted(line)}\"",
                          [*details, *(f"pod/{p}: {quoted(text)}" for p, text in denied), fix],
                          resources)
    if store is None or identity.uid in (None, 0):
        return ctx.result(Status.OK, _ok_summary(identity, config, store), details, resources)
    return _judge_volume(ctx, identity, store, [*details, fix], resources)


def _judge_volume(ctx: CheckContext, identity: Identity, store: StoreVolume,
                  details: list[str], resources: list[Resource]) -> Result:
    if store.type == "hostPath":
        path = as_dict(store.mount.volume.get("hostPath")).get("path")
        return ctx.result(Status.WARN, f"{identity.user} writes to hostPath {path}: the kubelet "
                          "does not change a host directory's owner (fsGroup does not apply), "
                          "so pushes fail unless it was chowned on every node", details,
                          resources)
    plugin = store.plugin(ctx.snapshot)
    details.append(f"volume plugin {plugin.name} ({plugin.kind}), {plugin.evidence}")
    if plugin.kind == BLOCK and identity.fs_group is None:
        return ctx.result(Status.WARN, f"{identity.user} writes to a {plugin.name} block volume "
                          "without fsGroup: a new file system's root belongs to root (mode "
                          "0755), so pushes fail unless it was chowned", details, resources)
    if plugin.kind == FILE:
        details.append("the owner of a network file system is set on its server, which the "
                       "cluster cannot show")
    return ctx.result(Status.OK, f"{identity.user} can be expected to write the "
                      f"{plugin.name} store, and no permission errors are logged", details,
                      resources)


def _ok_summary(identity: Identity, config: RegistryConfig, store: StoreVolume | None) -> str:
    where = f"volume {store.name} ({store.type})" if store else "the container's own filesystem"
    if identity.uid == 0:
        return f"the registry runs as root and writes {config.filesystem_root} on {where}"
    return f"no permission errors logged for {config.filesystem_root} on {where} " \
        f"({identity.user})"


def _identity(ctx: CheckContext, config: RegistryConfig) -> Identity:
    """The running pod's security context as admitted (SCC), else the template's."""
    name = config.container.get("name")
    pods = ctx.installation.pods()
    pod = pods[0] if pods else None
    pod_spec = as_dict(pod.get("spec")) if pod else config.pod_spec
    where = f"pod/{as_dict(pod.get('metadata')).get('name')}" if pod else config.owner
    container = next((as_dict(c) for c in as_list(pod_spec.get("containers"))
                      if as_dict(c).get("name") == name), config.container) if pod \
        else config.container
    pod_context = as_dict(pod_spec.get("securityContext"))
    evidence = []
    scc = as_dict(as_dict(pod.get("metadata")).get("annotations")).get("openshift.io/scc") \
        if pod else None
    if scc:
        evidence.append(f"{where} openshift.io/scc={scc}: the SCC admission set its user")
    uid = _integer(as_dict(container.get("securityContext")).get("runAsUser"))
    if uid is not None:
        evidence.append(f"{where} container {name} securityContext.runAsUser={uid}")
    elif (uid := _integer(pod_context.get("runAsUser"))) is not None:
        evidence.append(f"{where} securityContext.runAsUser={uid}")
    elif _OPENSHIFT_IMAGES.search(config.image or ""):
        uid = OPENSHIFT_REGISTRY_UID
        evidence.append(f"no runAsUser: image {config.image} runs as UID {uid} (its USER)")
    else:
        evidence.append(f"no runAsUser, and image {config.image} is not one whose user is known")
    fs_group = _integer(pod_context.get("fsGroup"))
    groups = tuple(g for g in map(_integer, as_list(pod_context.get("supplementalGroups")))
                   if g is not None)
    shown = "none" if fs_group is None else fs_group
    evidence.append(f"{where} securityContext fsGroup={shown}, supplementalGroups={list(groups)}")
    return Identity(uid, fs_group, tuple(evidence))


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _denied_lines(ctx: CheckContext, root: str) -> list[tuple[str, str]]:
    """Log lines of the registry pods that deny access under the storage root."""
    return [(pod, line) for pod, line in ctx.installation.log_lines(_DENIED) if root in line]


def _fix(ctx: CheckContext, identity: Identity, config: RegistryConfig,
         store: StoreVolume | None) -> str:
    """Where to set which owner and mode, for this store."""
    uid = identity.uid if identity.uid is not None else OPENSHIFT_REGISTRY_UID
    owner = f"`chown {uid}:root <path> && chmod 0770 <path>`"
    if store is None:
        return f"fix: make {config.filesystem_root} in the image owned by UID {uid}, or mount " \
            "a volume there (see ephemeral-storage)"
    nfs = _nfs_export(ctx, store)
    if nfs:
        return f"fix: on the NFS server, {owner.replace('<path>', nfs[1])} for export " \
            f"{nfs[0]}:{nfs[1]} (or chgrp it to a supplementalGroups GID with mode 2770)"
    if store.type == "hostPath":
        path = str(as_dict(store.mount.volume.get("hostPath")).get("path"))
        return f"fix: on every node that runs the registry, {owner.replace('<path>', path)}"
    if store.type == "emptyDir":
        return "fix: an emptyDir is writable by every user: check what else is mounted there"
    return f"fix: set the pod's securityContext.fsGroup (e.g. {uid}), or {owner} on the " \
        f"volume's root directory"


def _nfs_export(ctx: CheckContext, store: StoreVolume) -> tuple[str, str] | None:
    """(server, path) of an inline nfs volume or of the claim's nfs PersistentVolume."""
    source: dict[str, Any] = as_dict(store.mount.volume.get("nfs"))
    if not source and store.claim is not None:
        volume = ctx.snapshot.named("persistentvolumes",
                                    str(as_dict(store.claim.get("spec")).get("volumeName")))
        source = as_dict(as_dict(as_dict(volume).get("spec")).get("nfs"))
    if source.get("server") and source.get("path"):
        return str(source["server"]), str(source["path"])
    return None
