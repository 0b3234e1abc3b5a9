"""Live probe: the certificate chain the console route serves, at the first host a router
admitted it with (doctor.routes: status.ingress, not spec.host).

Through a passthrough route the router hands the handshake to Cockpit in the console pod: what
comes back is exactly the chain Cockpit made of its certificate file; through edge or reencrypt
it is the router's. Nothing is verified here; the chain is judged by the cert-chain-order check
like the files it came from.
"""

from __future__ import annotations

import socket
import ssl
import time

from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.console import route_host, route_to
from registry_doctor.doctor.probe_results import ServedChain
from registry_doctor.doctor.probes import ProbeError
from registry_doctor.doctor.probes.http_get import unverified_tls
from registry_doctor.doctor.snapshot import Snapshot

HTTPS_PORT = 443


def run(snapshot: Snapshot, config: RunConfig, timeout: float) -> ServedChain:
    host = route_host(route_to(snapshot, config.console_name))
    if host is None:
        raise ProbeError(f"no host a router serves route {config.console_name} at")
    return served_chain(host, HTTPS_PORT, timeout)


def served_chain(host: str, port: int, timeout: float,
                 address: str | None = None) -> ServedChain:
    """Handshake with `host` (SNI) at `address` (default: `host`) and return the DER chain,
    or the handshake failure as observed data."""
    deadline = time.monotonic() + timeout
    try:
        raw = socket.create_connection((address or host, port), timeout=timeout)
    except OSError as error:
        raise ProbeError(f"cannot connect to {host}:{port}: "
                         f"{getattr(error, 'strerror', None) or error}") from None
    try:
        raw.settimeout(max(deadline - time.monotonic(), 0.001))
        with unverified_tls().wrap_socket(raw, server_hostname=host) as tls:
            return ServedChain(host, port, tuple(_peer_chain(tls)), tls.version())
    except ssl.SSLError as error:
        return ServedChain(host, port, handshake_error=str(error.reason or error))
    except OSError as error:
        raise ProbeError(f"TLS handshake with {host}:{port} did not finish: "
                         f"{getattr(error, 'strerror', None) or error}") from None
    finally:
        raw.close()


def _peer_chain(tls: ssl.SSLSocket) -> list[bytes]:
    """Every certificate the server sent, in its order. Python < 3.13 has the call only on the
    internal object; without it, the server certificate alone."""
    chain_of = getattr(tls, "get_unverified_chain", None) or \
        getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)
    if chain_of is not None:
        return [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)
                for c in chain_of() or []]
    leaf = tls.getpeercert(binary_form=True)
    return [leaf] if leaf else []
