"""The HTTP endpoints: /metrics from the cached state, /healthz and /readyz for the kubelet.

/healthz says the process serves requests; /readyz says a first run has finished, so there is a
report to serve. Neither says anything about the registry itself: that is what /metrics is for.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder

from registry_doctor.exporter.collector import ReportCollector
from registry_doctor.exporter.scheduler import RunState, Scheduler

log = logging.getLogger("registry_doctor.exporter.http")

INDEX = b"""<html><head><title>registry-doctor</title></head><body>
<h1>registry-doctor exporter</h1>
<p><a href="/metrics">/metrics</a> <a href="/healthz">/healthz</a> <a href="/readyz">/readyz</a></p>
</body></html>
"""


# process_* and python_* change by the second; the report's families only with a new run.
MAX_BODY_AGE_SECONDS = 1.0


@dataclass(frozen=True)
class _Body:
    state: RunState
    rendered_at: float
    body: bytes


class MetricsBodies:
    """The encoded /metrics body, per content type (Prometheus asks for OpenMetrics, curl for
    the text format), rendered again only for a new run state or once MAX_BODY_AGE_SECONDS old.
    Rendering costs several times what serving does; 20 scrapers at once cause one render."""

    def __init__(self, registry: CollectorRegistry, current: Callable[[], RunState],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._registry = registry
        self._current = current
        self._clock = clock
        self._bodies: dict[str, _Body] = {}
        self._lock = threading.Lock()

    def get(self, accept: str) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept)
        with self._lock:  # one render at a time: concurrent scrapers wait for it, then share it
            state, now = self._current(), self._clock()
            cached = self._bodies.get(content_type)
            if cached is None or cached.state is not state \
                    or now - cached.rendered_at >= MAX_BODY_AGE_SECONDS:
                cached = _Body(state, now, encoder(self._registry))
                self._bodies[content_type] = cached
        return cached.body, content_type


class ExporterServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow client must not hold up shutdown
    # socketserver's default backlog of 5 drops connection bursts (SYN retried after 1-3 s).
    request_queue_size = 128

    def __init__(self, host: str, port: int, scheduler: Scheduler,
                 severities: Mapping[str, str]) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.scheduler = scheduler
        self.registry = CollectorRegistry()
        self.registry.register(ReportCollector(lambda: scheduler.state, severities))
        for standard in (ProcessCollector, PlatformCollector, GCCollector):  # process_*, python_*
            standard(registry=self.registry)
        self.bodies = MetricsBodies(self.registry, lambda: scheduler.state)
        super().__init__((host, port), _Handler)

    def handle_error(self, request: object, client_address: tuple) -> None:
        """socketserver prints these to stderr as bare text; keep the log JSON lines."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):  # the client went away, e.g. a scrape timeout
            log.debug("client disconnected", extra={"client": client_address[0]})
        else:
            log.error("request failed", exc_info=error, extra={"client": client_address[0]})


class _Handler(BaseHTTPRequestHandler):
    server: ExporterServer

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._metrics()
        elif path == "/healthz":
            self._send(200, b"ok\n")
        elif path == "/readyz":
            self._readiness()
        elif path == "/":
            self._send(200, INDEX, "text/html; charset=utf-8")
        else:
            self._send(404, b"not found: try /metrics, /healthz or /readyz\n")

    def _metrics(self) -> None:
        try:
            body, content_type = self.server.bodies.get(self.headers.get("Accept", ""))
        except Exception as error:  # a bug must not look like a scrape of an empty target
            log.error("cannot render the metrics", exc_info=error)
            self._send(500, b"cannot render the metrics (see the exporter's log)\n")
        else:
            self._send(200, body, content_type)

    def _readiness(self) -> None:
        state = self.server.scheduler.state
        if state.report is not None:
            self._send(200, f"ok: serving the report of {state.report.generated}\n".encode())
        elif state.last_run_ok is False:
            self._send(503, b"not ready: every run so far failed (see the logs)\n")
        else:
            self._send(503, b"not ready: the first run has not finished\n")

    def _send(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8"
              ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        if log.isEnabledFor(logging.DEBUG):  # called for every request: format only if shown
            log.debug(format % args, extra={"client": self.client_address[0]})
