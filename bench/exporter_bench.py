"""The exporter: /metrics latency under concurrent scrapers, API requests caused by scrapes
(`registry-doctor serve` as a process against the fake API), and RSS growth over many refresh
cycles (bench/refresh_cycles.py in a child process)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time

from bench.common import (
    CHILD_ENV,
    REPO,
    Figure,
    cli,
    fake_cluster,
    median,
    percentile,
    run_child,
)
from tests.tools import free_port, stop, wait_for_port

SCRAPERS = 20
SCRAPES = 1000
MAX_P99_SECONDS = 0.005
MAX_RSS_GROWTH_MB = 5.0
FIXTURE = REPO / "tests" / "fixtures" / "clusters" / "healthy"


def _get(port: int, path: str) -> tuple[int, bytes]:
    """One request on a fresh connection, as Prometheus makes after a scrape timeout."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
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


def _timed_scrape(port: int) -> float:
    began = time.perf_counter()
    status, body = _get(port, "/metrics")
    took = time.perf_counter() - began
    if status != 200 or not body:
        raise RuntimeError(f"scrape answered {status}")
    return took


def _scrape_in_bursts(port: int) -> list[float]:
    """SCRAPERS scrapers fire together (each waits for the others before every scrape), as
    Prometheus servers whose schedules line up: SCRAPES scrapes in SCRAPES / SCRAPERS bursts.
    Latency of each, from connect to the last byte of the body."""
    latencies: list[float] = []
    lock = threading.Lock()
    together = threading.Barrier(SCRAPERS)

    def scraper() -> None:
        for _ in range(SCRAPES // SCRAPERS):
            together.wait()
            took = _timed_scrape(port)
            with lock:
                latencies.append(took)

    threads = [threading.Thread(target=scraper) for _ in range(SCRAPERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(latencies) != SCRAPES:
        raise RuntimeError(f"only {len(latencies)} of {SCRAPES} scrapes answered")
    return latencies


# The floor on this machine: Python's ThreadingHTTPServer answering a constant body of the
# exporter's size, scraped the same way. No exporter can be faster in this language here.
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


def _floor(body_bytes: int) -> list[float]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", CONSTANT_SERVER, str(port),
                                str(body_bytes)])
    try:
        wait_for_port(port, process)
        return _scrape_in_bursts(port)
    finally:
        stop(process)


def _scrapes() -> list[Figure]:
    with fake_cluster(20, 3, 10) as (api, kubeconfig):
        port = free_port()
        process = subprocess.Popen(
            cli("serve", "--kubeconfig", str(kubeconfig), "--no-probes", "--interval", "1h",
                "--listen", f"127.0.0.1:{port}"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, env=CHILD_ENV)
        try:
            _wait_ready(port, process)
            body_bytes = len(_get(port, "/metrics")[1])  # and a warm-up, not measured
            api.clear_requests()
            alone = [_timed_scrape(port) for _ in range(SCRAPES // 5)]
            latencies = _scrape_in_bursts(port)
            api_requests = len(api.requests)
        finally:
            stop(process)
    floor = _floor(body_bytes)
    return [
        Figure("/metrics latency p50 / p99, one scraper at a time",
               f"{_ms(median(alone))} / {_ms(percentile(alone, 0.99))}", "", None),
        Figure(f"/metrics latency p50 / p99, bursts of {SCRAPERS} concurrent scrapers",
               f"{_ms(median(latencies))} / {_ms(percentile(latencies, 0.99))}",
               f"p99 <= {_ms(MAX_P99_SECONDS)}",
               percentile(latencies, 0.99) <= MAX_P99_SECONDS),
        Figure(f"  floor: constant {body_bytes}-byte body from http.server, same bursts",
               f"{_ms(median(floor))} / {_ms(percentile(floor, 0.99))}", "", None),
        Figure(f"API requests during {SCRAPES + len(alone)} scrapes", str(api_requests), "0",
               api_requests == 0),
    ]


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


def measure(refresh_cycles: int) -> list[Figure]:
    return _scrapes() + _refresh_growth(refresh_cycles)
