"""The HTTP endpoints: /metrics from the cached state, /healthz and /readyz for the kubelet.

/healthz says the process serves requests; /readyz says a first run has finished, so there is a
report to serve. Neither says anything about the registry itself: that is what /metrics is for.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder

from exporter.collector import ReportCollector
from exporter.scheduler import Scheduler

log = logging.getLogger("registry_doctor.exporter.http")

INDEX = b"""<html><head><title>registry-doctor</title></head><body>
<h1>registry-doctor exporter</h1>
<p><a href="/metrics">/metrics</a> <a href="/healthz">/healthz</a> <a href="/readyz">/readyz</a></p>
</body></html>
"""


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
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        try:
            body = encoder(self.server.registry)
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
        log.debug(format % args, extra={"client": self.client_address[0]})
