"""One bounded HTTP(S) GET for the probes.

A deadline covers connect, TLS handshake and every read; redirects are never followed (a probe
judges the answer itself); the body is capped. TLS is not verified: these probes read public
endpoints (Cockpit's /ping, OAuth metadata, the authorize endpoint), send no credentials, and
what they judge is the answer, not the transport. A certificate is judged by its own probe.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from registry_doctor.doctor.probes import ProbeError

MAX_BODY_BYTES = 64 * 1024
USER_AGENT = "registry-doctor"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def unverified_tls() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def get(url: str, timeout: float, *, headers: dict[str, str] | None = None,
        tls: ssl.SSLContext | None = None) -> Answer:
    """GET `url` within `timeout` seconds in all; ProbeError when no HTTP answer came.
    `tls`: how to verify an https server (default: not at all, see above); `headers`: extra
    request headers (a caller sending credentials passes a verifying `tls`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeError(f"cannot GET {url!r}: not an http(s) URL with a host")
    deadline = time.monotonic() + timeout
    try:
        port = parts.port
    except ValueError:
        raise ProbeError(f"cannot GET {url!r}: invalid port") from None
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, port, timeout=timeout, context=tls or unverified_tls())
    else:
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("GET", target, headers={"User-Agent": USER_AGENT,
                                                   "Accept": "application/json, */*",
                                                   **(headers or {})})
        _bound(connection, deadline)
        response = connection.getresponse()
        body = _read(response, connection, deadline)
        headers = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, headers, body)
    except (OSError, http.client.HTTPException) as error:
        raise ProbeError(f"GET {parts.scheme}://{parts.netloc}{parts.path}: "
                         f"{_reason(error, timeout)}") from None
    finally:
        connection.close()


def _bound(connection: http.client.HTTPConnection, deadline: float) -> None:
    """Give the next socket operation only the time left."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("deadline reached")
    if connection.sock is not None:
        connection.sock.settimeout(remaining)


def _read(response: http.client.HTTPResponse, connection: http.client.HTTPConnection,
          deadline: float) -> bytes:
    body = b""
    while len(body) < MAX_BODY_BYTES:
        _bound(connection, deadline)
        chunk = response.read1(min(4096, MAX_BODY_BYTES - len(body)))
        if not chunk:
            break
        body += chunk
    return body


def _reason(error: BaseException, timeout: float) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or error}"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host ({error.strerror})"
    return getattr(error, "strerror", None) or str(error) or type(error).__name__
