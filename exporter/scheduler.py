"""The scheduler: runs the engine every interval and swaps in one immutable state per run.

Only the scheduler thread writes `Scheduler.state`, by replacing it whole; scrapes read it
with one attribute access. So no lock is needed and a scrape never sees half a run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from registry_doctor.doctor.kube import KubeError
from registry_doctor.doctor.model import Report

log = logging.getLogger("registry_doctor.exporter")


@dataclass(frozen=True)
class RunState:
    interval_seconds: float
    report: Report | None = None  # the last good report, served until a newer one replaces it
    finished_at: float | None = None  # Unix time the last good run finished
    runs_total: int = 0
    run_errors_total: int = 0
    last_run_ok: bool | None = None  # None until the first run ends
    # The registry judged, on every series: {"registry_namespace": ..., "registry": ...}.
    labels: Mapping[str, str] = field(default_factory=dict)


class Scheduler:
    def __init__(self, run: Callable[[], Report], interval_seconds: float,
                 labels: Mapping[str, str] | None = None) -> None:
        self._run = run
        self.state = RunState(interval_seconds, labels=dict(labels or {}))
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, grace_seconds: float) -> bool:
        """Ask the loop to stop; wait up to `grace_seconds` for a run in progress.
        True when the loop has ended."""
        self._stopping.set()
        self._thread.join(grace_seconds)
        return not self._thread.is_alive()

    def run_once(self) -> RunState:
        try:
            report = self._run()
        except Exception as error:  # the daemon outlives any failed run
            # A cluster error explains itself; anything else is a bug worth its traceback.
            self._failed(f"{type(error).__name__}: {error}",
                         None if isinstance(error, KubeError) else error)
        else:
            if report.source_failure:  # blind: every check unknown is not news of the registry
                self._failed(f"cannot read the cluster: {report.source_failure}")
            else:
                self._succeeded(report)
        return self.state

    def _failed(self, error: str, bug: Exception | None = None) -> None:
        """The run counts as failed: the last good report (its check statuses, its facts) is
        still served, so alerts hold their last known state, and `up` says the run failed."""
        previous = self.state
        self.state = replace(previous, runs_total=previous.runs_total + 1,
                             run_errors_total=previous.run_errors_total + 1, last_run_ok=False)
        log.error("run failed; still serving the previous report", exc_info=bug,
                  extra={"error": error, "served_report": previous.report.generated
                         if previous.report else None})

    def _succeeded(self, report: Report) -> None:
        previous = self.state
        self.state = replace(previous, report=report, finished_at=time.time(),
                             runs_total=previous.runs_total + 1, last_run_ok=True,
                             labels=_target_labels(previous.labels, report))
        log.info("run finished", extra={"duration_seconds": round(report.duration_seconds, 3),
                                        "counts": report.counts,
                                        "exit_code": report.exit_code})

    def _loop(self) -> None:
        interval = self.state.interval_seconds
        while not self._stopping.is_set():
            started = time.monotonic()
            self.run_once()
            # Fixed rate: the next run starts one interval after this one started.
            self._stopping.wait(max(0.0, started + interval - time.monotonic()))


def _target_labels(labels: Mapping[str, str], report: Report) -> Mapping[str, str]:
    """The target labels, valued where the run found the registry (the platform names it
    when the admin did not)."""
    found = {"registry_namespace": report.source.get("namespace"),
             "registry": report.source.get("registry")}
    return {**labels, **{k: v for k, v in found.items()
                         if k in labels and isinstance(v, str) and v}}
