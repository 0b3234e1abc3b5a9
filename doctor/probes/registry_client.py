"""A small client for the Docker Registry HTTP API v2, on `http.client` and `ssl` only.

Every socket gets a connect timeout and a read timeout bounded by the caller's deadline.
It answers the registry's auth challenges: basic, and the bearer token dance (`WWW-Authenticate:
Bearer realm=...`, the scheme of Docker Hub-style token services and of the OpenShift registry,
whose `/openshift/token` takes any user name and an OpenShift token as password). Transport
failures become `CallError` with a class an operator can act on: unreachable, tls, timeout,
connection. Credentials never appear in a message.
"""

from __future__ import annotations

import base64
import errno
import http.client
import json
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

CONNECT_TIMEOUT = 3.0
MAX_BODY = 1024 * 1024  # the canary's objects are tiny; error pages are cut here
MAX_REDIRECTS = 3
USER_AGENT = "registry-doctor-canary"
# The OpenShift registry ignores the user name of basic auth and reads the token as password.
TOKEN_USER = "registry-doctor"


class CallError(Exception):
    """A request could not be completed; `kind` classifies why."""

    def __init__(self, kind: str, message: str, evidence: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.evidence = evidence  # the registry's own words (error body), for signatures


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise CallError("timeout", "the canary's deadline was reached")
        return left


@dataclass(frozen=True)
class Address:
    scheme: str  # http or https
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Address:
        """`https://host:port`, `http://10.0.0.1:5000`, or a bare `host[:port]` (https)."""
        parts = urlsplit(url if "://" in url else f"https://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) registry URL")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ValueError(f"{url!r} has an invalid port") from None
        return cls(parts.scheme, parts.hostname, port)

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc}"


@dataclass(frozen=True)
class Credentials:
    """Basic credentials, or a token (sent as password with any user name)."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def token(cls, token: str) -> Credentials:
        return cls(TOKEN_USER, token)

    @property
    def present(self) -> bool:
        return bool(self.password)

    def basic_header(self) -> str:
        pair = f"{self.username or TOKEN_USER}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode()


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def errors(self) -> str:
        """The registry's error codes and messages (`{"errors": [...]}`), or the body's start.
        Details are kept except on 404, where they only repeat the name asked for."""
        try:
            listed = json.loads(self.body).get("errors")
            return "; ".join(
                f"{e.get('code')}: {e.get('message')}"
                + ("" if self.status == 404 else _detail(e.get("detail"))) for e in listed)
        except (ValueError, AttributeError, TypeError):
            return " ".join(self.body[:300].decode("utf-8", "replace").split())

    def codes(self) -> set[str]:
        try:
            return {str(e.get("code")) for e in json.loads(self.body).get("errors")}
        except (ValueError, AttributeError, TypeError):
            return set()


def _detail(detail: Any) -> str:
    if detail in (None, "", {}, []):
        return ""
    text = detail if isinstance(detail, str) else json.dumps(detail, sort_keys=True)
    return f" ({text[:300]})"


class _ReadTimeout:
    """http.client connections whose socket gets a read timeout once connected (the
    constructor's timeout then bounds only the TCP connect and the TLS handshake)."""

    read_timeout: float = CONNECT_TIMEOUT

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.sock.settimeout(self.read_timeout)  # type: ignore[attr-defined]


class _HTTPConnection(_ReadTimeout, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_ReadTimeout, http.client.HTTPSConnection):
    pass


def tls_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _open(address: Address, context: ssl.SSLContext, deadline: Deadline
          ) -> http.client.HTTPConnection:
    timeout = min(CONNECT_TIMEOUT, deadline.remaining())
    if address.scheme == "https":
        connection: http.client.HTTPConnection = _HTTPSConnection(
            address.host, address.port, timeout=timeout, context=context)
    else:
        connection = _HTTPConnection(address.host, address.port, timeout=timeout)
    connection.read_timeout = deadline.remaining()  # type: ignore[attr-defined]
    return connection


def _connect(connection: http.client.HTTPConnection, address: Address) -> None:
    try:
        connection.connect()
    except Exception as error:
        connection.close()
        raise classify(error, address) from None


def classify(error: BaseException, address: Address) -> CallError:
    """A transport exception as a `CallError` naming the address."""
    where = str(address)
    if isinstance(error, CallError):
        return error
    if isinstance(error, ssl.SSLCertVerificationError):
        return CallError("tls", f"TLS certificate of {where} not trusted: "
                         f"{error.verify_message or error.reason}")
    if isinstance(error, ssl.SSLError):
        hint = " (the server does not speak TLS there: plain HTTP?)" \
            if error.reason == "WRONG_VERSION_NUMBER" else ""
        return CallError("tls", f"TLS handshake with {where} failed: {error.reason or error}"
                         f"{hint}")
    if isinstance(error, (TimeoutError, socket.timeout)):
        return CallError("timeout", f"{where} did not answer in time")
    if isinstance(error, socket.gaierror):
        return CallError("unreachable", f"{address.host} does not resolve ({error.strerror})")
    if isinstance(error, ConnectionRefusedError):
        return CallError("unreachable", f"{where} refused the connection")
    if isinstance(error, OSError) and error.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return CallError("unreachable", f"no route to {where}")
    if isinstance(error, (ConnectionError, http.client.HTTPException)):
        return CallError("connection", f"{where} dropped the connection "
                         f"({type(error).__name__})")
    if isinstance(error, OSError):
        return CallError("unreachable", f"cannot reach {where}: {error.strerror or error}")
    raise error


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="..."` -> ("bearer", {"realm": ..., "service": ...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


class Session:
    """One client of one registry address. It keeps one connection open, as a pushing client
    does; `fresh=True` sends a request on a new connection, which a load balancer may route to
    another backend (that is how reads reveal replicas that do not share storage)."""

    def __init__(self, address: Address, context: ssl.SSLContext, credentials: Credentials,
                 scope: str, deadline: Deadline) -> None:
        self.address = address
        self.context = context
        self.credentials = credentials
        self.scope = scope  # e.g. repository:registry-doctor/canary:pull,push,delete
        self.deadline = deadline
        self.authorization: str | None = None
        self.auth_method = "anonymous"
        self._connection: http.client.HTTPConnection | None = None

    def connect(self) -> None:
        """TCP and TLS to the registry (timed apart from the requests)."""
        self.close()
        connection = _open(self.address, self.context, self.deadline)
        _connect(connection, self.address)
        self._connection = connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(self, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | None = None, fresh: bool = False) -> Response:
        """Send a request, answering one auth challenge; follow redirects of reads (a blob
        served from S3) without sending our credentials to another host."""
        response = self._send(self.address, method, path, body, headers, fresh)
        if response.status == 401 and self._answer_challenge(response):
            response = self._send(self.address, method, path, body, headers, fresh)
        target, hops = self.address, 0
        while response.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
            hops += 1
            location = response.headers.get("location", "")
            if hops > MAX_REDIRECTS or not location:
                raise CallError("protocol", f"{target} redirects {method} {path} too often "
                                "or without a Location")
            target, path = _resolve(target, location)
            response = self._send(target, method, path, b"", headers, fresh=True)
        return response

    def _send(self, address: Address, method: str, path: str, body: bytes,
              headers: dict[str, str] | None, fresh: bool) -> Response:
        own = address == self.address
        sent = {"User-Agent": USER_AGENT, "Host": address.netloc, **(headers or {})}
        if own and self.authorization:
            sent["Authorization"] = self.authorization
        if body or method in ("PUT", "POST", "PATCH"):
            sent["Content-Length"] = str(len(body))
        reuse = own and not fresh
        if reuse and self._connection is None:
            self.connect()
        connection = self._connection if reuse else _open(address, self.context, self.deadline)
        assert connection is not None
        try:
            if connection.sock is None:
                _connect(connection, address)
            connection.sock.settimeout(self.deadline.remaining())  # type: ignore[union-attr]
            connection.request(method, path, body=body or None, headers=sent)
            answer = connection.getresponse()
            data = answer.read(MAX_BODY + 1) if method != "HEAD" else b""
            complete = len(data) <= MAX_BODY and answer.isclosed()
            response = Response(answer.status,
                                {k.lower(): v for k, v in answer.getheaders()}, data[:MAX_BODY])
        except Exception as error:
            connection.close()
            if reuse:
                self._connection = None
            raise classify(error, address) from None
        if not reuse or not complete or answer.will_close:
            connection.close()
            if reuse:
                self._connection = None
        return response

    def _answer_challenge(self, response: Response) -> bool:
        """Set credentials for the challenge; False when we have nothing new to offer."""
        scheme, params = _challenge(response.headers.get("www-authenticate", ""))
        if scheme == "basic" and self.credentials.present and self.auth_method != "basic":
            self.authorization = self.credentials.basic_header()
            self.auth_method = "basic"
            return True
        if scheme == "bearer" and params.get("realm"):
            self.authorization = "Bearer " + self._fetch_token(params)
            self.auth_method = "bearer token" + (
                " (from credentials)" if self.credentials.present else " (anonymous)")
            return True
        return False

    def _fetch_token(self, challenge: dict[str, str]) -> str:
        """The token dance: GET the realm with service and scope, basic auth if we have
        credentials; the answer is `{"token": ...}` or `{"access_token": ...}`."""
        try:
            realm = Address.parse(challenge["realm"])
        except ValueError:
            raise CallError("auth", "the registry's token realm is not an http(s) URL") \
                from None
        realm_path = urlsplit(challenge["realm"]).path or "/"
        query = {"service": challenge.get("service", ""),
                 "scope": challenge.get("scope") or self.scope}
        headers = {"User-Agent": USER_AGENT, "Host": realm.netloc, "Accept": "application/json"}
        if self.credentials.present:
            headers["Authorization"] = self.credentials.basic_header()
        connection = _open(realm, self.context, self.deadline)
        try:
            _connect(connection, realm)
            connection.request("GET", f"{realm_path}?{urlencode(query)}", headers=headers)
            answer = connection.getresponse()
            status, data = answer.status, answer.read(MAX_BODY)
        except Exception as error:
            raise classify(error, realm) from None
        finally:
            connection.close()
        if status in (401, 403):
            offered = "the credentials" if self.credentials.present else "anonymous access"
            raise CallError("auth", f"the token service {realm}{realm_path} refused {offered} "
                            f"(HTTP {status})")
        try:
            answer_json = json.loads(data)
            token = answer_json.get("token") or answer_json.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if status != 200 or not isinstance(token, str) or not token:
            raise CallError("auth", f"the token service {realm}{realm_path} answered HTTP "
                            f"{status} without a token")
        return token


def _resolve(base: Address, location: str) -> tuple[Address, str]:
    """A Location header as (address, path with query); relative ones stay on `base`."""
    parts = urlsplit(location)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not parts.scheme:
        return base, path
    return Address.parse(location), path


def same_host_path(location: str) -> str:
    """The path and query of an upload Location. Only those are used, so every request of an
    upload goes to the address under test, even when the registry names another host (its
    `http.host`, a route) in Location."""
    parts = urlsplit(location)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
