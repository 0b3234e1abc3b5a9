"""The exporter: /metrics latency and CPU per scrape, paired round by round with a constant-body
Python server of the same size (the floor for a Python exporter here) and with Debian's
`prometheus-node-exporter --collector.disable-defaults` (the external peer); API requests caused
by scrapes; RSS growth over many refresh cycles (bench/refresh_cycles.py in a child process)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from bench.common import (
    CHILD_ENV,
    REPO,
    Figure,
    cli,
    fake_cluster,
    median,
    percentile,
    ratios,
    run_child,
    spread,
    times,
)
from tests.tools import free_port, stop, wait_for_port

SCRAPERS = 20
ALONE_SCRAPES = 100
BURST_SCRAPES = 400  # in bursts of SCRAPERS
MAX_RATIO_TO_FLOOR = 1.2
MAX_RSS_GROWTH_MB = 5.0
FIXTURE = REPO / "tests" / "fixtures" / "clusters" / "healthy"
OPENMETRICS = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"  # Debian's prometheus-node-exporter
TICKS = os.sysconf("SC_CLK_TCK")


def _get(port: int, path: str, accept: str = "") -> tuple[int, bytes]:
    """One request on a fresh connection, as Prometheus makes after a scrape timeout."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Accept": accept} if accept else {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _wait_ready(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    wait_for_port(port, process)
    deadline = time.monotonic() + timeout
    while _get(port, "/readyz")[0] != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("the exporter did not finish its first run")
        time.sleep(0.05)


def _timed_scrape(port: int, accept: str) -> float:
    began = time.perf_counter()
    status, body = _get(port, "/metrics", accept)
    took = time.perf_counter() - began
    if status != 200 or not body:
        raise RuntimeError(f"scrape answered {status}")
    return took


def _scrape_in_bursts(port: int, accept: str) -> list[float]:
    """SCRAPERS scrapers fire together (each waits for the others before every scrape), as
    Prometheus servers whose schedules line up. Latency of each, connect to last byte."""
    latencies: list[float] = []
    lock = threading.Lock()
    together = threading.Barrier(SCRAPERS)

    def scraper() -> None:
        for _ in range(BURST_SCRAPES // SCRAPERS):
            together.wait()
            took = _timed_scrape(port, accept)
            with lock:
                latencies.append(took)

    threads = [threading.Thread(target=scraper) for _ in range(SCRAPERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(latencies) != BURST_SCRAPES:
        raise RuntimeError(f"only {len(latencies)} of {BURST_SCRAPES} scrapes answered")
    return latencies


# A Python exporter can be no faster here than ThreadingHTTPServer answering a constant body.
CONSTANT_SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
BODY = b"x" * int(sys.argv[2])
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *args):
        pass
class Server(ThreadingHTTPServer):
    daemon_threads, request_queue_size = True, 128
Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


@dataclass
class _Target:
    """A server under test, and what its rounds measured."""

    label: str
    pid: int
    port: int
    accept: str = ""
    alone_p99: list[float] = field(default_factory=list)
    burst_p99: list[float] = field(default_factory=list)
    cpu_per_scrape: list[float] = field(default_factory=list)

    def measure_round(self) -> None:
        cpu = _cpu_seconds(self.pid)
        alone = [_timed_scrape(self.port, self.accept) for _ in range(ALONE_SCRAPES)]
        bursts = _scrape_in_bursts(self.port, self.accept)
        self.cpu_per_scrape.append((_cpu_seconds(self.pid) - cpu) / (len(alone) + len(bursts)))
        self.alone_p99.append(percentile(alone, 0.99))
        self.burst_p99.append(percentile(bursts, 0.99))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@contextmanager
def _process(args: list[str], port: int, ready: Callable[[subprocess.Popen], None] | None = None
             ) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=REPO, env=CHILD_ENV)
    try:
        (ready or (lambda p: wait_for_port(port, p)))(process)
        yield process
    finally:
        stop(process)


def _scrapes(rounds: int) -> list[Figure]:
    with fake_cluster(20, 3, 10) as (api, kubeconfig):
        port, floor_port, node_port = free_port(), free_port(), free_port()
        serve = cli("serve", "--kubeconfig", str(kubeconfig), "--no-probes", "--interval",
                    "1h", "--listen", f"127.0.0.1:{port}")
        with _process(serve, port, lambda p: _wait_ready(port, p)) as exporter:
            body_bytes = len(_get(port, "/metrics")[1])
            constant = [sys.executable, "-c", CONSTANT_SERVER, str(floor_port), str(body_bytes)]
            with _process(constant, floor_port) as floor, _node_exporter(node_port) as node:
                targets = [_Target("exporter", exporter.pid, port),
                           _Target("exporter (OpenMetrics)", exporter.pid, port, OPENMETRICS),
                           _Target("constant body", floor.pid, floor_port)]
                if node is not None:
                    targets.append(_Target("node_exporter", node.pid, node_port))
                node_bytes = len(_get(node_port, "/metrics")[1]) if node else 0
                api.clear_requests()
                for _ in range(rounds):  # round by round, every server in turn
                    for target in targets:
                        target.measure_round()
                api_requests = len(api.requests)
    return _scrape_figures(targets, body_bytes, node_bytes, api_requests, rounds)


@contextmanager
def _node_exporter(port: int) -> Iterator[subprocess.Popen | None]:
    if not shutil.which(NODE_EXPORTER):
        yield None  # the figure says so; `apt-get install prometheus-node-exporter` adds it
        return
    args = [NODE_EXPORTER, "--collector.disable-defaults", f"--web.listen-address=127.0.0.1:{port}"]
    with _process(args, port) as process:
        yield process


def _scrape_figures(targets: list[_Target], body_bytes: int, node_bytes: int,
                    api_requests: int, rounds: int) -> list[Figure]:
    floor = next(t for t in targets if t.label == "constant body")
    figures = []
    for target in targets:
        if target is floor:
            continue
        has_goal = target.label.startswith("exporter")
        for what, mine, theirs, unit in (
                ("p99, 1 scraper", target.alone_p99, floor.alone_p99, _ms),
                (f"p99, {SCRAPERS} concurrent scrapers", target.burst_p99, floor.burst_p99, _ms),
                ("CPU per scrape", target.cpu_per_scrape, floor.cpu_per_scrape, _ms)):
            paired_ratios = ratios(mine, theirs)
            figures.append(Figure(
                f"/metrics {what}: {target.label} / constant {body_bytes}-byte body",
                spread(paired_ratios, times), f"<= {MAX_RATIO_TO_FLOOR}x" if has_goal else "",
                median(paired_ratios) <= MAX_RATIO_TO_FLOOR if has_goal else None,
                f"{target.label}: {spread(mine, unit)}; constant: {spread(theirs, unit)}"))
    if not any(t.label == "node_exporter" for t in targets):
        figures.append(Figure("node_exporter (the external peer)", "not installed", "", None))
    else:
        figures.append(Figure(f"  (node_exporter's body: {node_bytes} bytes; {rounds} rounds)",
                              "", "", None))
    figures.append(Figure(f"API requests during {rounds * len(targets)} rounds of scrapes",
                          str(api_requests), "0", api_requests == 0))
    return figures


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _refresh_growth(cycles: int) -> list[Figure]:
    run = run_child([sys.executable, str(REPO / "bench" / "refresh_cycles.py"), str(cycles),
                     str(FIXTURE)], timeout=3600)
    if run.returncode != 0:
        raise RuntimeError(f"refresh cycles exited {run.returncode}: {run.stderr[-2000:]}")
    seen = json.loads(run.stdout)
    first, last = seen["rss_after_1_mb"], seen[f"rss_after_{cycles}_mb"]
    growth = last - first
    return [Figure(f"RSS growth over {cycles} refresh cycles (in-process run_once + render)",
                   f"{growth:+.1f} MB ({first:.1f} -> {last:.1f})",
                   f"<= {MAX_RSS_GROWTH_MB:g} MB", growth <= MAX_RSS_GROWTH_MB)]


def measure(rounds: int, refresh_cycles: int) -> list[Figure]:
    return _scrapes(rounds) + _refresh_growth(refresh_cycles)
