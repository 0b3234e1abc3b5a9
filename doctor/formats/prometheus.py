"""The exporter's metrics of one report as a node_exporter textfile (textfile collector:
`--collector.textfile.directory`), so cron and one-shot runs are visible to Prometheus too.

The file is written to a temporary name in the same folder and renamed over the target, as
the node_exporter documentation asks: the collector never reads a half-written file."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from registry_doctor.doctor.model import Report
from registry_doctor.doctor.render import one_line

# Families about the exporter's own loop: a one-shot run has no loop to describe.
_LOOP_ONLY = ("registry_doctor_runs", "registry_doctor_run_errors",
              "registry_doctor_run_interval_seconds")


def render_textfile(report: Report, source: str | None = None) -> str:
    """The metrics as text; `source` labels every series (`textfile="<source>"`), so several
    runs' files (a check cron, a canary cron) side by side never collide in node_exporter."""
    from prometheus_client import CollectorRegistry, generate_latest

    from registry_doctor.checks import all_checks
    from registry_doctor.exporter.collector import ReportCollector
    from registry_doctor.exporter.scheduler import RunState

    # The registry judged, named as the exporter names it (exporter/daemon.py); a canary
    # through a URL judged no registry of a cluster.
    target = {label: report.source[key] for label, key in
              (("registry_namespace", "namespace"), ("registry", "registry"))
              if report.source.get(key)}
    state = RunState(interval_seconds=0.0, report=report, runs_total=1,
                     finished_at=time.time(), last_run_ok=True, labels=target)
    severities = {i: c.meta.severity.value for i, c in all_checks().items()}
    collector = ReportCollector(lambda: state, severities)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_OneShot(collector, source))
    return _problem_comments(report) + generate_latest(registry).decode("utf-8")


def _problem_comments(report: Report) -> str:
    """Input that could not be read, as comment lines: no metric family counts it, and a
    comment (text exposition format: `#` not followed by HELP or TYPE) is read by whoever
    opens the file and ignored by the parser."""
    return "".join(f"# registry-doctor input problem: "
                   f"{one_line(problem)}\n"
                   for problem in report.input_problems)


class _OneShot:
    """The collector's families without those about the exporter's loop, each series with
    the `textfile` label when there is a source."""

    def __init__(self, collector: object, source: str | None) -> None:
        self._collector = collector
        self._source = source

    def collect(self):  # -> Iterator[Metric]
        from prometheus_client.core import Metric

        for family in self._collector.collect():
            if family.name in _LOOP_ONLY:
                continue
            if self._source is None:
                yield family
                continue
            labelled = Metric(family.name, family.documentation, family.type)
            for sample in family.samples:
                labelled.add_sample(sample.name, {**sample.labels, "textfile": self._source},
                                    sample.value)
            yield labelled


def write_textfile(report: Report, path: Path) -> None:
    """Write atomically: a temporary file beside `path`, fsynced, then renamed over it."""
    text = render_textfile(report, source=path.name.removesuffix(".prom"))
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
