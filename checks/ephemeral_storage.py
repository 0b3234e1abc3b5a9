"""ephemeral-storage: the registry's images must survive its pod.

"Deploying a Registry on Existing Clusters" (OpenShift Origin 3.x docs),
"Storage for the Registry": a registry deployed as is stores images on an ephemeral
volume destroyed when the pod exits, and every image pushed disappears with it. What matters
is where the storage driver writes, so the check follows the effective configuration to the
volume under the filesystem driver's root directory.
"""

from __future__ import annotations

from typing import Any

from registry_doctor.doctor.check import CheckContext, NotEvaluable
from registry_doctor.doctor.events import event_lines, warnings_about
from registry_doctor.doctor.fix.planners.storage import plan_ephemeral_storage as plan  # noqa: F401 (its planner)
from registry_doctor.doctor.model import (
    CheckMeta,
    CheckOption,
    MetricKey,
    Resource,
    Result,
    Severity,
    Status,
)
from registry_doctor.doctor.platform.store import POD_LIFETIME, READ_ONLY, StoreVolume, classify
from registry_doctor.doctor.registryconfig import (
    CONFIG_KINDS,
    REMOTE_DRIVERS,
    Mount,
    RegistryConfig,
    mount_for,
)
from registry_doctor.doctor.workload import CLAIM_TEMPLATE, Workload, as_dict, as_list

META = CheckMeta(
    id="ephemeral-storage",
    title="Registry images survive the registry pod",
    severity=Severity.CRIT,
    kinds=(*CONFIG_KINDS, "persistentvolumeclaims", "registry-events",
           "registry-operator-config"),
    quotes_only=("registry-events",),
    description=(
        "Follows the effective configuration (see registry-config) to where images are "
        "written. Remote drivers (s3, gcs, azure, swift, oss) are ok. For the filesystem "
        "driver, the volume mounted over its root directory decides: none (the container's "
        "own layer), emptyDir or a read-only volume is crit; hostPath is warn (node-local, "
        "needs a privileged pod and write access for UID 1001); a claim is ok when it exists "
        "and is Bound, crit when it is missing, Pending or Lost, quoting the claim's warning "
        "events (ProvisioningFailed, FailedBinding); a StatefulSet's volumeClaimTemplate "
        "(each pod its own claim <template>-<name>-<ordinal>) is ok when every claim created "
        "is Bound, crit when one is not; other network volumes are ok. The inmemory driver "
        "is crit."
    ),
    remediation=(
        "Give the registry persistent storage: `$use_claim`, with a Bound "
        "claim (ReadWriteMany if the registry runs more than one pod) mounted where "
        "storage.filesystem.rootdirectory points, or configure a remote driver such as S3. "
        "Images already pushed to an emptyDir are lost with the pod: push them again."
    ),
    platform_remediation={
        "openshift4": (
            "Give the registry persistent storage through the operator's Config CR (a change "
            "to the Deployment is reverted): a claim in $namespace, `$cli patch $owner --type "
            "merge -p '{\"spec\":{\"storage\":{\"emptyDir\":null,\"pvc\":{\"claim\":"
            "\"<claim>\"}}}}'` (ReadWriteMany for more than one replica; ReadWriteOnce only "
            "with `replicas: 1` and `rolloutStrategy: Recreate`, which the operator enforces), "
            "or object storage (`spec.storage.s3`). The operator rolls the registry out. "
            "Images already pushed to an emptyDir are lost with the pod: push them again."),
    },
    options=(
        CheckOption("--claim-name", "claim_name", "The claim to use (created with "
                    "--claim-size when absent).", fix=True),
        CheckOption("--claim-size", "claim_size", "Create the claim with this size, e.g. 20Gi.",
                    type="quantity", fix=True),
        CheckOption("--storage-class", "storage_class", "Storage class of a created claim.",
                    fix=True),
    ),
)

def evaluate(ctx: CheckContext) -> Result:
    workload = ctx.registry()
    config = ctx.configuration()
    if config.unresolved:
        raise NotEvaluable(config.unresolved)
    driver = config.driver
    if driver not in (*REMOTE_DRIVERS, "filesystem", "inmemory"):
        cause = config.fatal[0] if config.fatal else "no storage driver"
        raise NotEvaluable(f"cannot tell where images are stored: {cause} (see registry-config)")
    details = [config.source_line, *ctx.installation.owner_says("storage")]
    resources = [workload.resource, *config.resources]
    if driver in REMOTE_DRIVERS:
        return ctx.result(Status.OK, f"images are kept by the remote {driver} storage driver, "
                          "outside the pod", [*details, *config.settings()], resources)
    if driver == "inmemory":
        return ctx.failed("the inmemory storage driver keeps images in the registry's memory: "
                          "they are lost whenever the registry restarts", details, resources)
    return _judge_filesystem(ctx, workload, config, details, resources)


def _judge_filesystem(ctx: CheckContext, workload: Workload, config: RegistryConfig,
                      details: list[str], resources: list[Resource]) -> Result:
    root = config.filesystem_root
    details.append(config.describe_root())
    mount = config.storage_mount()
    if mount is None:
        details += _volumes_elsewhere(config, root)
        return ctx.failed(f"images are written to {root} in the container's own filesystem "
                          f"({workload.ref} mounts no volume there): lost when the pod goes",
                          details, resources)
    details.append(f"{root} is on volume {mount.volume_name} ({mount.type}), {mount.field}")
    if mount.type in POD_LIFETIME:
        return ctx.failed(f"images are on {mount.type} volume {mount.volume_name}: deleted "
                          "with the pod", details, resources)
    if mount.type in READ_ONLY:
        return ctx.failed(f"images would go to {mount.type} volume {mount.volume_name}, which "
                          "is read-only and rebuilt with the pod", details, resources)
    if mount.type == "hostPath":
        return _judge_host_path(ctx, config, mount, details, resources)
    if mount.type == "persistentVolumeClaim":
        return _judge_claim(ctx, workload, classify(ctx.snapshot, mount), details, resources)
    if mount.type == CLAIM_TEMPLATE:
        return _judge_pod_claims(ctx, workload, mount, details, resources)
    return ctx.result(Status.OK, f"images are on {mount.type} volume {mount.volume_name}, "
                      "which outlives the pod", details, resources)


def _volumes_elsewhere(config: RegistryConfig, root: str) -> list[str]:
    """Data volumes the operator may have meant for the images, mounted beside the root."""
    notes = []
    for entry in as_list(config.container.get("volumeMounts")):
        path = str(as_dict(entry).get("mountPath") or "")
        mount = mount_for(config.container, config.container_field, config.pod_spec, path)
        if mount is not None and path and mount.type not in READ_ONLY:
            notes.append(f"volume {mount.volume_name} ({mount.type}) is mounted at {path}, not "
                         f"over {root}: the driver does not write there")
    return notes


def _judge_host_path(ctx: CheckContext, config: RegistryConfig, mount: Mount,
                     details: list[str], resources: list[Resource]) -> Result:
    path = as_dict(mount.volume.get("hostPath")).get("path")
    privileged = as_dict(config.container.get("securityContext")).get("privileged") is True
    details += [
        f"{config.container_field}.securityContext.privileged={str(privileged).lower()}: "
        + ("as --mount-host sets it" if privileged else "a hostPath registry needs it "
           "(\"Deploying a Registry on Existing Clusters\", \"Non-Production Use\")"),
        f"the node directory {path} must be writable by UID 1001 "
        "(`chown 1001:root <path>`), else pushes fail with \"mkdir /registry/docker: "
        "permission denied\" (storage-permissions judges that)",
    ]
    return ctx.result(Status.WARN, f"images are on hostPath {path} of whichever node runs the "
                      "pod: kept across restarts on that node only (non-production use)",
                      details, resources)


def _judge_claim(ctx: CheckContext, workload: Workload, store: StoreVolume,
                 details: list[str], resources: list[Resource]) -> Result:
    name, claim = str(store.claim_name), store.claim
    resources = [*resources, Resource("PersistentVolumeClaim", name, workload.namespace)]
    metrics = volume_info(workload.namespace, name)
    if claim is None:
        return ctx.failed(f"claim {name} does not exist in namespace {workload.namespace}: "
                          "the registry pods cannot start", details, resources, metrics)
    phase = _claim_phase(claim, name, details)
    if phase != "Bound":
        details += _claim_events(ctx, name)
        return ctx.failed(f"claim {name} is {phase}, not Bound: the registry pods cannot "
                          "start until a volume binds", details, resources, metrics)
    return ctx.result(Status.OK, f"images are on claim {name} (Bound), which outlives the pod",
                      details, resources, metrics)


def _claim_phase(claim: dict[str, Any], name: str, details: list[str]) -> str:
    """The claim's phase, with its evidence line added to `details`."""
    phase = as_dict(claim.get("status")).get("phase") or "without a status"
    volume = as_dict(claim.get("spec")).get("volumeName")
    details.append(f"persistentvolumeclaim/{name} status.phase={phase}"
                   + (f", spec.volumeName={volume}" if volume else ""))
    return str(phase)


def _judge_pod_claims(ctx: CheckContext, workload: Workload, mount: Mount,
                      details: list[str], resources: list[Resource]) -> Result:
    """A StatefulSet's volumeClaimTemplate: each pod has its own claim, created by the
    controller with the pod (`<template>-<statefulset>-<ordinal>`); one that does not bind
    keeps its pod from starting."""
    names = workload.pod_claim_names(mount.volume_name)
    unbound = []
    for name in names:
        claim = ctx.snapshot.named("persistentvolumeclaims", name)
        if claim is None:
            details.append(f"persistentvolumeclaim/{name} not created yet (the StatefulSet "
                           "controller creates it with its pod)")
        elif _claim_phase(claim, name, details) != "Bound":
            unbound.append(name)
            resources = [*resources, Resource("PersistentVolumeClaim", name, workload.namespace)]
            details += _claim_events(ctx, name)
    if unbound:
        return ctx.failed(f"claims {', '.join(unbound)} of {workload.ref}'s "
                          f"volumeClaimTemplate {mount.volume_name} are not Bound: their pods "
                          "cannot start until a volume binds", details, resources)
    return ctx.result(Status.OK, f"images are on each pod's own claim from volumeClaimTemplate "
                      f"{mount.volume_name} ({', '.join(names) or 'no pod'}), which outlives "
                      "the pod", details, resources)


def _claim_events(ctx: CheckContext, name: str) -> list[str]:
    """Why the claim does not bind, as the PV controller and provisioners record it."""
    error = ctx.snapshot.error("registry-events")
    if error:
        return [f"events not read ({error}): no claim event quoted"]
    events = warnings_about(ctx.snapshot.items("registry-events"), "PersistentVolumeClaim", name)
    return [f"persistentvolumeclaim/{name} event {line}" for line in event_lines(events)]


def volume_info(namespace: str, claim: str) -> dict[MetricKey, float]:
    """`registry_volume_info{claim_namespace, persistentvolumeclaim} 1`: ties the registry to
    its claim, so the kubelet's `kubelet_volume_stats_*{namespace, persistentvolumeclaim}` can
    be joined to it (the dashboard's storage usage). One series per registry; the namespace is
    not called `namespace`, which the scrape's own target label would rename."""
    return {("registry_volume_info", (("claim_namespace", namespace),
                                      ("persistentvolumeclaim", claim))): 1.0}
