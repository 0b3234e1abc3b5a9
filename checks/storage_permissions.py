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
           "registry-pods", "registry-logs", "registry-namespace"),
    description=(
        "Skips remote storage drivers (S3 and other object stores). For the filesystem "
        "driver: crit when a registry pod's recent log has a `permission denied` or "
        "`read-only file system` line about the storage root (the line is quoted). Otherwise "
        "the user the registry runs as (runAsUser of the running pod, as the SCC admitted it, "
        "else of the template, else UID 1001 of the 3.x image) is compared with the store: a "
        "hostPath directory (the kubelet never changes its owner) or a block volume without "
        "fsGroup (a new file system's root belongs to root, mode 0755) is warn for a non-root "
        "user; emptyDir, NFS and other shared file systems, or a root user, are ok, with the "
        "owner the export or path needs named. On OpenShift, a template without runAsUser "
        "runs under a range SCC (restricted, hostnetwork: what the installer grants the "
        "registry) with the first UID of its Namespace's openshift.io/sa.scc.uid-range, not "
        "the image's 1001: on an NFS export or hostPath (inline or as a PV), whose owner the "
        "kubelet never sets, that is warn, naming the range and the owner to set, unless the "
        "template asks for a fsGroup or supplementalGroups the path can belong to (ok)."
    ),
    remediation=(
        "Make the store writable by the registry's user (UID 1001 for the 3.x image; the "
        "finding names the UID): on the NFS server or the node, `chown 1001:root <path>` and "
        "`chmod 0770 <path>` on the export or host directory; on a block volume, set the "
        "pod's fsGroup (`$cli patch $registry -n $namespace -p "
        "'{\"spec\":{\"template\":{\"spec\":{\"securityContext\":{\"fsGroup\":1001}}}}}'`). "
        "Then restart the registry pods (`$cli $rollout $registry -n $namespace`)."
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
OWNED_OUTSIDE = frozenset({"nfs", "hostPath"})  # plugins whose owner the kubelet never sets
# A push the registry stored: an upload or manifest write answered 201/202 (logrus sorts the
# fields: http.request.method before http.response.status).
_WRITTEN = re.compile(r"http\.request\.method=(PUT|PATCH|POST) .*http\.response\.status=20[12]\b")
_DENIED = re.compile(r"permission denied|read-only file system", re.IGNORECASE)


# Bootstrap SCCs whose runAsUser strategy is MustRunAsRange (openshift/origin,
# pkg/cmd/server/bootstrappolicy/securitycontextconstraints.go): the admission gives a pod
# that sets no runAsUser the first UID of its namespace's range. `oc adm registry --mount-host`
# needs privileged, and openshift-ansible grants the registry's service account hostnetwork
# (roles/openshift_hosted/tasks/registry.yml), so an installer's registry runs from the range.
RANGE_SCCS = frozenset({"restricted", "hostnetwork", "hostaccess"})
UID_RANGE = "openshift.io/sa.scc.uid-range"
_RANGE = re.compile(r"^(\d+)/(\d+)$")  # first UID / block size: "1000000000/10000"


@dataclass(frozen=True)
class UidRange:
    """The namespace's UID block, as its annotation gives it."""

    namespace: str
    text: str
    first: int
    end: int  # exclusive

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, int) and self.first <= uid < self.end

    @property
    def evidence(self) -> str:
        return f"namespace/{self.namespace} {UID_RANGE}={self.text}"


@dataclass(frozen=True)
class Identity:
    """Who the registry process is, and where that was read."""

    uid: int | None
    fs_group: int | None
    evidence: tuple[str, ...]
    # The namespace's range, when the SCC admission assigned (or will assign) the UID from it.
    assigned_from: UidRange | None = None
    template_groups: tuple[int, ...] = ()  # GIDs the template itself asks for

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
    plugin = store.plugin(ctx.snapshot)
    if identity.assigned_from is not None and plugin.name in OWNED_OUTSIDE:
        return _judge_range_uid(ctx, identity, identity.assigned_from, plugin.name, details,
                                resources)
    if store.type == "hostPath":
        path = as_dict(store.mount.volume.get("hostPath")).get("path")
        return ctx.result(Status.WARN, f"{identity.user} writes to hostPath {path}: the kubelet "
                          "does not change a host directory's owner (fsGroup does not apply), "
                          "so pushes fail unless it was chowned on every node", details,
                          resources)
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


def _judge_range_uid(ctx: CheckContext, identity: Identity, uid_range: UidRange, plugin: str,
                     details: list[str], resources: list[Resource]) -> Result:
    """A UID from the namespace's range on a path whose owner is set on a node or an NFS
    server: the docs' `chown 1001:root` does not make it writable for that UID."""
    where = "an NFS export" if plugin == "nfs" else "a hostPath directory"
    if identity.template_groups:
        groups = ", ".join(map(str, identity.template_groups))
        return ctx.result(Status.OK, f"{identity.user} (from namespace {uid_range.namespace}'s "
                          f"range {uid_range.text}) writes to {where} through group(s) "
                          f"{groups} its template asks for", [*details, f"the {plugin} path "
                          f"must belong to one of group(s) {groups} with mode 2770 or 0770, "
                          "which the cluster cannot show"], resources)
    written = ctx.installation.log_lines(_WRITTEN)
    if written:
        pod, line = written[-1]
        return ctx.result(Status.OK, f"{identity.user} (from namespace {uid_range.namespace}'s "
                          f"range {uid_range.text}) writes to {where}: pod/{pod} logs a "
                          f"completed push", [*details, f"pod/{pod}: {quoted(line)}"], resources)
    return ctx.result(Status.WARN, f"{identity.user} is assigned from namespace "
                      f"{uid_range.namespace}'s range {uid_range.text} ({UID_RANGE}), not the "
                      f"image's UID {OPENSHIFT_REGISTRY_UID}: {where} owned by "
                      f"{OPENSHIFT_REGISTRY_UID}, as the 3.x docs chown it, is not writable by "
                      "it: pushes fail with permission denied unless the path was given to this "
                      "UID (no push is logged yet to show it was)", details, resources)


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
    uid = _run_as_user(container, pod_context, where, evidence)
    uid_range = _uid_range(ctx)
    assigned = _assigned_from(config, pod, uid, uid_range, evidence)
    if uid is None and assigned is not None:
        uid = assigned.first
    elif uid is None and _OPENSHIFT_IMAGES.search(config.image or ""):
        uid = OPENSHIFT_REGISTRY_UID
        evidence.append(f"no runAsUser: image {config.image} runs as UID {uid} (its USER)")
    elif uid is None:
        evidence.append(f"no runAsUser, and image {config.image} is not one whose user is known")
    fs_group = _integer(pod_context.get("fsGroup"))
    groups = tuple(g for g in map(_integer, as_list(pod_context.get("supplementalGroups")))
                   if g is not None)
    shown = "none" if fs_group is None else fs_group
    evidence.append(f"{where} securityContext fsGroup={shown}, supplementalGroups={list(groups)}")
    template = as_dict(config.pod_spec.get("securityContext"))
    template_groups = tuple(g for g in map(_integer, [template.get("fsGroup"),
                                                      *as_list(template.get(
                                                          "supplementalGroups"))])
                            if g is not None)
    return Identity(uid, fs_group, tuple(evidence), assigned, template_groups)


def _run_as_user(container: dict[str, Any], pod_context: dict[str, Any], where: str,
                 evidence: list[str]) -> int | None:
    uid = _integer(as_dict(container.get("securityContext")).get("runAsUser"))
    if uid is not None:
        evidence.append(f"{where} container {container.get('name')} "
                        f"securityContext.runAsUser={uid}")
    elif (uid := _integer(pod_context.get("runAsUser"))) is not None:
        evidence.append(f"{where} securityContext.runAsUser={uid}")
    return uid


def _assigned_from(config: RegistryConfig, pod: dict[str, Any] | None, uid: int | None,
                   uid_range: UidRange | None, evidence: list[str]) -> UidRange | None:
    """The namespace's range when the UID comes (or will come) from it: the template sets no
    runAsUser, and the admitted pod's UID is in the range, or no pod is there to show it and
    the template asks for nothing a range SCC refuses (privileged)."""
    if uid_range is None or _template_uid(config) is not None:
        return None
    if pod is not None and uid in uid_range:
        evidence.append(f"{uid_range.evidence}: the template sets no runAsUser, so the SCC "
                        f"assigned UID {uid} from the namespace's range, not the image's user")
        return uid_range
    privileged = as_dict(config.container.get("securityContext")).get("privileged") is True
    if pod is None and not privileged:
        evidence.append(f"no registry pod to read its user from; {uid_range.evidence}: without "
                        f"runAsUser in the template, the SCCs {', '.join(sorted(RANGE_SCCS))} "
                        f"assign UID {uid_range.first}, not the image's user (anyuid or "
                        "privileged would keep the image's)")
        return uid_range
    return None


def _template_uid(config: RegistryConfig) -> int | None:
    for context in (config.container, config.pod_spec):
        uid = _integer(as_dict(context.get("securityContext")).get("runAsUser"))
        if uid is not None:
            return uid
    return None


def _uid_range(ctx: CheckContext) -> UidRange | None:
    """The registry namespace's UID range (OpenShift), None elsewhere or when unreadable."""
    for namespace in ctx.snapshot.items("registry-namespace"):
        metadata = as_dict(namespace.get("metadata"))
        text = as_dict(metadata.get("annotations")).get(UID_RANGE)
        found = _RANGE.match(text.strip()) if isinstance(text, str) else None
        if found:
            first = int(found[1])
            return UidRange(str(metadata.get("name")), text.strip(), first,
                            first + int(found[2]))
    return None


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
    group = " (or chgrp it to a supplementalGroups GID with mode 2770)"
    if identity.assigned_from is not None:
        group = (" (or keep its owner and grant a group: `chgrp <gid> <path> && chmod 2770 "
                 "<path>` with that GID in the template's securityContext.supplementalGroups, "
                 "or as its fsGroup, which the process joins though the kubelet does not chown "
                 "NFS or hostPath; the SCC must allow the GID)")
    if nfs:
        return f"fix: on the NFS server, {owner.replace('<path>', nfs[1])} for export " \
            f"{nfs[0]}:{nfs[1]}{group.replace('<path>', nfs[1])}"
    if store.type == "hostPath":
        path = str(as_dict(store.mount.volume.get("hostPath")).get("path"))
        return f"fix: on every node that runs the registry, {owner.replace('<path>', path)}" \
            + (group.replace("<path>", path) if identity.assigned_from else "")
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
