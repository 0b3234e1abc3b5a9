"""What the live probes answer (doctor/probes/*.py), typed for the checks that judge it.

The probes' modules open sockets and import heavy libraries; checks may not import them
(tests/test_layers.py). So their results are defined here, in a light module both import.
The volume-stats probe's answer is in doctor/volumestats.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from registry_doctor.doctor.model import Resource
from registry_doctor.doctor.pem import PemFile


@dataclass(frozen=True)
class CertDirFiles:
    """console-cert-dir: the files of a Cockpit ws-certs.d folder on this host, parsed."""

    path: str
    files: dict[str, PemFile]  # file name -> what doctor.pem keeps of it (no key material)
    unreadable: tuple[str, ...]  # "name: why"
    writable: bool


@dataclass(frozen=True)
class ServedChain:
    """One TLS handshake (console-route-tls, and each target of registry-tls): the DER chain
    the server sent, or why the handshake failed."""

    host: str
    port: int
    chain: tuple[bytes, ...] = ()
    tls_version: str | None = None
    handshake_error: str | None = None  # set: the handshake failed, `chain` is empty


@dataclass(frozen=True)
class HandshakeTarget:
    """Where registry-tls shakes hands: the Service, or one host of a route with TLS."""

    kind: str  # service or route
    name: str  # for people: "service docker-registry", "route docker-registry (edge)"
    address: str  # what is connected to: a clusterIP, or the route host
    host: str  # the SNI name
    port: int
    registry_serves: bool  # the chain comes from the registry itself, not from a router


@dataclass(frozen=True)
class TargetChain:
    """registry-tls: what one target served, or why it could not be reached (`error`)."""

    target: HandshakeTarget
    served: ServedChain | None = None
    error: str | None = None


@dataclass(frozen=True)
class RegistryChains:
    """registry-tls: the chains the registry's Service and TLS routes serve."""

    targets: tuple[TargetChain, ...]


@dataclass(frozen=True)
class OAuthMetadata:
    """console-oauth: the OAuth server's `/.well-known/oauth-authorization-server` answer."""

    url: str
    status: int
    problem: str | None = None  # the answer is not what the endpoint should return
    issuer: str | None = None
    authorization_endpoint: str | None = None


@dataclass(frozen=True)
class AuthorizeAnswer:
    """console-oauth-authorize: how the OAuth server answered the console's authorize request."""

    endpoint: str
    client_id: str
    redirect_uri: str
    status: int
    location: str | None
    error: str | None = None  # the OAuth error code of a JSON answer
    error_description: str | None = None


@dataclass(frozen=True)
class Listener:
    """console-port: a listening TCP socket of this host (from /proc/net/tcp{,6})."""

    address: str
    port: int
    inode: int

    @property
    def connect_address(self) -> str:
        """Where to reach it from here: loopback for a wildcard bind."""
        if self.address == "0.0.0.0":
            return "127.0.0.1"
        if self.address == "::":
            return "::1"
        return self.address


@dataclass(frozen=True)
class Holder:
    """console-port: a process holding a listening socket."""

    pid: int
    command: str  # shown_command: arguments that may carry secrets are cut
    pod_uid: str | None  # the Kubernetes pod the process runs in, from its cgroup

    @property
    def program(self) -> str:
        return os.path.basename(self.command.split(" ", 1)[0])


@dataclass(frozen=True)
class PortHolders:
    """console-port: who listens on the console's port on this host."""

    port: int
    listeners: tuple[Listener, ...]
    holders: tuple[Holder, ...]
    hidden: bool  # some processes' sockets could not be read (not root)
    ping: dict[str, str]  # scheme -> "cockpit" or what answered /ping instead


@dataclass(frozen=True)
class S3Step:
    """s3: one step of reaching the bucket, and how long it took."""

    step: str  # dns, connect, tls, credentials, head-bucket, list, put, delete
    ok: bool
    seconds: float


@dataclass(frozen=True)
class S3Failure:
    """s3: the step that failed, why (a reason of checks/s3_reachability.py FAILURES, or
    no-credentials) and what was said, secrets scrubbed."""

    step: str
    reason: str
    detail: str


@dataclass(frozen=True)
class S3Reach:
    """s3: the registry's bucket reached the way the registry would, step by step."""

    endpoint: str
    bucket: str
    region: str
    prefix: str
    credentials: str  # where the keys come from, never the keys
    verify_tls: bool
    bucket_region: str | None  # what S3 says, from x-amz-bucket-region
    steps: tuple[S3Step, ...]
    failure: S3Failure | None
    write_probe: bool
    trusted_ca: str | None = None  # where the extra CA trusted for the endpoint comes from


@dataclass(frozen=True)
class PhaseOutcome:
    """canary: one phase (connect, auth, push, pull, delete) through one target."""

    ok: bool
    seconds: float | None  # None: the deadline passed during the phase


@dataclass(frozen=True)
class CanaryFailure:
    """canary: the first failure through one target."""

    kind: str  # auth, read-only, server-error, rejected, unreachable, timeout, ...
    phase: str
    message: str
    evidence: str  # the registry's own words (error body), searched for known issues


@dataclass(frozen=True)
class CanaryTarget:
    """canary: what happened through one target (the Service, a route host, an endpoint,
    a URL)."""

    kind: str  # service, route, endpoint or url: the bounded `target` label of metrics
    name: str  # for people: "endpoint 10.128.0.12 (pod docker-registry-3-7kq2x)"
    address: str
    resource: Resource | None  # the object behind the target
    auth: str  # how the canary authenticated: anonymous, basic, bearer token ...
    manifest_type: str | None
    manifest: str | None  # the pushed manifest's digest
    phases: dict[str, PhaseOutcome]  # in the order they ran
    failure: CanaryFailure | None
    delete: str  # deleted, disabled, "denied: ...", "failed: ...", not attempted, ...
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CrossRead:
    """canary: an image pushed through one target, read through another."""

    written_via: str
    read_via: str
    ok: bool
    kind: str | None = None  # why it failed, as CanaryFailure.kind
    message: str | None = None


@dataclass(frozen=True)
class CanaryRun:
    """canary: a small image pushed, read back, read across and deleted through every
    target."""

    repository: str
    tag: str
    reads: int
    targets: tuple[CanaryTarget, ...]
    cross_reads: tuple[CrossRead, ...]
    # per target kind and phase: ok when every target of that kind succeeded, the slowest time
    phases: dict[str, dict[str, PhaseOutcome]]
    in_cluster: bool = True  # False: cluster and pod addresses may be unreachable from here
    credentials: str | None = None  # whose credentials a run in a cluster pushed with
    skipped: tuple[str, ...] = ()  # addresses not tried, and why
