"""Real registries for the canary tests: Debian's `docker-registry` on loopback with a chosen
storage, moto's S3 server, a bcrypt htpasswd file, a TLS certificate, a token service that
signs the JWTs the real registry verifies, and a round-robin TCP balancer (the Service in
front of replicas).

Servers bind 127.0.0.0/8 on free ports and are stopped by PID or by closing their sockets.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import itertools
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.tools import find_tool, free_port, missing, server

HTTP_SECRET = "canary-test-http-secret"  # one secret for all replicas, as the 3.x DC sets


@dataclass
class Registry:
    url: str
    host: str
    port: int
    log: Path
    process: subprocess.Popen

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def filesystem(root: Path, delete: bool = True) -> dict[str, Any]:
    return {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": delete}}


def registry_env() -> dict[str, str]:
    """Debian's docker-registry 2.8.2 with S3 panics (LoadCustomCABundleError) when
    AWS_CA_BUNDLE is set."""
    return {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}


@contextlib.contextmanager
def registry(folder: Path, storage: dict[str, Any], host: str = "127.0.0.1",
             port: int | None = None, **extra: Any) -> Iterator[Registry]:
    """`docker-registry serve` with `storage` and extra top-level config (auth, http.tls via
    `tls=`); no debug server."""
    binary = find_tool("docker-registry")
    port = port or free_port()
    http: dict[str, Any] = {"addr": f"{host}:{port}", "secret": HTTP_SECRET}
    tls = extra.pop("tls", None)
    if tls:
        http["tls"] = tls
    config = {"version": 0.1, "log": {"level": "info", "formatter": "text",
                                      "accesslog": {"disabled": True}},
              "storage": storage, "http": http, **extra}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yml"
    path.write_text(yaml.safe_dump(config))
    log = folder / "registry.log"
    with server([binary, "serve", str(path)], port, log, env=registry_env(),
                host=host) as process:
        scheme = "https" if tls else "http"
        yield Registry(f"{scheme}://{host}:{port}", host, port, log, process)


def port_free_on(*hosts: str) -> int:
    """A port free on every one of `hosts` (replicas on one port, different loopback IPs)."""
    for _ in range(50):
        port = free_port()
        try:
            for host in hosts:
                with socket.socket() as sock:
                    sock.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no common free port on {hosts}")


# -- S3 ---------------------------------------------------------------------------------

@dataclass
class S3:
    endpoint: str
    bucket: str = "registry"
    access_key: str = "AKIACANARYTEST"
    secret_key: str = "canary-test-secret-key/0123456789"

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key)

    def storage(self) -> dict[str, Any]:
        return {"s3": {"accesskey": self.access_key, "secretkey": self.secret_key,
                       "region": "us-east-1", "regionendpoint": self.endpoint,
                       "bucket": self.bucket, "secure": False, "v4auth": True},
                "delete": {"enabled": True}}

    def remove_bucket(self) -> None:
        client = self.client()
        for item in client.list_objects_v2(Bucket=self.bucket).get("Contents", []):
            client.delete_object(Bucket=self.bucket, Key=item["Key"])
        client.delete_bucket(Bucket=self.bucket)


@contextlib.contextmanager
def moto_s3(folder: Path) -> Iterator[S3]:
    binary = find_tool("moto_server")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    with server([binary, "-H", "127.0.0.1", "-p", str(port)], port, folder / "moto.log"):
        s3 = S3(f"http://127.0.0.1:{port}")
        s3.client().create_bucket(Bucket=s3.bucket)
        yield s3


# -- credentials and certificates ---------------------------------------------------------

def bcrypt_htpasswd(path: Path, user: str, password: str) -> Path:
    """An htpasswd file the registry accepts (bcrypt only): Python's crypt module where the C
    library has bcrypt (glibc's libxcrypt), else Apache's htpasswd."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt

        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
    except (ImportError, AttributeError):
        hashed = None
    if not hashed or not hashed.startswith("$2"):
        tool = shutil.which("htpasswd")
        if tool is None:
            missing("a bcrypt hasher (Python's crypt module or htpasswd from apache2-utils)")
        line = subprocess.run([tool, "-nbB", user, password], check=True, capture_output=True,
                              text=True).stdout.strip()
        hashed = line.partition(":")[2]
    path.write_text(f"{user}:{hashed}\n")
    return path


@dataclass
class KeyPair:
    cert_pem: Path
    key_pem: Path
    key: Any
    cert_der: bytes


def self_signed(folder: Path, name: str, ip: str = "127.0.0.1") -> KeyPair:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = folder / f"{name}.crt", folder / f"{name}.key"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return KeyPair(cert_pem, key_pem, key, cert.public_bytes(serialization.Encoding.DER))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenService:
    """A registry token service (`auth.token` of distribution): checks basic credentials and
    issues RS256 JWTs granting the requested repository actions, signed with a key whose
    certificate the registry trusts. Like OpenShift's /openshift/token it takes any user name
    when `user` is None."""

    keys: KeyPair
    password: str
    user: str | None = None
    service: str = "canary-test"
    issuer: str = "canary-test-issuer"
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def registry_auth(self) -> dict[str, Any]:
        return {"token": {"realm": f"{self.url}/token", "service": self.service,
                          "issuer": self.issuer, "rootcertbundle": str(self.keys.cert_pem)}}

    def authorized(self, header: str) -> str | None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        user, _, password = base64.b64decode(value).decode().partition(":")
        if password != self.password or (self.user is not None and user != self.user):
            return None
        return user

    def issue(self, user: str, scope: str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(
            self.keys.cert_der).decode()]}
        claims = {"iss": self.issuer, "sub": user, "aud": self.service, "iat": now,
                  "nbf": now - 10, "exp": now + 300, "jti": os.urandom(8).hex(),
                  "access": [{"type": kind, "name": name, "actions": actions.split(",")}]
                  if scope else []}
        signing_input = ".".join(_b64url(json.dumps(part).encode()) for part in (header, claims))
        signature = self.keys.key.sign(signing_input.encode(), padding.PKCS1v15(),
                                       hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


@contextlib.contextmanager
def token_service(keys: KeyPair, password: str, user: str | None = None
                  ) -> Iterator[TokenService]:
    service = TokenService(keys, password, user)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            scope = query.get("scope", [""])[0]
            user = service.authorized(self.headers.get("Authorization", ""))
            service.requests.append({"scope": scope, "user": user,
                                     "service": query.get("service", [""])[0]})
            if user is None:
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps({"token": service.issue(user, scope)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- load balancing -------------------------------------------------------------------------

class RoundRobinProxy:
    """A TCP balancer: each new connection goes to the next backend, as kube-proxy does for a
    Service without session affinity (statistically) or a router with roundrobin."""

    def __init__(self, backends: list[tuple[str, int]], host: str = "127.0.0.1") -> None:
        self.backends = itertools.cycle(backends)
        self.listener = socket.create_server((host, 0))
        self.host, self.port = host, self.listener.getsockname()[1]
        self.connections = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                backend = next(self.backends)
                self.connections += 1
            try:
                upstream = socket.create_connection(backend, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()
        for sock in self._sockets:
            sock.close()


@contextlib.contextmanager
def refusing_oci(backend: Registry) -> Iterator[str]:
    """An HTTP front of a real registry that refuses OCI manifests the way registries without
    OCI support do (OpenShift before 4.7: HTTP 400 MANIFEST_INVALID), and passes everything
    else through unchanged. Yields its URL."""
    import http.client

    oci = "application/vnd.oci.image.manifest.v1+json"
    refusal = json.dumps({"errors": [{
        "code": "MANIFEST_INVALID", "message": "manifest invalid",
        "detail": "unsupported manifest media type and no default available: "
                  f"{oci}"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.command == "PUT" and "/manifests/" in self.path \
                    and self.headers.get("Content-Type") == oci:
                self._answer(400, {"Content-Type": "application/json"}, refusal)
                return
            upstream = http.client.HTTPConnection(backend.host, backend.port, timeout=10)
            try:
                upstream.request(self.command, self.path, body=body or None,
                                 headers={k: v for k, v in self.headers.items()})
                answer = upstream.getresponse()
                self._answer(answer.status, dict(answer.getheaders()), answer.read())
            finally:
                upstream.close()

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection", "date", "server"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
