"""The push/pull canary: prove through the registry HTTP API v2 that the registry stores and
serves an image.

Through every target (the registry Service, its Route, each ready endpoint of the Service, or
one URL) it pushes its own small image (a random one-file layer, a config, an OCI manifest;
Docker schema 2 when the registry refuses OCI, as OpenShift before 4.7 does), reads it back
several times on fresh connections and verifies every digest, then reads every other target's
image through each target (replicas that do not share storage show here, deterministically),
and deletes what it created. Each phase is timed per target. What it observes, failures of the
registry included, is data; `ProbeError` only when there is nothing to probe.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import Resource
from registry_doctor.doctor.probe_results import (
    CanaryFailure,
    CanaryRun,
    CanaryTarget,
    CrossRead,
    PhaseOutcome,
)
from registry_doctor.doctor.probes import ProbeError
from registry_doctor.doctor.probes.registry_client import (
    Address,
    CallError,
    Credentials,
    Deadline,
    Response,
    Session,
    same_host_path,
    tls_context,
)
from registry_doctor.doctor.routes import served_hosts, termination
from registry_doctor.doctor.snapshot import Snapshot
from registry_doctor.doctor.workload import as_dict, as_list

TAG = "canary"
DEFAULT_READS = 4  # fresh-connection reads of a target's own image: covers 4 round-robin backends
PHASES = ("connect", "auth", "push", "pull", "delete")
# Seconds the canary waits past its deadline for sockets to time out; within the engine's
# one second of grace for a probe.
STAGE_GRACE = 0.5

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# manifest media type -> (config media type, layer media type, short name)
MEDIA_TYPES = {
    OCI_MANIFEST: ("application/vnd.oci.image.config.v1+json",
                   "application/vnd.oci.image.layer.v1.tar", "OCI"),
    DOCKER_MANIFEST: ("application/vnd.docker.container.image.v1+json",
                      "application/vnd.docker.image.rootfs.diff.tar", "Docker schema 2"),
}
# Codes with which a registry refuses a manifest type it does not know.
MANIFEST_TYPE_REFUSED = {"MANIFEST_INVALID", "MANIFEST_UNVERIFIED", "UNSUPPORTED"}


# The registry's repository name grammar (distribution reference/regexp.go): components of
# lower-case letters and digits joined by `.`, `_`, `__` or dashes, separated by `/`.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")


def repository_problem(name: str) -> str | None:
    """Why `name` cannot be a repository, or None."""
    if REPOSITORY_NAME.fullmatch(name) and len(name) <= 255:
        return None
    return (f"{name!r} is not a valid repository name (lower-case letters and digits, "
            "joined by . _ or -, path components separated by /)")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Target:
    kind: str  # service, route, endpoint or url: the bounded `target` label of metrics
    address: Address
    name: str  # for people: "endpoint 10.128.0.12 (pod docker-registry-3-7kq2x)"
    resource: Resource | None = None  # the object behind the address
    verify_tls: bool = True
    # Try TLS first and fall back to plain HTTP when the server does not speak TLS (a Service
    # or pod address whose scheme the cluster objects do not tell).
    plain_fallback: bool = False


@dataclass(frozen=True)
class CanaryImage:
    layer: bytes
    config: bytes

    @classmethod
    def random(cls, label: str) -> CanaryImage:
        """A valid one-layer image with random content, so every push writes new data."""
        content = os.urandom(32).hex().encode() + b"\n"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            info = tarfile.TarInfo("registry-doctor-canary")
            info.size, info.mode = len(content), 0o644
            archive.addfile(info, io.BytesIO(content))
        layer = buffer.getvalue()
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        config = {
            "architecture": "amd64", "os": "linux", "created": created,
            "config": {"Labels": {"io.registry-doctor.canary": label}},
            "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]},
            "history": [{"created": created, "created_by": "registry-doctor canary"}],
        }
        return cls(layer, json.dumps(config, sort_keys=True).encode())

    def blobs(self) -> list[bytes]:
        return [self.layer, self.config]

    def manifest(self, media_type: str) -> bytes:
        config_type, layer_type, _ = MEDIA_TYPES[media_type]
        return json.dumps({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, "digest": digest_of(self.config),
                       "size": len(self.config)},
            "layers": [{"mediaType": layer_type, "digest": digest_of(self.layer),
                        "size": len(self.layer)}],
        }, indent=2).encode()


@dataclass
class Pushed:
    """An image as pushed through one target: what any target must be able to read back."""

    manifest: bytes
    media_type: str
    blobs: list[bytes]

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)


def refusal(response: Response, action: str) -> CallError:
    """A registry's refusal of a push request, classified."""
    said = response.errors()
    text = f"{action}: HTTP {response.status} {said}".rstrip()
    if response.status in (401, 403):
        return CallError("auth", f"{action} denied: HTTP {response.status} {said}".rstrip(), said)
    if response.status == 405:
        allowed = response.headers.get("allow", "")
        return CallError("read-only", f"{action}: HTTP 405, the registry accepts only "
                         f"{allowed or 'reads'}", said)
    if response.status >= 500:
        return CallError("server-error", text, said)
    return CallError("rejected", text, said)


@dataclass(eq=False)  # compared and hashed by identity: one per target
class TargetRun:
    """One target's canary: its session, what it pushed, and what each phase observed."""

    target: Target
    session: Session
    repository: str
    reads: int
    image: CanaryImage
    phases: dict[str, PhaseOutcome] = field(default_factory=dict)
    failure: CanaryFailure | None = None
    current: str | None = None
    pushed: Pushed | None = None
    uploaded: list[str] = field(default_factory=list)  # blob digests to delete
    delete: str = "not attempted"
    notes: list[str] = field(default_factory=list)
    fetches: dict[str, list[bool]] = field(default_factory=dict)  # digest -> served each time

    # -- phases --------------------------------------------------------------------------

    def push_and_read(self) -> None:
        for phase, action in (("connect", self._connect), ("auth", self._authenticate),
                              ("push", self._push), ("pull", self._read_own)):
            if not self._step(phase, action):
                return

    def read_others(self, others: list[TargetRun]) -> list[CrossRead]:
        """Every other target's image read through this one, once, on fresh connections."""
        if self.failure is not None:
            return []
        results = []
        for other in others:
            if other is self or other.pushed is None:
                continue
            try:
                self.read(other.pushed)
                results.append(CrossRead(other.target.name, self.target.name, ok=True))
            except CallError as error:
                results.append(CrossRead(other.target.name, self.target.name, ok=False,
                                         kind=error.kind, message=str(error)))
        return results

    def remove(self) -> None:
        if self.pushed is not None or self.uploaded:
            self._step("delete", self._delete, record_failure=False)

    def _step(self, phase: str, action: Callable[[], None], record_failure: bool = True) -> bool:
        self.current = phase
        started = time.monotonic()
        ok = True
        try:
            action()
        except CallError as error:
            ok = False
            if record_failure:
                self.fail(phase, error)
        self.phases[phase] = PhaseOutcome(ok, round(time.monotonic() - started, 4))
        self.current = None
        return ok

    def fail(self, phase: str, error: CallError) -> None:
        if self.failure is None:
            self.failure = CanaryFailure(error.kind, phase, str(error), error.evidence)

    def _connect(self) -> None:
        try:
            self.session.connect()
        except CallError as error:
            if not (self.target.plain_fallback and error.kind == "tls"):
                raise
            self.session.address = Address("http", self.session.address.host,
                                           self.session.address.port)
            self.session.connect()

    def _authenticate(self) -> None:
        response = self.session.request("GET", "/v2/")
        if response.status == 200:
            return
        if response.status == 401:
            offered = self.session.auth_method if self.session.authorization else (
                "anonymous access" if not self.session.credentials.present
                else "credentials for a scheme it did not ask for")
            raise CallError("auth", f"GET /v2/: HTTP 401 with {offered}: "
                            f"{response.errors()}".rstrip(": "), response.errors())
        if response.status == 404:
            raise CallError("protocol", "GET /v2/: HTTP 404, no registry API v2 here")
        raise refusal(response, "GET /v2/")

    def _push(self) -> None:
        for blob in self.image.blobs():
            self._upload(blob)
        manifest_type = OCI_MANIFEST
        manifest = self.image.manifest(manifest_type)
        response = self._put_manifest(manifest, manifest_type)
        if response.status == 400 and response.codes() & MANIFEST_TYPE_REFUSED:
            self.notes.append(f"{self.target.name} refused an OCI manifest "
                              f"({response.errors()}); pushed Docker schema 2 instead")
            manifest_type = DOCKER_MANIFEST
            manifest = self.image.manifest(manifest_type)
            response = self._put_manifest(manifest, manifest_type)
        if response.status not in (200, 201):
            raise refusal(response, f"PUT manifest {self.repository}:{TAG}")
        self.pushed = Pushed(manifest, manifest_type, self.image.blobs())
        answered = response.headers.get("docker-content-digest")
        if answered and answered != self.pushed.digest:
            raise CallError("digest-mismatch", f"the registry stored the manifest as {answered}, "
                            f"its content digest is {self.pushed.digest}")

    def _put_manifest(self, manifest: bytes, media_type: str) -> Response:
        return self.session.request("PUT", f"/v2/{self.repository}/manifests/{TAG}", manifest,
                                    {"Content-Type": media_type})

    def _upload(self, blob: bytes) -> None:
        """POST a session, PATCH the data, PUT with the digest: as docker and skopeo do."""
        digest = digest_of(blob)
        start = self.session.request("POST", f"/v2/{self.repository}/blobs/uploads/")
        if start.status != 202 or not start.headers.get("location"):
            raise refusal(start, "start blob upload")
        patched = self.session.request("PATCH", same_host_path(start.headers["location"]), blob,
                                       {"Content-Type": "application/octet-stream"})
        if patched.status != 202 or not patched.headers.get("location"):
            raise refusal(patched, f"upload blob {digest}")
        location = same_host_path(patched.headers["location"])
        joiner = "&" if "?" in location else "?"
        done = self.session.request("PUT", f"{location}{joiner}digest={digest}")
        if done.status != 201:
            raise refusal(done, f"commit blob {digest}")
        self.uploaded.append(digest)

    def _read_own(self) -> None:
        """`reads` pulls of the image just pushed. An object served on one connection and
        missing or different on another means backends that do not share storage."""
        assert self.pushed is not None
        self.fetches.clear()
        failures: list[CallError] = []
        for _ in range(self.reads):
            try:
                self.read(self.pushed)
            except CallError as error:
                if error.kind in ("timeout", "unreachable"):
                    raise
                failures.append(error)
        if not failures:
            return
        first = failures[0]
        if not any(True in outcomes and False in outcomes for outcomes in self.fetches.values()):
            raise first
        raise CallError("inconsistent", f"{len(failures)} of {self.reads} reads on fresh "
                        "connections failed while the same objects were served on other "
                        f"connections: {first}", first.evidence)

    def read(self, image: Pushed) -> None:
        """Pull `image` on fresh connections and verify every digest."""
        accept = f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"
        path = f"/v2/{self.repository}/manifests/{image.digest}"
        self._fetch(path, image.digest, {"Accept": accept}, "manifest")
        for blob in image.blobs:
            digest = digest_of(blob)
            self._fetch(f"/v2/{self.repository}/blobs/{digest}", digest, {}, "blob")

    def _fetch(self, path: str, digest: str, headers: dict[str, str], what: str) -> None:
        response = self.session.request("GET", path, headers=headers, fresh=True)
        served = response.status == 200 and digest_of(response.body) == digest
        self.fetches.setdefault(digest, []).append(served)
        if response.status == 404:
            raise CallError("missing", f"{what} {digest} unknown after its push: HTTP 404 "
                            f"{response.errors()}".rstrip(), response.errors())
        if response.status != 200:
            raise refusal(response, f"GET {what} {digest}")
        if digest_of(response.body) != digest:
            raise CallError("digest-mismatch", f"{what} {digest} read back with digest "
                            f"{digest_of(response.body)} ({len(response.body)} bytes)")

    def _delete(self) -> None:
        """The manifest, then the blobs; a registry without delete says so at the first."""
        paths = ([f"/v2/{self.repository}/manifests/{self.pushed.digest}"] if self.pushed
                 else []) + [f"/v2/{self.repository}/blobs/{d}" for d in self.uploaded]
        for path in paths:
            try:
                response = self.session.request("DELETE", path)
            except CallError as error:
                self.delete = f"failed: DELETE {path}: {error}"
                raise
            if response.status in (200, 202):
                continue
            if response.status == 405 or "UNSUPPORTED" in response.codes():
                self.delete = "disabled"
            elif response.status in (401, 403):
                self.delete = f"denied: HTTP {response.status} {response.errors()}".rstrip()
            else:
                self.delete = f"failed: DELETE {path}: HTTP {response.status} " \
                              f"{response.errors()}".rstrip()
            raise CallError("delete", self.delete)
        self.delete = "deleted"

    # -- report --------------------------------------------------------------------------

    def timed_out(self) -> None:
        """Called when the deadline passed with this target still at work."""
        phase = self.current or "delete"
        self.phases.setdefault(phase, PhaseOutcome(False, None))
        if phase == "delete":
            self.delete = "not finished before the deadline"
        else:
            self.fail(phase, CallError("timeout", f"{self.target.name} did not finish the "
                                       f"{phase} phase before the canary's deadline"))

    def outcome(self) -> CanaryTarget:
        return CanaryTarget(
            self.target.kind, self.target.name, str(self.session.address),
            self.target.resource, self.session.auth_method,
            MEDIA_TYPES[self.pushed.media_type][2] if self.pushed else None,
            self.pushed.digest if self.pushed else None,
            {p: self.phases[p] for p in PHASES if p in self.phases},
            self.failure, self.delete, tuple(self.notes))


def run_canary(targets: list[Target], credentials: Credentials, repository: str,
               timeout: float, reads: int = DEFAULT_READS) -> CanaryRun:
    """Push, read back, cross-read and delete through every target within `timeout`."""
    deadline = Deadline(timeout)
    scope = f"repository:{repository}:pull,push,delete"
    contexts = {verify: tls_context(verify) for verify in {t.verify_tls for t in targets}}
    runs = [TargetRun(t, Session(t.address, contexts[t.verify_tls], credentials, scope, deadline),
                      repository, reads, CanaryImage.random(t.kind)) for t in targets]
    # Not a `with` block: leaving one waits for every thread, even one stuck past the deadline.
    pool = ThreadPoolExecutor(max(len(runs), 1), thread_name_prefix="canary")
    limit = deadline.at + STAGE_GRACE  # the last moment any stage waits for
    try:
        _stage(pool, limit, {run: run.push_and_read for run in runs})
        cross = _stage(pool, limit, {run: lambda r=run: r.read_others(runs) for run in runs})
        _stage(pool, limit, {run: run.remove for run in runs})
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for run in runs:
            run.session.close()
    found = tuple(run.outcome() for run in runs)
    return CanaryRun(repository, TAG, reads, found,
                     tuple(c for results in cross for c in results), phase_summary(found))


def _stage(pool: ThreadPoolExecutor, limit: float,
           work: dict[TargetRun, Callable[[], Any]]) -> list[Any]:
    futures = {pool.submit(action): run for run, action in work.items()}
    done, late = wait(futures, timeout=max(limit - time.monotonic(), 0))
    for future in late:
        futures[future].timed_out()
    return [f.result() for f in futures if f in done and f.result() is not None]


def phase_summary(targets: Iterable[CanaryTarget]) -> dict[str, dict[str, PhaseOutcome]]:
    """Per target kind and phase: ok when every target of that kind succeeded, and the
    slowest duration. Bounded keys, ready to become metric labels (`target`, `phase`)."""
    summary: dict[str, dict[str, PhaseOutcome]] = {}
    for target in targets:
        for phase, observed in target.phases.items():
            slots = summary.setdefault(target.kind, {})
            slot = slots.get(phase, PhaseOutcome(True, 0.0))
            slots[phase] = PhaseOutcome(
                slot.ok and observed.ok,
                slot.seconds if observed.seconds is None else max(slot.seconds or 0.0,
                                                                  observed.seconds))
    return summary


# -- in a cluster -----------------------------------------------------------------------------

def run(snapshot: Snapshot, config: RunConfig, timeout: float) -> CanaryRun:
    targets, skipped = cluster_targets(snapshot, config)
    credentials, auth_source = _cluster_credentials(config)
    canary = run_canary(targets, credentials, config.canary_repository, timeout)
    return replace(canary, in_cluster="KUBERNETES_SERVICE_HOST" in os.environ,
                   credentials=auth_source, skipped=tuple(skipped))


def _cluster_credentials(config: RunConfig) -> tuple[Credentials, str]:
    """The token the tool uses for the API server (its service account in a pod, the
    `oc login` token of a kubeconfig): the OpenShift registry accepts it."""
    if not config.live:
        return Credentials(), "none (no cluster credentials when reading a dump)"
    from registry_doctor.doctor.kube import KubeError, bearer_token

    try:
        token = bearer_token(config.kubeconfig, config.context)
    except KubeError as error:
        return Credentials(), f"none ({error})"
    if token is None:
        return Credentials(), "none (the cluster credentials are not a bearer token)"
    return Credentials.token(token), "the cluster credentials' bearer token"


def cluster_targets(snapshot: Snapshot, config: RunConfig) -> tuple[list[Target], list[str]]:
    """The Service, its Routes and each ready endpoint; and what was not probed, with why."""
    installation = snapshot.installation()
    service, name, namespace = (installation.service, installation.service_name,
                                installation.namespace)
    if service is None:
        raise ProbeError(f"service {name} not found in namespace {namespace}: "
                         "nothing to push to")
    spec = as_dict(service.get("spec"))
    port = registry_service_port(spec)
    if port is None:
        raise ProbeError(f"service {namespace}/{name} has no TCP port in spec.ports")
    targets, skipped = [], []
    cluster_ip = spec.get("clusterIP")
    if isinstance(cluster_ip, str) and cluster_ip not in ("", "None"):
        targets.append(Target("service", Address("https", cluster_ip, port["port"]),
                              f"service {name}", Resource("Service", name, namespace),
                              verify_tls=False, plain_fallback=True))
    else:
        skipped.append(f"service {name} has no cluster IP (headless): only its endpoints probed")
    targets += _route_targets(installation.routes(), namespace)
    endpoint_targets, not_ready = _endpoint_targets(installation.endpoints(), port, namespace)
    return targets + endpoint_targets, skipped + not_ready


def registry_service_port(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The Service port of the registry: the one sent to 5000, else the first TCP port."""
    ports = [as_dict(p) for p in as_list(spec.get("ports"))
             if isinstance(as_dict(p).get("port"), int)
             and as_dict(p).get("protocol", "TCP") == "TCP"]
    return next((p for p in ports if p.get("targetPort") in (5000, "5000")),
                ports[0] if ports else None)


def _route_targets(routes: list[dict[str, Any]], namespace: str) -> list[Target]:
    targets = []
    for route in routes:
        tls = termination(route) is not None
        route_name = route["metadata"]["name"]
        # The hosts the routers admitted it at: spec.host may not be served at all.
        targets += [Target("route", Address("https" if tls else "http", host, 443 if tls else 80),
                           f"route {route_name} ({host})", Resource("Route", route_name, namespace),
                           verify_tls=False) for host in served_hosts(route)]
    return targets


def _endpoint_targets(endpoints: dict[str, Any] | None, service_port: dict[str, Any],
                      namespace: str) -> tuple[list[Target], list[str]]:
    targets, not_ready = [], []
    for subset in as_list(as_dict(endpoints).get("subsets")):
        subset = as_dict(subset)
        ports = [as_dict(p) for p in as_list(subset.get("ports"))
                 if isinstance(as_dict(p).get("port"), int)]
        port = next((p for p in ports if p.get("name") == service_port.get("name")),
                    ports[0] if ports else None)
        if port is None:
            continue
        for address in as_list(subset.get("addresses")):
            ip, pod = _address(address)
            if ip:
                targets.append(Target(
                    "endpoint", Address("https", ip, port["port"]),
                    f"endpoint {ip}" + (f" (pod {pod})" if pod else ""),
                    Resource("Pod", pod, namespace) if pod else None,
                    verify_tls=False, plain_fallback=True))
        for address in as_list(subset.get("notReadyAddresses")):
            ip, pod = _address(address)
            not_ready.append(f"endpoint {ip}" + (f" (pod {pod})" if pod else "")
                             + " is not ready: not probed")
    return targets, not_ready


def _address(address: Any) -> tuple[str | None, str | None]:
    address = as_dict(address)
    ip = address.get("ip")
    target_ref = as_dict(address.get("targetRef"))
    pod = target_ref.get("name") if target_ref.get("kind", "Pod") == "Pod" else None
    return (ip if isinstance(ip, str) and ip else None,
            pod if isinstance(pod, str) and pod else None)

