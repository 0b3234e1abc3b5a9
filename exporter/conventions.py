"""Metric families every registry-doctor exposition has besides the checks' own:
`registry_doctor_build_info` (what is running), the acknowledged findings, which stay
visible in a metric although `check_status` says `acknowledged` and no alert fires, and the
outcome of a `check --fix` run (its textfile: the exporter never fixes)."""

from __future__ import annotations

import platform
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, time, timezone

from prometheus_client.core import GaugeMetricFamily, Metric

from registry_doctor.doctor import __version__
from registry_doctor.doctor.model import Report

PREFIX = "registry_doctor_"


# Each family takes the target labels (registry_namespace, registry) the exporter puts first
# on every series (exporter/collector.py), as names and values.
Labels = tuple[str, ...]


def build_info(names: Labels = (), values: Labels = ()) -> Metric:
    family = GaugeMetricFamily(f"{PREFIX}build_info", "Version of registry-doctor, of Python "
                               "and the platform it runs on; always 1",
                               labels=[*names, "version", "python", "platform"])
    family.add_metric([*values, __version__, platform.python_version(), sys.platform], 1.0)
    return family


def acknowledged_families(report: Report, names: Labels = (),
                          values: Labels = ()) -> Iterator[Metric]:
    """`..._acknowledged_until_timestamp_seconds{check,status}`: end (Unix time) of the last
    day each acknowledged finding is acknowledged, `status` being its own verdict."""
    family = GaugeMetricFamily(
        f"{PREFIX}acknowledged_until_timestamp_seconds", "End (Unix time) of the last day an "
        "acknowledged finding stays acknowledged; status is the check's own verdict",
        labels=[*names, "check", "status"])
    for result in report.results:
        ack = result.acknowledgement
        if ack is not None:
            end = datetime.combine(date.fromisoformat(ack.until), time.max, timezone.utc)
            family.add_metric([*values, result.check, ack.status.value],
                              float(int(end.timestamp()) + 1))
    if family.samples:
        yield family


def fix_families(report: Report, names: Labels = (), values: Labels = ()) -> Iterator[Metric]:
    """`..._fix_actions{check,state}`: the actions of a `--fix` run per check and state
    (planned, applied, failed, rolled-back, ... as in docs/remediation.md)."""
    if report.fix is None:
        return
    counts: Counter[tuple[str, str]] = Counter(
        (result.check, action["state"]) for result in report.results if result.remediation
        for action in result.remediation.actions)
    family = GaugeMetricFamily(f"{PREFIX}fix_actions", "Actions of the last --fix run per "
                               "check and state (planned, applied, failed, rolled-back, ...)",
                               labels=[*names, "check", "state"])
    for (check, state), count in sorted(counts.items()):
        family.add_metric([*values, check, state], float(count))
    yield family
