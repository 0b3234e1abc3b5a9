"""The real Cockpit from Debian for tests (Debian 12's cockpit-ws 287): cockpit-ws on a free
loopback port with its own certificate folder, `cockpit-certificate-ensure --check`, and a
handshake made the way a browser makes it.

XDG_CONFIG_DIRS=<root> makes both read <root>/cockpit/ws-certs.d. Only ever `--check`: without
it cockpit-certificate-ensure creates a certificate in /etc/cockpit/ws-certs.d whatever
XDG_CONFIG_DIRS says.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.tools import free_port, missing, server

COCKPIT_WS = Path("/usr/lib/cockpit/cockpit-ws")
ENSURE = Path("/usr/lib/cockpit/cockpit-certificate-ensure")


def require_cockpit() -> None:
    for tool in (COCKPIT_WS, ENSURE):
        if not os.access(tool, os.X_OK):
            missing(f"{tool} (Debian package cockpit-ws)")


def cert_folder(root: Path, files: dict[str, bytes]) -> Path:
    """<root>/cockpit/ws-certs.d holding `files`; returns that folder."""
    folder = root / "cockpit" / "ws-certs.d"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def cockpit_env(root: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CONFIG_DIRS": str(root), "RUNTIME_DIRECTORY": str(root / "run")}


def ensure_check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ENSURE), "--check"], env=cockpit_env(root), capture_output=True,
                          text=True, timeout=60, check=False)


@contextmanager
def cockpit_ws(root: Path, debug: bool = False) -> Iterator[tuple[subprocess.Popen, int]]:
    """cockpit-ws serving <root>'s certificates on 127.0.0.1, its output in
    <root>/cockpit-ws.log (`debug`: with G_MESSAGES_DEBUG=cockpit-ws, which Cockpit 287 needs
    to log the certificate it loaded); RuntimeError (with its output) when it exits instead of
    listening."""
    port = free_port()
    env = {**cockpit_env(root), **({"G_MESSAGES_DEBUG": "cockpit-ws"} if debug else {})}
    with server([str(COCKPIT_WS), "-p", str(port), "-a", "127.0.0.1"], port,
                root / "cockpit-ws.log", env=env, ready_timeout=20) as process:
        yield process, port


@dataclass(frozen=True)
class Handshake:
    error: str | None  # why a browser would refuse the server; None: it accepts it
    served: int  # how many certificates the server sends (0: no TLS session at all)


def browser_handshake(port: int, host: str, trusted: bytes, timeout: float = 10) -> Handshake:
    """A TLS handshake as a browser makes it: verified against `trusted` (PEM), for `host`,
    subjectAltName only (browsers ignore the CN); and what the server sends, unverified."""
    browser = ssl.create_default_context(cadata=trusted.decode())
    browser.hostname_checks_common_name = False
    anyone = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anyone.check_hostname, anyone.verify_mode = False, ssl.CERT_NONE
    results = []
    for context in (browser, anyone):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw, \
                    context.wrap_socket(raw, server_hostname=host) as tls:
                results.append((None, len(tls._sslobj.get_unverified_chain() or [])))
        except ssl.SSLError as error:
            results.append((str(error), 0))
    return Handshake(results[0][0], results[1][1])
