"""The metrics of one cached run state, built at scrape time from immutable values.

Nothing here runs a check, calls an API or probes anything: a scrape only reads the state the
scheduler last swapped in (one reference read, so every family of a scrape comes from the same
run). Families are rebuilt from that state on each scrape, so a check that is no longer in the
report has no series any more instead of a stale value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from registry_doctor.doctor.model import Report, Status, metric_name_and_labels
from registry_doctor.exporter.conventions import acknowledged_families, build_info, fix_families
from registry_doctor.exporter.scheduler import RunState

PREFIX = "registry_doctor_"

# Numeric facts checks may report in `Result.metrics`, published as `registry_doctor_<key>`.
# A key not listed here is still published, with a generic help text (docs/exporter.md).
FACTS = {
    "certificate_not_after_timestamp_seconds":
        "Expiry (notAfter, Unix time) of each certificate chain a check reads, by role: the "
        "earliest notAfter of the chain",
    "s3_probe_duration_seconds":
        "How long the S3 storage probe took to answer, in seconds",
    "canary_phase_duration_seconds":
        "How long each canary phase took, slowest over the targets of a kind, in seconds",
    "canary_phase_success":
        "1 if a canary phase succeeded for every target of that kind, else 0",
    "storage_used_bytes":
        "Bytes used on the registry's store claim, as the kubelet measures it",
    "storage_capacity_bytes":
        "Capacity in bytes of the registry's store claim, as the kubelet measures it",
    "storage_inodes_used":
        "Inodes used on the registry's store claim, as the kubelet measures it",
    "storage_inodes":
        "Inodes of the registry's store claim in all, as the kubelet measures it",
    "registry_volume_info":
        "Always 1: the PersistentVolumeClaim holding the registry's images, to join with the "
        "kubelet's kubelet_volume_stats_* on namespace and persistentvolumeclaim",
}


class ReportCollector:
    """A prometheus_client collector over whatever `current()` returns at scrape time."""

    def __init__(self, current: Callable[[], RunState], severities: Mapping[str, str]) -> None:
        self._current = current
        self._severities = dict(severities)  # check id -> severity when failing

    def collect(self) -> Iterator[Metric]:
        state = self._current()
        target = _Target(tuple(state.labels), tuple(state.labels.values()))
        yield build_info(target.names, target.values)
        yield from _run_families(state, target)
        if state.report is not None:
            cached = _CACHED_NOTE
            yield from _check_families(state.report, self._severities, cached, target)
            yield from _fact_families(state.report, cached, target)
            yield from acknowledged_families(state.report, target.names, target.values)
            yield from fix_families(state.report, target.names, target.values)


class _Target(NamedTuple):
    """The labels naming the registry judged, first on every series (docs/exporter.md)."""

    names: tuple[str, ...]
    values: tuple[str, ...]

    def gauge(self, name: str, documentation: str, value: float) -> GaugeMetricFamily:
        family = GaugeMetricFamily(f"{PREFIX}{name}", documentation, labels=list(self.names))
        family.add_metric(list(self.values), value)
        return family

    def counter(self, name: str, documentation: str, value: float) -> CounterMetricFamily:
        family = CounterMetricFamily(f"{PREFIX}{name}", documentation, labels=list(self.names))
        family.add_metric(list(self.values), value)
        return family


# HELP text is constant (no timestamps: Prometheus keeps one HELP per family and a changing
# one churns its metadata); the age of the values is last_run_timestamp_seconds.
_CACHED_NOTE = "(from the last completed run; scrapes never run checks)"


def _run_families(state: RunState, target: _Target) -> Iterator[Metric]:
    yield target.counter("runs", "Runs of the checks since the exporter started, failed ones "
                         "included", state.runs_total)
    yield target.counter("run_errors", "Runs that failed as a whole, or could not read the "
                         "cluster (the previous report is still served)", state.run_errors_total)
    yield target.gauge("run_interval_seconds", "Seconds between the starts of two runs "
                       "(--interval)", state.interval_seconds)
    if state.last_run_ok is not None:
        yield target.gauge("up", "1 if the last run of the checks completed, 0 if it failed or "
                           "could not read the cluster (check series then hold their last "
                           "value)", 1.0 if state.last_run_ok else 0.0)
    if state.report is not None and state.finished_at is not None:
        yield target.gauge("last_run_timestamp_seconds", "Unix time the last completed run "
                           "finished: the age of every check_* value", state.finished_at)
        yield target.gauge("run_duration_seconds", "How long the last completed run took, in "
                           "seconds", state.report.duration_seconds)


def _check_families(report: Report, severities: Mapping[str, str], cached: str,
                    target: _Target) -> Iterator[Metric]:
    status = GaugeMetricFamily(f"{PREFIX}check_status", "Status of each check: 1 for its "
                               f"current status, 0 for the others {cached}",
                               labels=[*target.names, "check", "status"])
    info = GaugeMetricFamily(f"{PREFIX}check_info", f"Title and severity of each check {cached}",
                             labels=[*target.names, "check", "title", "severity"])
    for result in report.results:
        for candidate in Status:
            status.add_metric([*target.values, result.check, candidate.value],
                              1.0 if result.status is candidate else 0.0)
        info.add_metric([*target.values, result.check, result.title,
                         severities.get(result.check, "")], 1.0)
    yield status
    yield info


def _fact_families(report: Report, cached: str, target: _Target) -> Iterator[Metric]:
    """One gauge per fact name; its labels are the target's, `check`, then the fact's own."""
    by_name: dict[str, list[tuple[tuple[str, ...], tuple[str, ...], float]]] = defaultdict(list)
    for result in report.results:
        for key, value in result.metrics.items():
            name, labels = metric_name_and_labels(key)
            by_name[name].append(((*target.names, "check", *(k for k, _ in labels)),
                                  (*target.values, result.check, *(v for _, v in labels)),
                                  value))
    for name, samples in sorted(by_name.items()):
        help_text = FACTS.get(name, "A numeric fact the check observed")
        label_names = samples[0][0]
        family = GaugeMetricFamily(f"{PREFIX}{name}", f"{help_text} {cached}",
                                   labels=list(label_names))
        for names, values, value in samples:
            if names == label_names:  # a family has one label set; a stray sample is dropped
                family.add_metric(list(values), value)
        yield family
