"""storage-capacity: the registry's store volume is not filling up.

A full store is the most reported registry failure: pushes fail with "no space left on device"
(or, with every inode taken, the same error with space left), and a registry that cannot write
its upload folders fails pulls of new layers too. The kubelet measures every mounted claim
(`kubelet_volume_stats_*`); the volume-stats probe reads those numbers from a Prometheus that
scrapes the kubelets or from a dump (doctor/probes/volume_stats.py).

Space comes back only by deleting images: on OpenShift, `oc adm prune images` ("Pruning
Objects", OpenShift Container Platform 3.11 docs; OpenShift 4 runs it as the CronJob
`image-pruner` in openshift-image-registry); on a plain distribution registry, `registry
garbage-collect`, which must run while the registry is read-only or stopped (distribution
docs, "Garbage collection": uploads during a collection may be deleted).
"""

from __future__ import annotations

import re
import string
from dataclasses import replace
from typing import Any

from registry_doctor.doctor.check import CheckContext, NotEvaluable
from registry_doctor.doctor.model import (
    CheckMeta,
    CheckOption,
    MetricKey,
    Remediation,
    Resource,
    Result,
    Severity,
    Status,
)
from registry_doctor.doctor.platform.store import POD_LIFETIME
from registry_doctor.doctor.registryconfig import (
    CONFIG_KINDS,
    REMOTE_DRIVERS,
    Mount,
    RegistryConfig,
)
from registry_doctor.doctor.registryconfig.rules import DISTRIBUTION_2
from registry_doctor.doctor.volumestats import SAVED_FILE, VolumeMeasure, VolumeStats
from registry_doctor.doctor.workload import CLAIM_TEMPLATE, as_dict, as_list

# The fix, by flavour; the claim is named, and $cli and $namespace as for the installation.
FIX_OPENSHIFT = (
    "Prune images as a user with the system:image-pruner role: `oc adm prune images "
    "--keep-tag-revisions=3 --keep-younger-than=60m --confirm`, and schedule it as a CronJob.")
FIX_DISTRIBUTION = (
    "Make the registry read-only (storage.maintenance.readonly.enabled: true, or "
    "REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED=true) or stop pushes, run `registry "
    "garbage-collect --delete-untagged /etc/docker/registry/config.yml` in its pod, then make "
    "it writable again.")
FIX_EXPAND = (
    " Or expand claim $claim where its StorageClass sets allowVolumeExpansion: `$cli patch "
    "pvc/$claim -n $namespace -p '{\"spec\":{\"resources\":{\"requests\":{\"storage\":"
    "\"<size>\"}}}}'`.")

META = CheckMeta(
    id="storage-capacity",
    title="Registry store has room to grow",
    severity=Severity.CRIT,
    kinds=(*CONFIG_KINDS, "persistentvolumeclaims", "registry-pods", "cronjobs",
           "cronjobs-v1beta1", "jobs"),
    probes=("volume-stats",),
    description=(
        "For the filesystem driver on a claim: the kubelet's volume statistics of that claim "
        "(kubelet_volume_stats_used_bytes, _capacity_bytes, _inodes_used, _inodes) from the "
        "Prometheus named by --prometheus-url, else (--node-stats, opt-in: it needs get on "
        "nodes/proxy) from the summary API of the kubelets running the registry, else from "
        "a dump's prometheus/kubelet_volume_stats.json or stats-summary/<node>.json. Crit at "
        "90% or more of the bytes or the inodes; warn at 80% or more, or when "
        "the last day's growth (deriv over 1d) fills the volume within 7 days. Object stores "
        "(s3, gcs, azure, swift, oss) skip: they have no capacity to fill; emptyDir, hostPath "
        "and the container's own layer skip: they fill the node's disk, which the kubelet "
        "guards by evicting the pod (ephemeral-storage judges such stores); a StatefulSet's "
        "per-pod claims (volumeClaimTemplates) skip, not measured yet. Without a source "
        "the check skips. The details say whether a CronJob or Job in the registry's "
        "namespace prunes images (for a distribution registry: garbage-collects) and when it "
        "last succeeded."
    ),
    remediation=(f"Free space or grow the volume. On OpenShift: {FIX_OPENSHIFT} On a plain "
                 f"distribution registry: {FIX_DISTRIBUTION}"
                 + FIX_EXPAND.replace("$claim", "<claim>")),
    options=(
        CheckOption("--prometheus-url", "prometheus_url", "A Prometheus that scrapes the "
                    "kubelets (kubelet_volume_stats_*), e.g. http://prometheus.example.com:9090."),
        CheckOption("--prometheus-token-file", "prometheus_token_file", "A file holding the "
                    "bearer token a Prometheus behind an authenticating proxy wants (OpenShift "
                    "cluster monitoring's prometheus-k8s: an account with "
                    "cluster-monitoring-view); sent over verified https only.", type="path"),
        CheckOption("--prometheus-ca-file", "prometheus_ca_file", "CA bundle that verifies "
                    "the https --prometheus-url (default: the system's CAs when a token is "
                    "given).", type="path"),
        CheckOption("--node-stats", "node_stats", "Read the kubelets' summary API through the "
                    "API server (needs get on nodes/proxy, which reaches every kubelet API).",
                    type="bool", default=False),
    ),
)

CRIT_RATIO, WARN_RATIO = 0.90, 0.80
WARN_DAYS = 7.0  # the last day's growth fills the volume within this many days: warn
# What deletes images, by registry flavour: the command a Job runs, and how the details name it.
PRUNE = (re.compile(r"\bprune\s+images\b"), "prune images", "oc adm prune images")
GARBAGE_COLLECT = (re.compile(r"\bgarbage-collect\b"), "garbage-collect",
                   "registry garbage-collect")
GIB = 2.0 ** 30


def evaluate(ctx: CheckContext) -> Result:
    workload = ctx.registry()
    config = ctx.configuration()
    if config.unresolved:
        raise NotEvaluable(config.unresolved)
    resources = [workload.resource, *config.resources]
    upkeep = upkeep_lines(ctx, config)
    if config.driver in REMOTE_DRIVERS:
        return ctx.result(Status.SKIP, f"images are in the {config.driver} object store, which "
                          "has no volume to fill (watch the bucket's quota and cost instead)",
                          [config.source_line, *upkeep], resources)
    if config.driver != "filesystem":
        raise NotEvaluable(f"cannot tell where images are stored: storage driver "
                           f"{config.driver or 'missing'} (see registry-config and "
                           "ephemeral-storage)")
    details = [config.source_line, config.describe_root()]
    not_a_claim = _not_a_claim(config.storage_mount())
    store = ctx.installation.store()
    if not_a_claim or store is None or store.claim_name is None:
        return ctx.result(Status.SKIP, not_a_claim or "no claim holds the images",
                          [*details, *upkeep], resources)
    claim = store.claim_name
    resources.append(Resource("PersistentVolumeClaim", claim, workload.namespace))
    if store.claim is None:
        return ctx.result(Status.SKIP, f"claim {claim} does not exist, so it holds nothing "
                          "yet (ephemeral-storage reports it)", details, resources)
    stats = _measured(ctx, claim)
    if isinstance(stats, str):
        return ctx.result(Status.SKIP, stats, [*details, *upkeep], resources)
    return _judge(ctx, config, claim, stats, [*details, *upkeep], resources)


def _not_a_claim(mount: Mount | None) -> str | None:
    """Why a store that is not a claim is not this check's to measure; None for a claim."""
    if mount is None:
        return ("images are in the container's own writable layer: it fills the node's disk "
                "(node ephemeral storage, which the kubelet guards by evicting the pod), not a "
                "volume with its own capacity; ephemeral-storage judges this store")
    volume_type, name = mount.type, mount.volume_name
    if volume_type in POD_LIFETIME:
        limit = as_dict(mount.volume.get(volume_type)).get("sizeLimit")
        bound = (f"its sizeLimit {limit} evicts the pod when exceeded" if limit else
                 "without a sizeLimit it is bounded only by the node's ephemeral storage")
        return (f"images are on {volume_type} volume {name}, part of the node's ephemeral "
                f"storage ({bound}); the kubelet publishes no claim statistics for it, and "
                "ephemeral-storage judges this store")
    if volume_type == "hostPath":
        return (f"images are on hostPath volume {name}, a directory of the node's own file "
                "system: watch the node's disk (node_filesystem_avail_bytes); the kubelet "
                "publishes volume statistics for claims only")
    if volume_type == CLAIM_TEMPLATE:  # one claim per pod: no one claim to measure
        return (f"images are on each pod's own claim from volumeClaimTemplate {name} "
                f"({name}-<statefulset>-<ordinal>): this check measures one claim and does "
                "not measure per-pod claims yet; watch kubelet_volume_stats_* of each")
    if volume_type != "persistentVolumeClaim":
        return (f"images are on inline {volume_type} volume {name}: the kubelet publishes "
                "volume statistics for claims only; watch the server that exports it")
    return None


def _measured(ctx: CheckContext, claim: str) -> VolumeStats | str:
    """The claim's statistics, or why the check skips (no source)."""
    probe = ctx.probe("volume-stats", VolumeMeasure)
    if probe is None:
        return f"usage of claim {claim} not measured: probes are off (--no-probes)"
    if probe.error:
        raise NotEvaluable(f"cannot measure claim {claim}: {probe.error}")
    if probe.data.stats is None:
        return (f"usage of claim {claim} not measured: {probe.data.unmeasured} (give "
                "--prometheus-url, a Prometheus that scrapes the kubelets, or --node-stats, or "
                f"save a Prometheus answer in the dump as {SAVED_FILE}: "
                "docs/checks/storage-capacity.md)")
    return probe.data.stats


def _judge(ctx: CheckContext, config: RegistryConfig, claim: str, stats: VolumeStats,
           details: list[str], resources: list[Resource]) -> Result:
    space = _ratio(stats.used_bytes, stats.capacity_bytes)
    inodes = _ratio(stats.inodes_used, stats.inodes)
    if space is None and inodes is None:
        raise NotEvaluable(f"{stats.source} gives no usage and capacity of claim {claim}")
    days = _days_left(stats)
    lines = [f"source: {stats.source}"]
    if space is not None:
        lines.append(f"bytes: {_size(stats.used_bytes)} used of {_size(stats.capacity_bytes)} "
                     f"({space:.0%})")
    if inodes is not None:
        lines.append(f"inodes: {stats.inodes_used:.0f} used of {stats.inodes:.0f} "
                     f"({inodes:.0%})")
    lines.append(_growth_line(stats, days))
    worst = max(r for r in (space, inodes) if r is not None)
    summary = _summary(claim, space, inodes, days)
    status = (Status.CRIT if worst >= CRIT_RATIO else Status.WARN
              if worst >= WARN_RATIO or (days is not None and days <= WARN_DAYS) else Status.OK)
    result = ctx.result(status, summary, [*lines, *details], resources, _metrics(stats))
    if result.remediation is None:
        return result
    return replace(result, remediation=Remediation(fix_text(ctx, config, claim), META.docs))


def fix_text(ctx: CheckContext, config: RegistryConfig, claim: str) -> str:
    """The cleanup of this registry's flavour, then growing its claim."""
    names = ctx.installation.names()  # looked up one by one: each may read its objects
    names = {"cli": names["cli"], "namespace": names["namespace"], "claim": claim}
    cleanup = FIX_DISTRIBUTION if config.flavour == DISTRIBUTION_2 else FIX_OPENSHIFT
    return cleanup + string.Template(FIX_EXPAND).substitute(names)


def _ratio(used: float | None, capacity: float | None) -> float | None:
    return used / capacity if used is not None and capacity else None


def _days_left(stats: VolumeStats) -> float | None:
    growth, used, capacity = stats.growth_bytes_per_day, stats.used_bytes, stats.capacity_bytes
    if growth is None or growth <= 0 or used is None or not capacity:
        return None
    return max(capacity - used, 0.0) / growth


def _growth_line(stats: VolumeStats, days: float | None) -> str:
    growth = stats.growth_bytes_per_day
    if growth is None:
        return "growth: unknown (no day of history in the source)"
    if days is None:
        return f"growth over the last day: {_size(growth)}/day: not filling"
    return f"growth over the last day: {_size(growth)}/day: full in {days:.1f} days at that rate"


def _summary(claim: str, space: float | None, inodes: float | None, days: float | None) -> str:
    parts = []
    if space is not None:
        parts.append(f"{space:.0%} of its bytes")
    if inodes is not None:
        parts.append(f"{inodes:.0%} of its inodes")
    text = f"claim {claim} uses {' and '.join(parts)}"
    if days is not None:
        text += f"; the last day's growth fills it in {days:.1f} days"
    return text


def _metrics(stats: VolumeStats) -> dict[MetricKey, float]:
    """The statistics as the exporter's gauges (docs/exporter.md), whatever the verdict."""
    values = {"storage_used_bytes": stats.used_bytes,
              "storage_capacity_bytes": stats.capacity_bytes,
              "storage_inodes_used": stats.inodes_used, "storage_inodes": stats.inodes}
    return {name: value for name, value in values.items() if value is not None}


def _size(value: float | None) -> str:
    return "?" if value is None else f"{value / GIB:.1f} GiB"


def upkeep_lines(ctx: CheckContext, config: RegistryConfig) -> list[str]:
    """Whether something deletes images: a CronJob or Job of the registry's namespace that
    runs `oc adm prune images` (OpenShift) or `registry garbage-collect` (a distribution
    registry), with its last success; for a distribution registry, how collection must run."""
    distribution = config.flavour == DISTRIBUTION_2
    pattern, short, command = GARBAGE_COLLECT if distribution else PRUNE
    cronjobs = {c["metadata"]["name"]: c for c in
                (*ctx.snapshot.items("cronjobs-v1beta1"), *ctx.snapshot.items("cronjobs"))}
    jobs = ctx.snapshot.items("jobs")
    lines = []
    for name, cronjob in sorted(cronjobs.items()):
        template = as_dict(as_dict(as_dict(cronjob.get("spec")).get("jobTemplate")).get("spec"))
        if _runs(pattern, template):
            lines.append(_cronjob_line(name, short, cronjob,
                                       [j for j in jobs if _owner(j) == name]))
    for job in jobs:
        if _owner(job) is None and _runs(pattern, as_dict(job.get("spec"))):
            lines.append(f"image cleanup: job/{job['metadata']['name']} runs `{short}`: "
                         + _last_success([job]))
    if not lines:
        lines.append(f"image cleanup: no CronJob or Job in {ctx.config.namespace} runs "
                     f"`{command}`: nothing deletes the layers of images that are no longer "
                     "referenced")
    if distribution:
        lines.append("garbage collection: a distribution registry frees space only through "
                     "`registry garbage-collect`, which must run while the registry is "
                     "read-only (storage.maintenance.readonly.enabled: true) or stopped: "
                     "uploads during a collection can be deleted")
    return lines


def _runs(pattern: re.Pattern[str], job_spec: dict[str, Any]) -> bool:
    pod = as_dict(as_dict(job_spec.get("template")).get("spec"))
    words = (str(w) for c in as_list(pod.get("containers")) for key in ("command", "args")
             for w in as_list(as_dict(c).get(key)))
    return bool(pattern.search(" ".join(words)))


def _owner(job: dict[str, Any]) -> str | None:
    owners = as_list(as_dict(job.get("metadata")).get("ownerReferences"))
    return next((str(o.get("name")) for o in map(as_dict, owners)
                 if o.get("kind") == "CronJob"), None)


def _cronjob_line(name: str, short: str, cronjob: dict[str, Any],
                  jobs: list[dict[str, Any]]) -> str:
    spec, status = as_dict(cronjob.get("spec")), as_dict(cronjob.get("status"))
    text = f"image cleanup: cronjob/{name} runs `{short}` on schedule '{spec.get('schedule')}'"
    if spec.get("suspend") is True:
        text += " but is suspended (spec.suspend=true)"
    recorded = status.get("lastSuccessfulTime")
    if isinstance(recorded, str) and not jobs:
        return f"{text}: last success {recorded} (status.lastSuccessfulTime)"
    return f"{text}: {_last_success(jobs)}"


def _last_success(jobs: list[dict[str, Any]]) -> str:
    done = sorted((str(as_dict(j.get("status")).get("completionTime")), j["metadata"]["name"])
                  for j in jobs if _succeeded(j))
    failed = sum(1 for j in jobs if as_dict(j.get("status")).get("failed"))
    if done:
        return f"last success {done[-1][0]} (job/{done[-1][1]})"
    return f"no successful run among its {len(jobs)} jobs ({failed} failed)" if jobs \
        else "no job of it in the namespace (never run, or its history is gone)"


def _succeeded(job: dict[str, Any]) -> bool:
    status = as_dict(job.get("status"))
    return bool(status.get("succeeded")) and isinstance(status.get("completionTime"), str)
