"""nfs-scaling: a registry with several pods must share one store, safely.

OpenShift 3.x docs, "Deploying a Registry on Existing Clusters" ("Non-Production Use") and the
registry's "Known Issues": scaled over emptyDir or `--mount-host`, every pod has its own store
and pulls succeed or fail depending on which pod answers; a ReadWriteOnce claim cannot be
shared; over NFS, pushes fail with "digest invalid" or "blob upload unknown" unless the Service
pins clients to one pod (sessionAffinity ClientIP) and the export uses `no_wdelay`.
"""

from __future__ import annotations

from registry_doctor.doctor.check import CheckContext, NotEvaluable
from registry_doctor.doctor.fix.planners.storage import plan_nfs_scaling as plan  # noqa: F401 (its planner)
from registry_doctor.doctor.known_issues import KNOWN_ISSUES, quoted
from registry_doctor.doctor.model import CheckMeta, Resource, Result, Severity, Status
from registry_doctor.doctor.platform.store import (
    CLAIM_MISSING,
    EACH_POD_ITS_OWN,
    ONE_POD_ONLY,
    SHARED,
    SHARED_NFS,
    Sharing,
    classify,
    stalled_rollout,
)
from registry_doctor.doctor.registryconfig import CONFIG_KINDS, REMOTE_DRIVERS, RegistryConfig
from registry_doctor.doctor.workload import Workload, as_dict

META = CheckMeta(
    id="nfs-scaling",
    title="Scaled registry pods share one store safely",
    severity=Severity.CRIT,
    kinds=(*CONFIG_KINDS, "persistentvolumeclaims", "persistentvolumes", "storageclasses",
           "services", "registry-pods", "registry-logs", "registry-events",
           "registry-operator-config"),
    description=(
        "With one pod, only the next rollout matters: a store that attaches to one node under "
        "a rolling strategy (DeploymentConfig Rolling, Deployment RollingUpdate) with a "
        "maxSurge above 0 is warn, since the new pod waits for the volume the old pod holds "
        "and stalls on another node (fix: the Recreate strategy); maxSurge 0 stops the old "
        "pod first: ok. With more pods (replicas > 1, or a DaemonSet): remote "
        "storage drivers are shared by design: ok. With the filesystem driver, the volume "
        "under its root directory decides, by what its plugin can do rather than the access "
        "mode its claim declares: none, emptyDir or hostPath (inline or as a PV), or a "
        "StatefulSet's volumeClaimTemplate (each pod its own claim <template>-<name>-<ordinal>) "
        "gives each pod its own store (crit); a block device (cinder, EBS, GCE PD, Azure "
        "Disk, RBD, iSCSI, FC, vSphere, "
        "local, or their CSI drivers) attaches to one node (crit); a claim of unknown plugin "
        "that is not ReadWriteMany (crit); a network file system is shared whatever its "
        "claim declares. Shared NFS (an nfs PersistentVolume or inline volume, or an NFS/EFS "
        "provisioner or CSI driver) is warn unless the registry Service has sessionAffinity: "
        "ClientIP, then ok with a reminder of the no_wdelay export option, which the cluster "
        "cannot show. Push errors of the known signatures (digest invalid, blob upload "
        "unknown/invalid) in the registry pods' recent logs are evidence: crit behind a "
        "Service that balances each client across the pods, else they turn an ok into a warn. "
        "Warning events about the registry's pods that say one could not attach or mount the "
        "store volume (FailedAttachVolume, its Multi-Attach error; FailedMount naming that "
        "volume, not another) are crit with more pods, whatever the configuration promised, "
        "with the event quoted; with one pod they are the stalled rollout's proof."
    ),
    remediation=(
        "Share one store between the pods: a ReadWriteMany claim (`$use_claim`) or a "
        "remote driver such as S3; or scale to "
        "one pod (`$cli scale $registry -n $namespace --replicas=1`). On NFS, pin clients "
        "to one pod with `$cli patch $service -n $namespace -p "
        "'{\"spec\":{\"sessionAffinity\":\"ClientIP\"}}'` and export the share with "
        "no_wdelay. One pod on a volume that attaches to one node: use the Recreate strategy "
        "(`$cli patch $registry -n $namespace --type=json -p "
        "'[{\"op\":\"replace\",\"path\":\"/spec/strategy\",\"value\":{\"type\":"
        "\"Recreate\"}}]'`)."
    ),
    platform_remediation={
        "openshift4": (
            "Through the operator's Config CR (a change to the Deployment or Service is "
            "reverted): share one store, a ReadWriteMany claim (`$cli patch $owner --type merge "
            "-p '{\"spec\":{\"storage\":{\"emptyDir\":null,\"pvc\":{\"claim\":"
            "\"<rwx-claim>\"}}}}'`) or object storage; or run one replica (`$cli patch $owner "
            "--type merge -p '{\"spec\":{\"replicas\":1}}'`). A volume that attaches to one "
            "node needs one replica and the Recreate strategy: `$cli patch $owner --type merge "
            "-p '{\"spec\":{\"replicas\":1,\"rolloutStrategy\":\"Recreate\"}}'`. On NFS, "
            "export the share with no_wdelay."),
    },
)

# Push failures of a scaled registry on a shared store (OpenShift 3.x docs, registry "Known
# Issues": "Image Push Errors with Scaled Registry Using Shared NFS Volume"), by the name the
# detail lines count them under.
PUSH_FAILURES = {"shared-storage-digest": "digest invalid",
                 "upload-session-lost": "blob upload unknown",
                 "upload-session-invalid": "blob upload invalid"}
SIGNATURES = {PUSH_FAILURES[i.id]: i.pattern for i in KNOWN_ISSUES if i.id in PUSH_FAILURES}


def evaluate(ctx: CheckContext) -> Result:
    workload = ctx.registry()
    pods, count_line = _pod_count(workload)
    details = [count_line, *ctx.installation.owner_says("replicas", "rolloutStrategy")]
    resources = [workload.resource]
    if pods is not None and pods <= 1:
        stalled = stalled_rollout(ctx.installation)
        if stalled is not None:
            return _stalled_rollout(ctx, workload, stalled, details, resources)
        return ctx.result(Status.OK, f"{workload.ref} runs {pods} pod: no store to share",
                          details, resources)
    config = ctx.configuration()
    if config.unresolved:
        raise NotEvaluable(config.unresolved)
    driver = config.driver
    if driver in REMOTE_DRIVERS:
        return ctx.result(Status.OK, f"all pods share the remote {driver} storage",
                          [*details, config.source_line], resources)
    if driver == "inmemory":
        return ctx.failed("each pod keeps its own images in memory (inmemory driver): pulls "
                          "depend on which pod answers", [*details, config.source_line],
                          resources)
    if driver != "filesystem":
        cause = config.fatal[0] if config.fatal else "no storage driver"
        raise NotEvaluable(f"cannot tell where images are stored: {cause} (see registry-config)")
    details += [config.source_line, config.describe_root()]
    return _judge_volume(ctx, workload, config, details, resources)


def _stalled_rollout(ctx: CheckContext, workload: Workload, sharing: Sharing,
                     details: list[str], resources: list[Resource]) -> Result:
    details += [f"{workload.ref} spec.strategy.type={workload.rolling}", *sharing.evidence]
    store = ctx.installation.store()
    if store is not None:  # a rollout that stalled already left these
        details += _event_lines(store.failure_events(ctx.snapshot,
                                                     ctx.snapshot.items("registry-events")))
    return ctx.result(Status.WARN, f"{workload.ref} runs 1 pod on {sharing.what}, which "
                      f"attaches to one node, with a {workload.rolling} strategy: the next "
                      "rollout's new pod waits for the volume the old pod holds, and stalls "
                      "when it lands on another node (use the Recreate strategy)", details,
                      resources)


def _pod_claims(workload: Workload, volume: str) -> list[str]:
    """A StatefulSet's per-pod claims of the store volume, as its controller names them."""
    if volume not in workload.claim_templates:
        return []
    return [f"{workload.ref} spec.volumeClaimTemplates[{volume}]: each pod gets its own "
            f"claim, a volume of its own ({', '.join(workload.pod_claim_names(volume))})"]


def _pod_count(workload: Workload) -> tuple[int | None, str]:
    if workload.kind == "DaemonSet":
        desired = as_dict(workload.obj.get("status")).get("desiredNumberScheduled")
        if isinstance(desired, int):
            return desired, f"{workload.ref} status.desiredNumberScheduled={desired}"
        return None, f"{workload.ref} is a DaemonSet: one pod per eligible node"
    return workload.replicas, f"{workload.ref} spec.replicas={workload.replicas}"


def _judge_volume(ctx: CheckContext, workload: Workload, config: RegistryConfig,
                  details: list[str], resources: list[Resource]) -> Result:
    mount = config.storage_mount()
    evidence, errors_seen = _log_evidence(ctx)
    if mount is None:
        details += evidence
        return ctx.failed(f"each pod writes images to its own container filesystem at "
                          f"{config.filesystem_root}: pulls depend on which pod answers",
                          details, resources)
    details.append(f"{config.filesystem_root} is on volume {mount.volume_name} ({mount.type}), "
                   f"{mount.field}")
    details += evidence
    store = classify(ctx.snapshot, mount)
    sharing = store.sharing(ctx.snapshot)
    failures = store.failure_events(ctx.snapshot, ctx.snapshot.items("registry-events"))
    details += _event_lines(failures)
    if sharing.verdict == EACH_POD_ITS_OWN:
        details += [*_pod_claims(workload, mount.volume_name), *_pod_nodes(ctx)]
        return ctx.failed(f"each pod has its own {mount.type} store (volume "
                          f"{mount.volume_name}): pulls depend on which pod answers", details,
                          resources)
    if sharing.verdict == CLAIM_MISSING:
        raise NotEvaluable(f"claim {store.claim_name} does not exist in namespace "
                           f"{workload.namespace} (ephemeral-storage reports it)")
    if store.claim_name is not None:
        resources = [*resources, Resource("PersistentVolumeClaim", store.claim_name,
                                          workload.namespace)]
    details += sharing.evidence
    if sharing.verdict == ONE_POD_ONLY and sharing.block:
        return ctx.failed(f"{sharing.what} is a {sharing.block} block device, which attaches "
                          "to one node whatever the claim declares: more than one pod cannot "
                          "use it", details, resources)
    if sharing.verdict == ONE_POD_ONLY:
        modes = ", ".join(store.access_modes) or "without access modes"
        return ctx.failed(f"claim {store.claim_name} is {modes}, not ReadWriteMany: more than "
                          "one pod cannot use it (\"cannot use ReadWriteOnce access mode with "
                          "more than one replica\")", details, resources)
    if failures:
        return _failing_mounts(ctx, failures, sharing.what or mount.volume_name, details,
                               resources)
    if sharing.verdict in (SHARED, SHARED_NFS):
        return _judge_shared(ctx, sharing.verdict == SHARED_NFS, sharing.what, details,
                             resources, errors_seen)
    raise NotEvaluable(f"cannot tell whether {mount.type} volume {mount.volume_name} is shared "
                       "between pods")


def _failing_mounts(ctx: CheckContext, failures: list[dict], what: str, details: list[str],
                    resources: list[Resource]) -> Result:
    """The cluster says what the configuration could not: pods of a scaled registry that
    cannot attach or mount the store wait in ContainerCreating."""
    pods = sorted({str(as_dict(e.get("involvedObject")).get("name")) for e in failures})
    # The most telling event first: a Multi-Attach error, then a failure of the volume itself
    # (whose last line is the mount's output), before the kubelet's timeout that follows both.
    first = min(failures, key=lambda e: (0 if "Multi-Attach" in str(e.get("message")) else
                                         2 if "unmounted volumes=" in str(e.get("message"))
                                         else 1))
    cause = str(first.get("message", "")).strip().splitlines()[-1:] or [""]
    return ctx.failed(f"{len(pods)} registry pod(s) cannot attach or mount {what}: "
                      f"{first.get('reason')} \"{quoted(cause[0])}\"", details, resources)


def _event_lines(events: list[dict]) -> list[str]:
    return [f"{as_dict(e.get('involvedObject')).get('kind', '').lower()}/"
            f"{as_dict(e.get('involvedObject')).get('name')} event {e.get('reason')} "
            f"(x{e.get('count', 1)}, last {e.get('lastTimestamp') or e.get('eventTime')}): "
            f"{quoted(' '.join(str(e.get('message', '')).split()))}" for e in events]


def _judge_shared(ctx: CheckContext, nfs: bool, what: str, details: list[str],
                  resources: list[Resource], errors_seen: bool) -> Result:
    if not nfs and not errors_seen:
        return ctx.result(Status.OK, f"the pods share {what}", details, resources)
    installation = ctx.installation
    service, name = installation.service, installation.service_name
    affinity = as_dict((service or {}).get("spec")).get("sessionAffinity") or "None"
    if service is None:
        details.append(f"service/{name} not found: client affinity unknown")
    else:
        resources = [*resources, Resource("Service", name, installation.namespace)]
        details.append(f"service/{name} spec.sessionAffinity={affinity}")
    if errors_seen and service is not None and affinity != "ClientIP":
        return ctx.failed(f"pushes are failing: the pods share {what} behind a Service that "
                          "balances each client across them, and their logs show the push "
                          "errors of a shared store", details, resources)
    if not nfs:
        return ctx.result(Status.WARN, f"the pods share {what}, but push errors of a "
                          "shared store appear in their logs", details, resources)
    if affinity == "ClientIP" and not errors_seen:
        details.append("the NFS export must also use no_wdelay, which the cluster cannot show: "
                       "check /etc/exports on the NFS server")
        return ctx.result(Status.OK, f"the pods share NFS ({what}) and the Service pins each "
                          "client to one pod", details, resources)
    cause = ("push errors of NFS attribute delays appear in the pods' logs"
             if affinity == "ClientIP" else
             "the Service balances clients across pods, so a push may land on several pods "
             "whose NFS views disagree (\"digest invalid\", \"blob upload unknown\")")
    return ctx.result(Status.WARN, f"the pods share NFS ({what}): {cause}", details, resources)


def _log_evidence(ctx: CheckContext) -> tuple[list[str], bool]:
    """Lines of the known push-error signatures in each registry pod's recent log."""
    lines, seen = [], False
    for (namespace, pod), text in sorted(ctx.snapshot.logs.items()):
        if namespace != ctx.config.namespace:
            continue
        log_lines = text.splitlines()
        counts = {label: sum(1 for line in log_lines if pattern.search(line))
                  for label, pattern in SIGNATURES.items()}
        found = ", ".join(f"{n} x {label}" for label, n in counts.items() if n)
        if found:
            seen = True
            lines.append(f"pod/{pod}, last {len(log_lines)} log lines: {found}")
    error = ctx.snapshot.error("registry-logs")
    if error:
        lines.append(f"registry pod logs not read ({error}): push errors not counted")
    return lines, seen


def _pod_nodes(ctx: CheckContext) -> list[str]:
    nodes = sorted({str(as_dict(p.get("spec")).get("nodeName"))
                    for p in ctx.installation.pods()
                    if as_dict(p.get("spec")).get("nodeName")})
    return [f"registry pods run on {len(nodes)} node(s): {', '.join(nodes)}"] if nodes else []
