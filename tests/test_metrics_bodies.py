"""/metrics renders once per run state and content type, and again when a second old."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric

from registry_doctor.exporter.scheduler import RunState
from registry_doctor.exporter.server import MAX_BODY_AGE_SECONDS, MetricsBodies

OPENMETRICS = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"


class _Counting:
    def __init__(self) -> None:
        self.renders = 0

    def collect(self) -> Iterator[Metric]:
        self.renders += 1
        yield GaugeMetricFamily("renders", "How often the registry was collected",
                                value=self.renders)


def _bodies() -> tuple[MetricsBodies, _Counting, dict[str, object]]:
    counting, registry = _Counting(), CollectorRegistry()
    registry.register(counting)
    now = {"clock": 100.0, "state": RunState(60.0)}
    bodies = MetricsBodies(registry, lambda: now["state"], lambda: now["clock"])
    return bodies, counting, now


def test_twenty_scrapers_of_one_state_share_one_render() -> None:
    bodies, counting, _ = _bodies()
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(bodies.get("")))
               for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counting.renders == 1 and len(set(answers)) == 1
    assert b"renders 1.0" in answers[0][0]


def test_a_new_state_an_older_body_and_another_format_render_again() -> None:
    bodies, counting, now = _bodies()
    text, text_type = bodies.get("")
    assert bodies.get("*/*")[0] == text and counting.renders == 1
    now["state"] = RunState(60.0, runs_total=1)
    assert b"renders 2.0" in bodies.get("")[0]
    now["clock"] += MAX_BODY_AGE_SECONDS - 0.01
    assert b"renders 2.0" in bodies.get("")[0]
    now["clock"] += 0.01
    assert b"renders 3.0" in bodies.get("")[0]
    openmetrics, openmetrics_type = bodies.get(OPENMETRICS)
    assert openmetrics_type != text_type and openmetrics.endswith(b"# EOF\n")
    assert counting.renders == 4 and bodies.get(OPENMETRICS)[0] == openmetrics
