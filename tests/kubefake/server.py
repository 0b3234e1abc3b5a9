"""FakeKubeAPI: an HTTP fake of the Kubernetes API server for tests, on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from registry_doctor.doctor.snapshot.dump import load_dump

from . import errors
from .deployer import Deployer
from .endpoints import DeploymentRequestRecord, Endpoints, Request
from .profiles import DEFAULT, Profile, profile
from .rbac import Authorizer, bound_rules
from .responses import Response, json_response, not_found_page
from .routing import parse_target
from .store import Obj, ObjectStore

log = logging.getLogger(__name__)
HANG_SECONDS = 60.0
SHUTDOWN_POLL_SECONDS = 0.02  # how soon stop() returns
# "commit-then-500" and "commit-then-reset" apply the request, then answer 500 or drop the
# connection (a server that committed a write and failed to say so); "endless" answers 200
# with a body that never ends.
FAULTS = ("500", "503", "429", "reset", "hang", "commit-then-500", "commit-then-reset",
          "endless")
ENDLESS_CHUNK = b" " * 65536  # JSON whitespace, forever


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    verb: str  # Kubernetes verb (get, list, create, ...) or the lower-case HTTP method
    resource: str | None  # "pods", "pods/log"; None for discovery and other non-resource paths
    namespace: str | None
    name: str | None
    status: int | None = None  # None until answered, and for "reset" and "hang" faults
    user_agent: str | None = None  # the client's User-Agent header


@dataclass
class _Fault:
    kind: str  # one of FAULTS, or "latency"
    seconds: float
    resource: str | None
    verb: str | None
    times: int | None

    def matches(self, record: RequestRecord) -> bool:
        return (self.resource in (None, record.resource) and self.verb in (None, record.verb)
                and self.times != 0)


class FakeKubeAPI:
    """Serves objects over the Kubernetes REST API for `kubectl` and the `kubernetes` client.

    Everything runs as one user (`user`, "system:admin" by default) without authentication;
    `forbid` makes requests fail as RBAC would. `api_profile` names the kind of server it is
    (tests/kubefake/profiles.py): its discovery, API groups and versions, and dry-run support.
    """

    def __init__(self, objects: Iterable[Obj] = (),
                 logs: Mapping[tuple[str, str], str] | None = None,
                 user: str = "system:admin", api_profile: str = DEFAULT,
                 previous_logs: Mapping[tuple[str, str, str], str] | None = None) -> None:
        self.profile: Profile = profile(api_profile)
        self._store = ObjectStore(self.profile)
        self.unserved: list[Obj] = []  # given objects whose kind the fake does not serve
        for obj in objects:
            if self.profile.for_object(obj) is None:
                self.unserved.append(obj)
            else:
                self._store.put(obj, keep_version=True)
        self._store.ensure_namespaces({"default"} | {
            obj["metadata"]["namespace"] for obj in self._store.snapshot()
            if obj["metadata"].get("namespace")})
        self._logs = dict(logs or {})
        self._authorizer = Authorizer(user)
        self.deployment_requests: list[DeploymentRequestRecord] = []
        # Rollouts: set `deployer.outcomes` to the phases the next rollouts end in.
        self.deployer = Deployer(self._store)
        self._endpoints = Endpoints(self._store, self._logs, self._authorizer,
                                    self.deployment_requests, self.deployer,
                                    dict(previous_logs or {}))
        self._requests: list[RequestRecord] = []
        self._faults: list[_Fault] = []
        self._latency = 0.0
        self._unserved_groups: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_dump(cls, path: Path, user: str = "system:admin",
                  api_profile: str = DEFAULT) -> FakeKubeAPI:
        """A fake serving a cluster dump: its objects, `logs/<namespace>/<pod>.log` and the
        previous containers' logs."""
        dump = load_dump(Path(path))
        if dump.problems:
            raise ValueError(f"dump {path} does not load cleanly: {'; '.join(dump.problems)}")
        return cls(dump.objects, dump.logs, user, api_profile, dump.previous_logs)

    # lifecycle

    def start(self) -> FakeKubeAPI:
        if self._server is not None:
            raise RuntimeError("the fake API server is already running")
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        args=(SHUTDOWN_POLL_SECONDS,),
                                        name=f"kubefake-{self._server.server_port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release the port and every hanging or idle connection."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeKubeAPI:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake API server is not running")
        return f"http://127.0.0.1:{self._server.server_port}"

    def write_kubeconfig(self, path: Path, context: str = "fake", user: str = "system:admin",
                         namespace: str = "default") -> Path:
        """A kubeconfig for the fake: plain HTTP, no credentials."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": user, "user": {}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": user,
                                                       "namespace": namespace}}],
            "current-context": context,
            "preferences": {},
        }
        path = Path(path)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # request log

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # behaviour

    def forbid(self, resource: str, verb: str = "*", namespace: str | None = None) -> None:
        """Deny a resource ("pods", "pods/log", "*") for a verb, in one or every namespace.

        A rule for one namespace also denies requests across all namespaces, as RBAC would.
        """
        self._authorizer.forbid(resource, verb, namespace)

    def restrict_to(self, manifests: Iterable[Obj], namespace: str, account: str) -> None:
        """From now on, answer as RBAC would for service account `namespace`/`account` bound
        by the Roles, ClusterRoles and bindings among `manifests` (a rendered chart): what
        their rules do not allow, resourceNames included, is 403 Forbidden."""
        self._authorizer.restrict(f"system:serviceaccount:{namespace}:{account}",
                                  bound_rules(manifests, namespace, account))

    def inject(self, fault: str | float, resource: str | None = None, verb: str | None = None,
               times: int | None = None) -> None:
        """Fail matching requests: "500", "503", "429" (Retry-After: 1), "reset" (close
        without an answer), "hang" (no answer until stop(), at most 60 s), "commit-then-500"
        and "commit-then-reset" (do it, then fail), "endless" (a body that never ends) or a
        latency in seconds."""
        if isinstance(fault, int | float):
            entry = _Fault("latency", float(fault), resource, verb, times)
        elif fault in FAULTS:
            entry = _Fault(fault, 0.0, resource, verb, times)
        else:
            raise ValueError(f"unknown fault {fault!r}: use one of {FAULTS} or seconds")
        with self._lock:
            self._faults.append(entry)

    def set_latency(self, seconds: float) -> None:
        """Delay every request by `seconds` (0 to stop), on top of injected latencies."""
        self._latency = seconds

    # direct store access

    def objects(self, resource: str | None = None) -> list[Obj]:
        return self._store.snapshot(self.profile.by_name(resource) if resource else None)

    def get_object(self, resource: str, namespace: str | None, name: str) -> Obj | None:
        return self._store.find(self.profile.by_name(resource), namespace or "", name)

    def put_object(self, obj: Obj) -> Obj:
        """Store an object as it is (no API checks), with a new resourceVersion."""
        return self._store.put(obj)

    # serving (called by the request handler threads)

    def _serve(self, handler: _Handler) -> None:
        url = urlsplit(handler.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        target = parse_target(handler.command, url.path, query, self.profile)
        record = RequestRecord(
            handler.command, url.path, query,
            target.verb if target else handler.command.lower(),
            target.resource_name if target else None,
            (target.namespace or None) if target else None,
            (target.name or None) if target else None,
            user_agent=handler.headers.get("User-Agent"))
        with self._lock:
            self._requests.append(record)
        body = handler.read_body()
        fault = self._fault_for(record)
        if fault is not None and fault.startswith("commit-then-"):
            self._answer(Request(handler.command, url.path, query, handler.headers, body,
                                 target))
            fault = fault.removeprefix("commit-then-")
        if fault in ("reset", "hang"):
            if fault == "hang":
                self._stopping.wait(HANG_SECONDS)
            handler.drop_connection(reset=fault == "reset")
            return
        if fault == "endless":
            handler.respond_forever(self._stopping)
            return
        if fault is not None:
            response = _fault_response(fault)
        else:
            request = Request(handler.command, url.path, query, handler.headers, body, target)
            response = self._answer(request)
        record.status = response.status
        handler.respond(response)

    def unserve_group(self, group: str) -> None:
        """Stop serving an API group, as a cluster without it (plain Kubernetes has no
        apps.openshift.io): its paths answer the 404 page and /apis no longer lists it."""
        self._unserved_groups.add(group)

    def _answer(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) > 1 and parts[1] in self._unserved_groups:
            return not_found_page()
        if request.path == "/apis" and self._unserved_groups:
            document = json.loads(self._endpoints.answer(request).body)
            document["groups"] = [g for g in document["groups"]
                                  if g["name"] not in self._unserved_groups]
            return json_response(200, document)
        try:
            return self._endpoints.answer(request)
        except Exception as error:  # a bug in the fake: answer as the real server would
            log.exception("kubefake failed on %s %s", request.method, request.path)
            return json_response(500, errors.internal_error(repr(error)).status())

    def _fault_for(self, record: RequestRecord) -> str | None:
        """Apply the latencies that match and return the first other fault that does."""
        delay, chosen = self._latency, None
        with self._lock:
            for fault in self._faults:
                if not fault.matches(record) or (chosen and fault.kind != "latency"):
                    continue
                if fault.times is not None:
                    fault.times -= 1
                if fault.kind == "latency":
                    delay += fault.seconds
                else:
                    chosen = fault.kind
        if delay > 0:
            self._stopping.wait(delay)
        return chosen


def _fault_response(fault: str) -> Response:
    if fault == "429":
        # The max-in-flight and priority-and-fairness filters answer in plain text.
        return Response(429, b"Too many requests, please try again later.\n",
                        "text/plain; charset=utf-8", {"Retry-After": "1"})
    if fault == "503":
        return json_response(503, errors.ApiError(
            503, "ServiceUnavailable", "the server is currently unable to handle the request"
        ).status())
    return json_response(500, errors.internal_error("injected fault").status())


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: FakeKubeAPI) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = api
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that go away, and connections closed by stop(), are not errors."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK, 40 ms per request on a kept-alive connection. The real server
    # (Go) sets TCP_NODELAY too.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self.server.api._serve(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def respond(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-cache, private")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def respond_forever(self, stopping: threading.Event) -> None:
        """200 with a Content-Length no body reaches: bytes until the client hangs up."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(2**62))
        self.end_headers()
        with contextlib.suppress(OSError):
            while not stopping.is_set():
                self.wfile.write(ENDLESS_CHUNK)

    def drop_connection(self, reset: bool) -> None:
        """Close the connection without an answer; `reset` sends a TCP RST."""
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are recorded in FakeKubeAPI.requests, not logged."""
