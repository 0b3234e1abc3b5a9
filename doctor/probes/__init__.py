"""Live probes: the only code that talks to S3, TLS endpoints, OAuth servers and sockets.

A probe is a function `run(snapshot, config, timeout) -> Result` in a module of this package,
registered below by id; `Result` is its frozen dataclass in doctor/probe_results.py (or
doctor/volumestats.py), which checks import in place of this package. It must honour
`timeout` itself (connect and read timeouts on every socket); the engine also stops waiting for
it at the deadline. It raises `ProbeError` when it cannot run at all; what it observed
(including failures of the thing probed) is its result.
Modules are imported only when a selected check uses the probe, keeping start-up light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.snapshot import Snapshot

ProbeFunction = Callable[[Snapshot, RunConfig, float], object]

# probe id -> module in this package defining `run`
PROBES: dict[str, str] = {
    "canary": "canary",
    # the registry console's (checks cockpit-port-conflict, cert-chain-order, oauth-redirect)
    "console-port": "console_port",
    "console-cert-dir": "console_cert_dir",
    "console-route-tls": "console_route_tls",
    "console-oauth": "console_oauth",
    "console-oauth-authorize": "console_oauth_authorize",
    # the registry's own TLS (check registry-tls)
    "registry-tls": "registry_tls",
    "s3": "s3",
    "volume-stats": "volume_stats",  # storage-capacity
}

# Probes that run only when a RunConfig flag is set (probe id -> flag). A local probe reads
# this host (its /proc, a folder): its flag is an explicit request, so it runs against a dump
# too, unless --no-probes. The others run when live probes are on (default against a cluster).
PROBE_FLAGS: dict[str, str] = {"console-port": "node_local", "console-cert-dir": "cert_dir",
                               "console-oauth-authorize": "oauth_probe"}
LOCAL_PROBES: set[str] = {"console-port", "console-cert-dir"}
# volume-stats reads only what the admin named: the --prometheus-url, or the dump's saved query
# answer (doctor/probes/volume_stats.py). So it runs against a dump too, unless --no-probes.
LOCAL_PROBES.add("volume-stats")


# API reads a probe makes through the client layer besides the snapshot's collections, so the
# chart grants them (doctor/rbac.py): probe id -> (api group, resource, verb, the RunConfig flag
# without which it makes none), all on cluster-scoped resources.
PROBE_API_READS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "volume-stats": (("", "nodes/proxy", "get", "node_stats"),),
}


class ProbeError(Exception):
    pass


def selected_probes(probe_ids: Iterable[str], config: RunConfig) -> list[str]:
    """The probes of `probe_ids` this run may start."""
    def enabled(probe_id: str) -> bool:
        flag = PROBE_FLAGS.get(probe_id)
        if flag is not None and not getattr(config, flag):
            return False
        return config.probes is not False if probe_id in LOCAL_PROBES else config.probes_enabled

    return sorted(p for p in set(probe_ids) if p in PROBES and enabled(p))


def probe_function(probe_id: str) -> ProbeFunction:
    return importlib.import_module(f"{__name__}.{PROBES[probe_id]}").run
