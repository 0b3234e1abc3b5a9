"""A test double of the OpenShift 3.x master's OAuth endpoints, which cannot run here:
openshift/osin's HandleAuthorizeRequest (authorize.go) and urivalidate.go ported
function by function (the 3.x version), behind HTTPS on 127.0.0.1.

- GET /.well-known/oauth-authorization-server: issuer and authorization_endpoint.
- GET /oauth/authorize: an unknown client -> 400 unauthorized_client; a redirect_uri none of the
  client's redirectURIs validates -> 400 invalid_request ("urls don't validate"); else, with no
  session, 302 to /login?then=... as the master's login handler does.

It parses URLs with Python's urllib (not Go's net/url): use it with well-formed URLs.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, unquote_plus, urlsplit

from tests.certs import issue


class UriValidationError(ValueError):
    pass


def resolve_path(base: str, ref: str) -> str:
    """Go net/url resolvePath, line by line."""
    if ref == "":
        full = base
    elif ref[0] != "/":
        full = base[:base.rfind("/") + 1] + ref
    else:
        full = ref
    if full == "":
        return ""
    dst, first, remaining, found, elem = "/", True, full, True, ""
    while found:
        elem, found, remaining = (remaining.partition("/")[0], "/" in remaining,
                                  remaining.partition("/")[2])
        if elem == ".":
            first = False
            continue
        if elem == "..":
            text = dst[1:]
            index = text.rfind("/")
            dst = "/"
            if index == -1:
                first = True
            else:
                dst += text[:index]
        else:
            if not first:
                dst += "/"
            dst += elem
            first = False
    if elem in (".", ".."):
        dst += "/"
    return dst[1:] if len(dst) > 1 and dst[1] == "/" else dst


def parse_urls(base_url: str, redirect_url: str) -> tuple[str, str]:
    """osin ParseUrls: the two paths to compare, after the fragment, scheme and host rules."""
    base, redirect = urlsplit(base_url), urlsplit(redirect_url)
    if base.fragment or redirect.fragment:
        raise UriValidationError("url must not include fragment.")
    if redirect.scheme != base.scheme:
        raise UriValidationError("scheme mismatch")
    if redirect.netloc.rpartition("@")[2] != base.netloc.rpartition("@")[2]:
        raise UriValidationError("host mismatch")
    # Go compares url.Path, the percent-decoded path
    return resolve_path("/", unquote(base.path)), resolve_path("/", unquote(redirect.path))


def validate_uri(base_uri: str, redirect_uri: str) -> str:
    if base_uri == "" or redirect_uri == "":
        raise ValueError("urls cannot be blank.")
    base_path, redirect_path = parse_urls(base_uri, redirect_uri)
    if base_path == redirect_path:
        return redirect_uri
    if not redirect_path.startswith(base_path.rstrip("/") + "/"):
        raise UriValidationError("path prefix doesn't match")
    return redirect_uri


def validate_uri_list(base_uris: list[str], redirect_uri: str) -> str:
    for base in base_uris:
        try:
            return validate_uri(base, redirect_uri)
        except UriValidationError:
            continue
    raise UriValidationError("urls don't validate")


@dataclass
class OAuthDouble:
    url: str
    issuer: str
    clients: dict[str, list[str]] = field(default_factory=dict)  # client id -> redirectURIs
    requests: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    double: OAuthDouble

    def do_GET(self) -> None:
        self.double.requests.append(self.path)
        path, _, query = self.path.partition("?")
        if path == "/.well-known/oauth-authorization-server":
            self._json(200, {"issuer": self.double.issuer,
                             "authorization_endpoint": f"{self.double.url}/oauth/authorize"})
        elif path == "/oauth/authorize":
            self._authorize(parse_qs(query))
        else:
            self._json(404, {"error": "not found"})

    def _authorize(self, form: dict[str, list[str]]) -> None:
        """osin HandleAuthorizeRequest (its ErrorStatusCode set to 400 as OpenShift does)."""
        redirect_uri = unquote_plus(form.get("redirect_uri", [""])[0])  # url.QueryUnescape
        registered = self.double.clients.get(form.get("client_id", [""])[0])
        if not registered:
            return self._json(400, {"error": "unauthorized_client",
                                    "error_description": "The client is not authorized to "
                                    "request a token using this method."})
        if redirect_uri == "" and len(registered) == 1:
            redirect_uri = registered[0]
        try:
            validate_uri_list(registered, redirect_uri)
        except ValueError:
            return self._json(400, {"error": "invalid_request", "error_description":
                                    "The request is missing a required parameter, includes an "
                                    "invalid parameter value, includes a parameter more than "
                                    "once, or is otherwise malformed."})
        self.send_response(302)
        self.send_header("Location", "/login?then=" + quote(self.path, safe=""))
        self.end_headers()

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def oauth_server(folder: Path, issuer: str | None = None,
                 clients: dict[str, list[str]] | None = None) -> Iterator[OAuthDouble]:
    """The double on https://127.0.0.1:<free port>, with a certificate made for the test."""
    made = issue("127.0.0.1", hosts=("localhost",))
    (folder / "master.crt").write_bytes(made.cert_pem())
    (folder / "master.key").write_bytes(made.key_pem())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "master.crt", folder / "master.key")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    url = f"https://127.0.0.1:{httpd.server_address[1]}"
    double = OAuthDouble(url, issuer or url, dict(clients or {}))
    httpd.RequestHandlerClass = type("Handler", (_Handler,), {"double": double})
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield double
    finally:
        httpd.shutdown()
        httpd.server_close()
