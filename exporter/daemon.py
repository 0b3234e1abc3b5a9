"""The `serve` process: parse its options, start the scheduler and the HTTP server, and stop
both cleanly on SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Sequence
from functools import partial

from registry_doctor.doctor import engine
from registry_doctor.doctor.check import Check
from registry_doctor.doctor.config import RunConfig
from registry_doctor.exporter import logs
from registry_doctor.exporter.scheduler import Scheduler
from registry_doctor.exporter.server import ExporterServer

log = logging.getLogger("registry_doctor.exporter")

EXIT_CANNOT_LISTEN = 71  # sysexits EX_OSERR, next to the CLI's 64 (EX_USAGE)
MIN_INTERVAL_SECONDS = 1.0
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_interval(text: str) -> float:
    """`60s`, `5m`, `1h30m`, or plain seconds (`90`) -> seconds."""
    text = text.strip()
    units = _DURATION.fullmatch(text)
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        seconds = float(text)
    elif text and units:
        hours, minutes, secs = (float(g or 0) for g in units.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise ValueError(f"--interval {text!r}: not a duration (examples: 60s, 5m, 1h30m)")
    if seconds < MIN_INTERVAL_SECONDS:
        raise ValueError(f"--interval {text!r}: must be at least {MIN_INTERVAL_SECONDS:g}s")
    return seconds


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (every IPv4 address) -> (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen {text!r}: expected HOST:PORT with a port from 1 to 65535, "
                         "e.g. 0.0.0.0:9709 or [::]:9709")
    host = host.removeprefix("[").removesuffix("]") or "0.0.0.0"
    return host, int(port)


def serve(config: RunConfig, checks: Sequence[Check], host: str, port: int,
          interval_seconds: float) -> int:
    """Run until SIGTERM/SIGINT; the process exit code."""
    logs.configure()
    scheduler = Scheduler(partial(engine.run, config, checks), interval_seconds,
                          {"registry_namespace": config.namespace,
                           "registry": config.registry_name})
    try:
        server = ExporterServer(host, port, scheduler,
                                {c.meta.id: c.meta.severity.value for c in checks})
    except OSError as error:
        log.error("cannot listen", extra={"listen": f"{host}:{port}",
                                          "error": error.strerror or str(error)})
        return EXIT_CANNOT_LISTEN
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    scheduler.start()
    log.info("serving", extra={"listen": f"{host}:{server.server_address[1]}",
                               "interval_seconds": interval_seconds,
                               "checks": [c.meta.id for c in checks],
                               "source": str(config.from_dir) if config.from_dir else "cluster"})
    stopping.wait()
    log.info("stopping")
    server.shutdown()
    server.server_close()
    # A run in progress may be a canary push or an S3 marker write: let it clean up.
    if not scheduler.stop(grace_seconds=config.timeout):
        log.warning("a run was still in progress at shutdown",
                    extra={"grace_seconds": config.timeout})
    log.info("stopped")
    return 0
