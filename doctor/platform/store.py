"""One classifier for the registry's store volume, shared by the checks and their planners.

The store is the volume mounted over the filesystem driver's root directory. Two questions
are asked of it: how long it lives (ephemeral-storage) and whether several pods can share it
(nfs-scaling). Both are answered here, once, so a check and its planner cannot disagree (an
RWX claim on an EFS CSI volume is NFS for both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry_doctor.doctor.workload import CLAIM_TEMPLATE, as_dict, as_list

if TYPE_CHECKING:
    from registry_doctor.doctor.platform import Installation
    from registry_doctor.doctor.registryconfig import Mount
    from registry_doctor.doctor.snapshot import Snapshot

# How long what the registry writes there lives.
POD_LIFETIME = frozenset({"emptyDir", "ephemeral"})  # deleted with the pod
READ_ONLY = frozenset({"configMap", "secret", "downwardAPI", "projected"})  # rebuilt with it
NODE_LOCAL = frozenset({"emptyDir", "ephemeral", "hostPath"})  # one store per pod
# Inline volume sources several pods can mount at once.
SHARED_INLINE = frozenset({"nfs", "glusterfs", "cephfs", "azureFile", "quobyte"})
# CSI drivers and provisioners of NFS file systems besides those named "nfs".
NFS_DRIVERS = frozenset({"efs.csi.aws.com", "kubernetes.io/aws-efs",
                         "filestore.csi.storage.gke.io"})
# What a volume's plugin can do, whatever access mode its claim declares (Kubernetes docs,
# "Persistent Volumes", "Access Modes": the table of which plugin supports ReadWriteMany).
# Block devices attach to one node; file systems served over the network can be shared.
BLOCK_PLUGINS = frozenset({"cinder", "awsElasticBlockStore", "gcePersistentDisk", "azureDisk",
                           "rbd", "iscsi", "fc", "vsphereVolume", "local"})
# CSI drivers, and in-tree provisioners of storage classes, of those two kinds.
BLOCK_DRIVERS = frozenset({
    "cinder.csi.openstack.org", "ebs.csi.aws.com", "pd.csi.storage.gke.io",
    "disk.csi.azure.com", "rbd.csi.ceph.com", "openshift-storage.rbd.csi.ceph.com",
    "kubernetes.io/cinder", "kubernetes.io/aws-ebs",
    "kubernetes.io/gce-pd", "kubernetes.io/azure-disk", "kubernetes.io/rbd",
    "kubernetes.io/vsphere-volume"})
# Not listed: kubernetes.io/no-provisioner (static PVs of any kind, NFS included) and
# csi.vsphere.vmware.com (vSphere CNS serves block disks and, as vSAN file shares, RWX file
# volumes): the PV's own source or the claim's access mode decides.
FILE_DRIVERS = frozenset({
    *NFS_DRIVERS, "file.csi.azure.com", "cephfs.csi.ceph.com",
    "openshift-storage.cephfs.csi.ceph.com", "nfs.csi.k8s.io", "kubernetes.io/glusterfs",
    "kubernetes.io/azure-file", "kubernetes.io/cephfs"})
BLOCK, FILE, NODE, UNKNOWN_PLUGIN = "block", "file", "node", "unknown"
# A PersistentVolume's volume sources: the fields of PersistentVolumeSource (Kubernetes API
# reference, core/v1 PersistentVolumeSpec). Every other spec field (accessModes, claimRef,
# volumeMode, volumeAttributesClassName, any added later) is not a source.
PV_SOURCES = frozenset({
    "awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "csi", "fc",
    "flexVolume", "flocker", "gcePersistentDisk", "glusterfs", "hostPath", "iscsi", "local",
    "nfs", "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos",
    "vsphereVolume"})

# Whether the registry's pods can share the store.
EACH_POD_ITS_OWN = "each-pod-its-own"  # emptyDir, ephemeral, hostPath, volumeClaimTemplate
ONE_POD_ONLY = "one-pod-only"  # a block device, or a claim that is not ReadWriteMany
CLAIM_MISSING = "claim-missing"
SHARED = "shared"  # shared, not over NFS
SHARED_NFS = "shared-nfs"  # shared over NFS: needs client affinity and no_wdelay
UNKNOWN = "unknown"

# Event reasons of a pod that cannot get a volume: the attach/detach controller's
# FailedAttachVolume (its "Multi-Attach error for volume ...") and the kubelet's FailedMount
# (kubernetes pkg/kubelet/events/event.go, pkg/controller/volume/attachdetach).
VOLUME_FAILURES = frozenset({"FailedAttachVolume", "FailedMount"})
_UNMOUNTED = re.compile(r"unmounted volumes=\[([^\]]*)\]")
_NAMED_VOLUME = re.compile(r'volume "([^"]+)"')


@dataclass(frozen=True)
class Sharing:
    verdict: str  # one of the constants above
    evidence: tuple[str, ...] = ()  # detail lines, in the order they were established
    what: str = ""  # e.g. "ReadWriteMany claim registry-nfs", "inline nfs volume v"
    block: str = ""  # the block-device plugin that keeps the store on one node, if that is why


@dataclass(frozen=True)
class Plugin:
    """The volume plugin behind the store and what it can do: BLOCK (attaches to one node),
    FILE (a network file system), NODE (a node's own directory) or UNKNOWN_PLUGIN."""

    kind: str
    name: str  # e.g. "cinder", "csi ebs.csi.aws.com", "nfs"
    evidence: str  # the object and field it was read from


def plugin_kind(name: str) -> str:
    """BLOCK, FILE, NODE or UNKNOWN_PLUGIN for a volume source, CSI driver or provisioner."""
    if name in BLOCK_PLUGINS or name in BLOCK_DRIVERS:
        return BLOCK
    if name in SHARED_INLINE or name in FILE_DRIVERS or _names_nfs(name):
        return FILE
    return NODE if name in NODE_LOCAL else UNKNOWN_PLUGIN


def pv_source(volume_spec: dict[str, Any]) -> str | None:
    """The PersistentVolume's volume source, or None when it names none that is known."""
    return next((key for key in volume_spec if key in PV_SOURCES), None)


@dataclass(frozen=True)
class StoreVolume:
    mount: Mount
    claim_name: str | None = None
    claim: dict[str, Any] | None = None  # None for a claim: it does not exist

    @property
    def type(self) -> str:
        return self.mount.type

    @property
    def name(self) -> str:
        return self.mount.volume_name

    @property
    def access_modes(self) -> list[str]:
        if self.claim is None:
            return []
        spec, status = as_dict(self.claim.get("spec")), as_dict(self.claim.get("status"))
        return [str(m) for m in as_list(status.get("accessModes") or spec.get("accessModes"))]

    def names(self, snapshot: Snapshot) -> set[str]:
        """The names events give this volume: the pod's volume name, and for a claim its
        PersistentVolume's (attach and mount events name the PV)."""
        names = {self.name}
        if self.claim is not None:
            names.add(str(as_dict(self.claim.get("spec")).get("volumeName")))
        return names

    def failure_events(self, snapshot: Snapshot,
                       events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Warning events that say a pod could not attach or mount this volume (a
        Multi-Attach error, a mount timeout), newest first; events about the pod's other
        volumes (a missing secret) are not the store's."""
        names = self.names(snapshot)
        found = [e for e in events if e.get("type") == "Warning"
                 and str(e.get("reason")) in VOLUME_FAILURES
                 and names & _volumes_named(str(e.get("message", "")))]
        return sorted(found, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime")
                                               or ""), reverse=True)

    def plugin(self, snapshot: Snapshot) -> Plugin:
        """The plugin of an inline volume, or of the claim's PersistentVolume (its source, its
        CSI driver), else of the claim's StorageClass provisioner."""
        if self.claim_name is None:
            return Plugin(plugin_kind(self.type), self.type, f"volume {self.name} {self.type}")
        claim_spec = as_dict((self.claim or {}).get("spec"))
        volume = snapshot.named("persistentvolumes", str(claim_spec.get("volumeName")))
        volume_spec = as_dict((volume or {}).get("spec"))
        volume_name = as_dict((volume or {}).get("metadata")).get("name")
        source = pv_source(volume_spec)
        driver = as_dict(volume_spec.get("csi")).get("driver")
        if source == "csi" and isinstance(driver, str):
            return Plugin(plugin_kind(driver), f"csi {driver}",
                          f"persistentvolume/{volume_name} spec.csi.driver={driver}")
        if source is not None and source != "csi":
            return Plugin(plugin_kind(source), source,
                          f"persistentvolume/{volume_name} spec.{source}")
        class_name = volume_spec.get("storageClassName") or claim_spec.get("storageClassName")
        provisioner = (snapshot.named("storageclasses", str(class_name)) or {}).get("provisioner")
        if isinstance(provisioner, str):
            return Plugin(plugin_kind(provisioner), provisioner,
                          f"storageclass/{class_name} provisioner={provisioner}")
        return Plugin(UNKNOWN_PLUGIN, "unknown", f"claim {self.claim_name}: no volume source "
                      "or provisioner in the snapshot")

    def sharing(self, snapshot: Snapshot) -> Sharing:
        """What the volume's plugin can do decides, not the access mode its claim declares:
        a block device attaches to one node even under a ReadWriteMany claim, and a network
        file system is mounted on every node even under a ReadWriteOnce one (Kubernetes docs,
        "Persistent Volumes", "Access Modes"). A claim is trusted only when its plugin is
        unknown."""
        if self.type in NODE_LOCAL:
            return Sharing(EACH_POD_ITS_OWN, what=f"{self.type} volume {self.name}")
        if self.type == CLAIM_TEMPLATE:  # each pod's claim <template>-<name>-<ordinal>
            return Sharing(EACH_POD_ITS_OWN, what=f"volumeClaimTemplate {self.name}")
        if self.type in SHARED_INLINE:
            return Sharing(SHARED_NFS if self.type == "nfs" else SHARED,
                           what=f"inline {self.type} volume {self.name}")
        if self.claim_name is None:
            if plugin_kind(self.type) == BLOCK:
                return Sharing(ONE_POD_ONLY, (f"volume {self.name} is a {self.type} block "
                                              "device: it attaches to one node",),
                               f"inline {self.type} volume {self.name}", block=self.type)
            return Sharing(UNKNOWN, what=f"{self.type} volume {self.name}")
        if self.claim is None:
            return Sharing(CLAIM_MISSING, what=f"claim {self.claim_name}")
        modes = self.access_modes
        line = f"persistentvolumeclaim/{self.claim_name} accessModes={','.join(modes) or 'none'}"
        plugin = self.plugin(snapshot)
        if plugin.kind == BLOCK:
            return Sharing(ONE_POD_ONLY, (line, f"{plugin.evidence}: a {plugin.name} block "
                                          "device attaches to one node, whatever the claim "
                                          "declares"), f"claim {self.claim_name}",
                           block=plugin.name)
        if plugin.kind == NODE:  # a hostPath or local PV: each node has its own directory
            return Sharing(EACH_POD_ITS_OWN, (line, f"{plugin.evidence}: a {plugin.name} "
                                              "volume is a directory of one node, whatever "
                                              "the claim declares"), f"claim {self.claim_name}")
        shared_anyway = "ReadWriteMany" not in modes
        if shared_anyway and plugin.kind != FILE:
            return Sharing(ONE_POD_ONLY, (line,), f"claim {self.claim_name}")
        evidence = [line]
        if shared_anyway:
            evidence.append(f"{plugin.evidence}: a network file system, mounted on every node "
                            "whatever the claim declares")
        nfs, how = _nfs_evidence(snapshot, as_dict(self.claim.get("spec")))
        return Sharing(SHARED_NFS if nfs else SHARED, (*evidence, how),
                       f"{','.join(modes) or 'access-mode-less'} claim {self.claim_name}"
                       if shared_anyway else f"ReadWriteMany claim {self.claim_name}")


def stalled_rollout(installation: Installation) -> Sharing | None:
    """Why the next rollout of a one-pod registry stalls, if it does: a rolling strategy
    starts the new pod before the old one stops, and a store that attaches to one node
    (ONE_POD_ONLY) keeps the new pod waiting when it lands on another node. The Recreate
    strategy is the fix (the rule OpenShift 4's operator enforces: ReadWriteOnce only with one
    replica and Recreate)."""
    workload, config = installation.registry, installation.configuration
    if workload is None or workload.replicas != 1 or workload.rolling is None \
            or config is None or config.driver != "filesystem":
        return None
    store = installation.store()
    sharing = store.sharing(installation.snapshot) if store else None
    return sharing if sharing and sharing.verdict == ONE_POD_ONLY else None


def classify(snapshot: Snapshot, mount: Mount) -> StoreVolume:
    """The store volume with its claim, when it is one (read from the claims collection)."""
    if mount.type != "persistentVolumeClaim":
        return StoreVolume(mount)
    name = str(as_dict(mount.volume.get("persistentVolumeClaim")).get("claimName"))
    return StoreVolume(mount, name, snapshot.named("persistentvolumeclaims", name))


def _volumes_named(message: str) -> set[str]:
    """The volumes an attach or mount event is about: the kubelet's list of unmounted volumes
    (`list of unmounted volumes=[a]` in 3.11, `unmounted volumes=[a], unattached ...` later;
    its unattached list names every volume of the pod), else each `volume "name"`
    (`Multi-Attach error for volume "pvc-..."`, `MountVolume.SetUp failed for volume "v"`)."""
    unmounted = _UNMOUNTED.search(message)
    if unmounted:
        return set(re.split(r"[\s,]+", unmounted.group(1).strip())) - {""}
    return set(_NAMED_VOLUME.findall(message))


def _nfs_evidence(snapshot: Snapshot, claim_spec: dict[str, Any]) -> tuple[bool, str]:
    volume = snapshot.named("persistentvolumes", str(claim_spec.get("volumeName")))
    volume_spec = as_dict((volume or {}).get("spec"))
    name = (volume or {}).get("metadata", {}).get("name", claim_spec.get("volumeName"))
    if "nfs" in volume_spec:
        nfs = as_dict(volume_spec["nfs"])
        return True, f"persistentvolume/{name} spec.nfs: {nfs.get('server')}:{nfs.get('path')}"
    driver = as_dict(volume_spec.get("csi")).get("driver")
    if isinstance(driver, str) and _nfs_name(driver):
        return True, f"persistentvolume/{name} spec.csi.driver={driver}"
    class_name = volume_spec.get("storageClassName") or claim_spec.get("storageClassName")
    storage_class = snapshot.named("storageclasses", str(class_name))
    provisioner = (storage_class or {}).get("provisioner")
    if isinstance(provisioner, str) and _nfs_name(provisioner):
        return True, f"storageclass/{class_name} provisioner={provisioner}"
    source = pv_source(volume_spec) or "no known volume source"
    found = f"persistentvolume/{name} {source}" if volume else \
        f"no persistentvolume {name} in the snapshot"
    return False, f"{found}, storageclass {class_name or 'none'}: not NFS"


def _nfs_name(name: str) -> bool:
    return _names_nfs(name) or name in NFS_DRIVERS


def _names_nfs(name: str) -> bool:
    """`nfs` as a word of a driver or provisioner name (`nfs.csi.k8s.io`,
    `example.com/nfs-client`), not inside another word."""
    return "nfs" in re.split(r"[./_-]", name.lower())
