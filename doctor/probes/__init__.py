"""Live probes: the only code that talks to S3, TLS endpoints, OAuth servers and sockets.

A probe is a function `run(snapshot, config, timeout) -> dict` in a module of this package,
registered below by id. It must honour `timeout` itself (connect and read timeouts on every
socket); the engine also stops waiting for it at the deadline. It raises `ProbeError` when it
cannot run at all; what it observed (including failures of the thing probed) is its data.
Modules are imported only when a selected check uses the probe, keeping start-up light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from doctor.config import RunConfig
from doctor.snapshot import Snapshot

ProbeFunction = Callable[[Snapshot, RunConfig, float], dict[str, Any]]

# probe id -> module in this package defining `run`
PROBES: dict[str, str] = {
    "canary": "canary",
    "s3": "s3",
}


class ProbeError(Exception):
    pass


def probe_function(probe_id: str) -> ProbeFunction:
    return importlib.import_module(f"{__name__}.{PROBES[probe_id]}").run
