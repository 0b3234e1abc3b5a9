"""s3: reach the registry's bucket the way the registry would, step by step.

DNS, TCP and TLS to the endpoint, then HeadBucket, a one-key list under `rootdirectory` and,
with --s3-write-probe, a put and delete of one small marker object, all signed with the
credentials the registry would use (its configuration, else its container's AWS_* variables;
never this host's own). Each step has its own timeout, within one deadline for the probe;
botocore makes a single attempt per call. The first failure is classified (`reason`); the
check turns it into a verdict. Secret values never enter the data.
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.probe_results import S3Failure, S3Reach, S3Step
from registry_doctor.doctor.probes import ProbeError
from registry_doctor.doctor.registryconfig import S3_DRIVERS, Credentials, RegistryConfig
from registry_doctor.doctor.registryconfig.rules import go_text
from registry_doctor.doctor.snapshot import Snapshot

MARKER_BODY = b"registry-doctor write probe: safe to delete\n"


class StepFailed(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass
class Target:
    """Where and how the registry talks to S3, from its effective configuration."""

    bucket: str
    region: str
    endpoint: str | None  # regionendpoint with a scheme; None: AWS's endpoint for the region
    secure: bool
    verify: bool  # verify the endpoint's TLS certificate
    v4auth: bool
    prefix: str  # the key prefix of rootdirectory, as the s3 driver computes it
    # CA certificates (PEM) the registry trusts beyond the system's, and where they come from
    # (OpenShift 4: spec.storage.s3.trustedCA, as the operator mounts it).
    extra_ca: str | None = None
    extra_ca_source: str = ""
    bundle: str = ""  # while probing: the CA file verifying it (the system's, plus extra_ca)

    @classmethod
    def of(cls, config: RegistryConfig) -> Target:
        params = config.params
        secure = _flag(params.get("secure"), True)
        endpoint = go_text(params.get("regionendpoint") or "") or None
        if endpoint and "://" not in endpoint:  # aws-sdk-go adds the scheme from `secure`
            endpoint = f"{'https' if secure else 'http'}://{endpoint}"
        skip = config.flavour.skipverify and _flag(params.get("skipverify"), False)
        root = go_text(params.get("rootdirectory") or "")
        trusted = config.trusted_ca
        extra = trusted.text if trusted and isinstance(trusted.text, str) else None
        return cls(bucket=go_text(params.get("bucket")), region=go_text(params.get("region")),
                   endpoint=endpoint, secure=secure, verify=not skip,
                   v4auth=_flag(params.get("v4auth"), True),
                   prefix=(root.rstrip("/") + "/").lstrip("/"), extra_ca=extra,
                   extra_ca_source=trusted.origin if extra and trusted else "")


def _flag(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if isinstance(value, str) and value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return default


def run(snapshot: Snapshot, config: RunConfig, timeout: float) -> S3Reach:
    registry = snapshot.installation().configuration
    if registry is None:
        raise ProbeError(f"no registry workload {config.registry_name} in {config.namespace}")
    if registry.unresolved:
        raise ProbeError(registry.unresolved)
    # The check judges these from the configuration before it reads the probe.
    if registry.driver not in S3_DRIVERS:
        raise ProbeError(f"the storage driver is {registry.driver}, not s3")
    if registry.fatal:
        raise ProbeError("the configuration is invalid: the registry would not start")
    return Probe(Target.of(registry), registry.credentials(), timeout,
                 config.s3_write_probe).run()


@dataclass
class Probe:
    target: Target
    credentials: Credentials
    timeout: float
    write: bool
    deadline: float = 0.0
    steps: list[S3Step] = field(default_factory=list)
    bucket_region: str | None = None

    def run(self) -> S3Reach:
        with _ca_bundle(self.target.extra_ca) as bundle:
            self.target.bundle = bundle
            reach = self._run()
        if self.target.extra_ca:
            return replace(reach, trusted_ca=self.target.extra_ca_source)
        return reach

    def _run(self) -> S3Reach:
        self.deadline = time.monotonic() + self.timeout
        session = _session(self.credentials, self.target.region)
        endpoint = self.target.endpoint or _client(session, self.target, 1.0).meta.endpoint_url
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        failure = None
        try:
            addresses = self._step("dns", lambda t: _resolve(host, port, t))
            connection = self._step("connect", lambda t: _connect(addresses, port, t))
            with connection:
                if parts.scheme == "https":
                    self._step("tls", lambda t: _handshake(connection, host, t,
                                                           self.target))
            self._step("credentials", lambda t: self._require_credentials())
            self._s3_steps(session)
        except StepFailed as failed:
            failure = S3Failure(self.steps[-1].step, failed.reason, self._scrub(failed.detail))
        return S3Reach(endpoint, self.target.bucket, self.target.region, self.target.prefix,
                       self.credentials.source, self.target.verify, self.bucket_region,
                       tuple(self.steps), failure, self.write)

    def _require_credentials(self) -> None:
        if not self.credentials.usable:
            raise StepFailed("no-credentials", self.credentials.source)

    def _s3_steps(self, session: Any) -> None:
        target = self.target
        self._step("head-bucket", lambda t: self._head(_client(session, target, t)))
        self._step("list", lambda t: self._call(
            lambda: _client(session, target, t).list_objects_v2(
                Bucket=target.bucket, Prefix=target.prefix, MaxKeys=1)))
        if self.write:
            key = f"{target.prefix}registry-doctor-probe-{uuid.uuid4().hex}"
            self._step("put", lambda t: self._call(lambda: _client(session, target, t).put_object(
                Bucket=target.bucket, Key=key, Body=MARKER_BODY)))
            self._step("delete", lambda t: self._call(
                lambda: _client(session, target, t).delete_object(Bucket=target.bucket, Key=key)))

    def _step(self, name: str, action: Callable[[float], Any]) -> Any:
        """Run one step within what is left of the deadline; record its outcome and time."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.steps.append(S3Step(name, False, 0.0))
            raise StepFailed("timeout", f"the probe's {self.timeout:g}s deadline passed "
                             f"before {name}")
        started = time.monotonic()
        ok = False
        try:
            result = action(remaining)
            ok = True
        finally:
            self.steps.append(S3Step(name, ok, round(time.monotonic() - started, 4)))
        return result

    def _head(self, client: Any) -> None:
        try:
            response = client.head_bucket(Bucket=self.target.bucket)
        except Exception as error:
            self.bucket_region = _header(error, "x-amz-bucket-region")
            failure = _classify(error, self.target)
            if failure.reason in ("s3-error", "AccessDenied") and _status(error) in (400, 403):
                # HEAD answers carry no error code: a GET tells the credential errors apart.
                failure = self._named_failure(client) or failure
            raise self._regional(failure) from None
        self.bucket_region = _header_of(response, "x-amz-bucket-region")

    def _named_failure(self, client: Any) -> StepFailed | None:
        try:
            client.get_bucket_location(Bucket=self.target.bucket)
        except Exception as error:
            return _classify(error, self.target)
        return None

    def _call(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except Exception as error:
            raise self._regional(_classify(error, self.target)) from None

    def _regional(self, failure: StepFailed) -> StepFailed:
        """A request refused because it went to the wrong region is a region mismatch."""
        wrong_region = self.bucket_region and self.bucket_region != self.target.region
        if wrong_region and failure.reason in ("s3-error", "PermanentRedirect", "AccessDenied",
                                               "AuthorizationHeaderMalformed"):
            return StepFailed("region-mismatch", f"bucket {self.target.bucket} is in "
                              f"{self.bucket_region}, not {self.target.region}: {failure.detail}")
        return failure

    def _scrub(self, text: str) -> str:
        for secret in (self.credentials.access_key, self.credentials.secret_key,
                       self.credentials.session_token):
            if secret:
                text = text.replace(secret, "<hidden>")
        return text


def _session(credentials: Credentials, region: str) -> Any:
    """A session holding the registry's credentials, or none: never this host's own."""
    import boto3
    from botocore.credentials import CredentialResolver
    from botocore.session import Session

    core = Session()
    core.register_component("credential_provider", CredentialResolver(providers=[]))
    return boto3.session.Session(aws_access_key_id=credentials.access_key,
                                 aws_secret_access_key=credentials.secret_key,
                                 aws_session_token=credentials.session_token,
                                 region_name=region or None, botocore_session=core)


def _client(session: Any, target: Target, timeout: float) -> Any:
    from botocore import UNSIGNED
    from botocore.config import Config

    signed = session.get_credentials() is not None
    signature = ("s3v4" if target.v4auth else "s3") if signed else UNSIGNED
    config = Config(connect_timeout=timeout, read_timeout=timeout,
                    retries={"total_max_attempts": 1}, signature_version=signature,
                    s3={"addressing_style": "path" if target.endpoint else "auto"})
    return session.client("s3", endpoint_url=target.endpoint, use_ssl=target.secure,
                          verify=target.bundle if target.verify else False, config=config)


@contextmanager
def _ca_bundle(extra: str | None) -> Iterator[str]:
    """The CA bundle botocore verifies with, so the TLS step and the S3 calls agree: the
    system's, plus the registry's own CAs (a temporary file, removed after the probe)."""
    from botocore.httpsession import get_cert_path

    system = os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True)
    if not extra:
        yield system
        return
    with tempfile.NamedTemporaryFile("w", suffix=".pem", prefix="registry-doctor-ca-") as file:
        file.write(Path(system).read_text() + "\n" + extra)
        file.flush()
        yield file.name


def _resolve(host: str, port: int, timeout: float) -> list[str]:
    """getaddrinfo has no timeout of its own: wait for it at most `timeout`."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="s3-dns")
    try:
        infos = pool.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM).result(
            timeout)
    except FutureTimeout:
        raise StepFailed("timeout", f"resolving {host} took longer than {timeout:.1f}s") \
            from None
    except socket.gaierror as error:
        raise StepFailed("dns", f"cannot resolve {host}: {error.strerror}") from None
    finally:
        pool.shutdown(wait=False)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _connect(addresses: list[str], port: int, timeout: float) -> socket.socket:
    try:
        return socket.create_connection((addresses[0], port), timeout=timeout)
    except OSError as error:
        raise _socket_failure(error, f"{addresses[0]}:{port}", timeout) from None


def _handshake(connection: socket.socket, host: str, timeout: float, target: Target) -> None:
    context = ssl.create_default_context(cafile=target.bundle)
    if not target.verify:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    connection.settimeout(timeout)
    try:
        context.wrap_socket(connection, server_hostname=host).close()
    except ssl.SSLCertVerificationError as error:
        raise StepFailed("tls-verify", f"certificate of {host} not trusted: "
                         f"{error.verify_message}") from None
    except ssl.SSLError as error:
        raise StepFailed("tls", f"TLS handshake with {host} failed: "
                         f"{error.reason or error}") from None
    except OSError as error:
        raise _socket_failure(error, f"TLS handshake with {host}", timeout) from None


def _socket_failure(error: OSError, what: str, timeout: float) -> StepFailed:
    if isinstance(error, ConnectionRefusedError):
        return StepFailed("refused", f"{what} refused the connection")
    if isinstance(error, TimeoutError):
        return StepFailed("timeout", f"no answer from {what} within {timeout:.1f}s")
    return StepFailed("connect", f"{what} failed: {error.strerror or error}")


# S3 error codes with a verdict of their own; other codes are "s3-error".
NAMED_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied",
                         "NoSuchBucket", "PermanentRedirect", "AuthorizationHeaderMalformed"})
_STATUS_CODES = {"301": "PermanentRedirect", "403": "AccessDenied", "404": "NoSuchBucket"}


def _classify(error: Exception, target: Target) -> StepFailed:
    from botocore import exceptions

    if isinstance(error, exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        message = str(error.response.get("Error", {}).get("Message", "")) or code
        code = _STATUS_CODES.get(code, code)
        return StepFailed(code if code in NAMED_CODES else "s3-error",
                          f"{code}: {message} (HTTP {_status(error)})")
    if isinstance(error, exceptions.SSLError):
        reason = "tls-verify" if "CERTIFICATE_VERIFY_FAILED" in str(error) else "tls"
        return StepFailed(reason, f"TLS to {target.endpoint or 'AWS'} failed: {error}")
    if isinstance(error, exceptions.ConnectTimeoutError | exceptions.ReadTimeoutError):
        return StepFailed("timeout", f"S3 did not answer in time: {error}")
    if isinstance(error, exceptions.NoCredentialsError):
        return StepFailed("no-credentials", str(error))
    if isinstance(error, exceptions.BotoCoreError):
        return StepFailed("connect", f"{type(error).__name__}: {error}")
    return StepFailed("s3-error", f"{type(error).__name__}: {error}")


def _status(error: Any) -> int | None:
    response = getattr(error, "response", None) or {}
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _header(error: Any, name: str) -> str | None:
    return _header_of(getattr(error, "response", None) or {}, name)


def _header_of(response: dict[str, Any], name: str) -> str | None:
    return response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get(name)
