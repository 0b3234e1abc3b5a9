"""What the volume-stats probe answers (doctor/probes/volume_stats.py), typed for the check
that judges it (storage-capacity): the kubelet's statistics of one claim."""

from __future__ import annotations

from dataclasses import dataclass

# Where a dump keeps the kubelet's volume statistics: an answer of the Prometheus HTTP API
# (docs/checks/storage-capacity.md, "Offline"). Not an object file (doctor.snapshot.dump).
SAVED_FILE = "prometheus/kubelet_volume_stats.json"
# Or the kubelets' summary API answers, one file per node: stats-summary/<node>.json.
SUMMARY_FOLDER = "stats-summary/"


@dataclass(frozen=True)
class VolumeStats:
    """The kubelet's statistics of one claim; a value is None when its series is absent."""

    source: str  # where they come from, for the details: the Prometheus or the dump file
    used_bytes: float | None
    capacity_bytes: float | None
    inodes_used: float | None
    inodes: float | None
    growth_bytes_per_day: float | None  # None: not enough history to fit a growth
    timestamp: float | None  # Unix time of the newest sample


@dataclass(frozen=True)
class VolumeMeasure:
    """The volume-stats probe's answer: the claim's statistics, or why there are none (no
    source configured, the store is not a claim)."""

    stats: VolumeStats | None = None
    unmeasured: str | None = None
