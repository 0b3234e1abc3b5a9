"""The metrics of one cached run state, built at scrape time from immutable values.

Nothing here runs a check, calls an API or probes anything: a scrape only reads the state the
scheduler last swapped in (one reference read, so every family of a scrape comes from the same
run). Families are rebuilt from that state on each scrape, so a check that is no longer in the
report has no series any more instead of a stale value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from doctor.model import Report, Status, metric_name_and_labels
from exporter.conventions import acknowledged_families, build_info, fix_families
from exporter.scheduler import RunState

PREFIX = "registry_doctor_"

# Numeric facts checks may report in `Result.metrics`, published as `registry_doctor_<key>`.
# A key not listed here is still published, with a generic help text (docs/exporter.md).
FACTS = {
    "console_cert_not_after_timestamp_seconds":
        "Expiry (notAfter, Unix time) of the certificate the registry console serves",
    "s3_probe_duration_seconds":
        "How long the S3 storage probe took to answer, in seconds",
    "canary_phase_duration_seconds":
        "How long each canary phase took, slowest over the targets of a kind, in seconds",
    "canary_phase_success":
        "1 if a canary phase succeeded for every target of that kind, else 0",
}


class ReportCollector:
    """A prometheus_client collector over whatever `current()` returns at scrape time."""

    def __init__(self, current: Callable[[], RunState], severities: Mapping[str, str]) -> None:
        self._current = current
        self._severities = dict(severities)  # check id -> severity when failing

    def collect(self) -> Iterator[Metric]:
        state = self._current()
        yield build_info()
        yield from _run_families(state)
        if state.report is not None:
            cached = _CACHED_NOTE
            yield from _check_families(state.report, self._severities, cached)
            yield from _fact_families(state.report, cached)
            yield from acknowledged_families(state.report)
            yield from fix_families(state.report)


# HELP text is constant (no timestamps: Prometheus keeps one HELP per family and a changing
# one churns its metadata); the age of the values is last_run_timestamp_seconds.
_CACHED_NOTE = "(from the last completed run; scrapes never run checks)"


def _run_families(state: RunState) -> Iterator[Metric]:
    yield CounterMetricFamily(f"{PREFIX}runs", "Runs of the checks since the exporter started, "
                              "failed ones included", value=state.runs_total)
    yield CounterMetricFamily(f"{PREFIX}run_errors", "Runs that failed as a whole (the "
                              "previous report is still served)", value=state.run_errors_total)
    yield GaugeMetricFamily(f"{PREFIX}run_interval_seconds", "Seconds between the starts of "
                            "two runs (--interval)", value=state.interval_seconds)
    if state.last_run_ok is not None:
        yield GaugeMetricFamily(f"{PREFIX}up", "1 if the last run of the checks completed, 0 if "
                                "it failed", value=1.0 if state.last_run_ok else 0.0)
    if state.report is not None and state.finished_at is not None:
        yield GaugeMetricFamily(f"{PREFIX}last_run_timestamp_seconds", "Unix time the last "
                                "completed run finished: the age of every check_* value",
                                value=state.finished_at)
        yield GaugeMetricFamily(f"{PREFIX}run_duration_seconds", "How long the last completed "
                                "run took, in seconds", value=state.report.duration_seconds)


def _check_families(report: Report, severities: Mapping[str, str],
                    cached: str) -> Iterator[Metric]:
    status = GaugeMetricFamily(f"{PREFIX}check_status", "Status of each check: 1 for its "
                               f"current status, 0 for the others {cached}",
                               labels=["check", "status"])
    info = GaugeMetricFamily(f"{PREFIX}check_info", f"Title and severity of each check {cached}",
                             labels=["check", "title", "severity"])
    for result in report.results:
        for candidate in Status:
            status.add_metric([result.check, candidate.value],
                              1.0 if result.status is candidate else 0.0)
        info.add_metric([result.check, result.title, severities.get(result.check, "")], 1.0)
    yield status
    yield info


def _fact_families(report: Report, cached: str) -> Iterator[Metric]:
    """One gauge per fact name; its labels are `check` plus the fact's own label names."""
    by_name: dict[str, list[tuple[tuple[str, ...], tuple[str, ...], float]]] = defaultdict(list)
    for result in report.results:
        for key, value in result.metrics.items():
            name, labels = metric_name_and_labels(key)
            by_name[name].append((("check", *(k for k, _ in labels)),
                                  (result.check, *(v for _, v in labels)), value))
    for name, samples in sorted(by_name.items()):
        help_text = FACTS.get(name, "A numeric fact the check observed")
        label_names = samples[0][0]
        family = GaugeMetricFamily(f"{PREFIX}{name}", f"{help_text} {cached}",
                                   labels=list(label_names))
        for names, values, value in samples:
            if names == label_names:  # a family has one label set; a stray sample is dropped
                family.add_metric(list(values), value)
        yield family
