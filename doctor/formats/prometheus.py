"""The exporter's metrics of one report as a node_exporter textfile (textfile collector:
`--collector.textfile.directory`), so cron and one-shot runs are visible to Prometheus too.

The file is written to a temporary name in the same folder and renamed over the target, as
the node_exporter documentation asks: the collector never reads a half-written file."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from doctor.model import Report

# Families about the exporter's own loop: a one-shot run has no loop to describe.
_LOOP_ONLY = ("registry_doctor_runs", "registry_doctor_run_errors",
              "registry_doctor_run_interval_seconds")


def render_textfile(report: Report, finished_at: float | None = None) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    from checks import all_checks
    from exporter.collector import ReportCollector
    from exporter.scheduler import RunState

    state = RunState(interval_seconds=0.0, report=report, runs_total=1,
                     finished_at=time.time() if finished_at is None else finished_at,
                     last_run_ok=True)
    severities = {i: c.meta.severity.value for i, c in all_checks().items()}
    collector = ReportCollector(lambda: state, severities)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Only(collector))
    return generate_latest(registry).decode("utf-8")


class _Only:
    """The collector's families without those about the exporter's loop."""

    def __init__(self, collector: object) -> None:
        self._collector = collector

    def collect(self):  # -> Iterator[Metric]
        return (f for f in self._collector.collect() if f.name not in _LOOP_ONLY)


def write_textfile(report: Report, path: Path) -> None:
    """Write atomically: a temporary file beside `path`, fsynced, then renamed over it."""
    text = render_textfile(report)
    folder = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # node_exporter often runs as another user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
