"""Helpers for the exporter tests: an in-process exporter on a free loopback port, scraping
it, and running `registry-doctor serve` as a real process."""

from __future__ import annotations

import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

from registry_doctor.checks import all_checks
from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import Report
from registry_doctor.exporter.scheduler import Scheduler
from registry_doctor.exporter.server import ExporterServer

REPO = Path(__file__).resolve().parent.parent
CLUSTERS = REPO / "tests" / "fixtures" / "clusters"
SEVERITIES = {i: c.meta.severity.value for i, c in all_checks().items()}
T = TypeVar("T")


def http_get(url: str, accept: str | None = None) -> tuple[int, str, dict[str, str]]:
    """Status, body and headers; an HTTP error status is an answer, not an exception."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def poll(probe: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    """Call `probe` until it returns something truthy (connection errors, and an answer that
    is not JSON yet, as Prometheus's while it starts, count as not yet). A bounded wait for
    an event, not a timing assertion."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            found = probe()
            if found:
                return found
            last = found
        except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
            last = error
        time.sleep(0.1)
    raise AssertionError(f"{what}: not seen within {timeout:g}s (last: {last})")


def scrape_until(url: str, predicate: Callable[[Scrape], bool], what: str) -> Scrape:
    def attempt() -> Scrape | None:
        scrape = Scrape(http_get(url + "/metrics")[1])
        return scrape if predicate(scrape) else None

    return poll(attempt, what)


# The exporter tests follow one check, so new checks do not change what they expect.
CHECK = "besteffort-qos"
# The labels `serve` puts on every series: the registry it judges (the default flags).
TARGET = {"registry_namespace": "default", "registry": "docker-registry"}


def dump_run(cluster: str) -> Callable[[], Report]:
    """The real engine over a fixture cluster dump, as the scheduler calls it."""
    return partial(engine.run, RunConfig(from_dir=CLUSTERS / cluster),
                   engine.select_checks([CHECK]))


@dataclass
class Exporter:
    scheduler: Scheduler
    server: ExporterServer
    url: str

    def get(self, path: str) -> tuple[int, str]:
        return http_get(self.url + path)[:2]

    def scrape(self) -> Scrape:
        status, text = self.get("/metrics")
        assert status == 200, text
        return Scrape(text)


class Scrape:
    """A parsed /metrics answer: `value(name, **labels)`, HELP texts, series names."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                        for f in self.families.values() for s in f.samples}

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def series(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for sample_name, labels in self.samples if sample_name == name]

    def statuses(self) -> dict[str, str]:
        """check id -> the status whose series is 1."""
        return {labels["check"]: labels["status"]
                for labels in self.series("registry_doctor_check_status")
                if self.value("registry_doctor_check_status", **labels) == 1}


@contextmanager
def in_process(run: Callable[[], Report], interval: float = 3600.0,
               severities: dict[str, str] | None = None) -> Iterator[Exporter]:
    """An exporter whose scheduler thread is not started: tests call `run_once()`."""
    scheduler = Scheduler(run, interval)
    server = ExporterServer("127.0.0.1", 0, scheduler,
                            SEVERITIES if severities is None else severities)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Exporter(scheduler, server, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "registry_doctor.doctor.cli", "serve", "--check", CHECK, *args]
