"""Signatures of the registry's known push failures (OpenShift 3.x docs, the registry's
"Known Issues") and of the log lines that say why a registry or console stops, to recognise
in a registry's error answers and in pod logs. Each names the check that owns its cause.

Pure text matching: checks use it on what the snapshot and the probes brought back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from registry_doctor.doctor.snapshot.redact import redact_text


@dataclass(frozen=True)
class KnownIssue:
    id: str
    pattern: re.Pattern[str]
    meaning: str
    owner: str = ""  # the check that owns the cause; "" when none does


def _issue(issue_id: str, pattern: str, meaning: str, owner: str = "") -> KnownIssue:
    return KnownIssue(issue_id, re.compile(pattern, re.IGNORECASE), meaning, owner)


# AWS error codes as the registry logs them: the Go SDK prints an error as `Code: message`
# (aws-sdk-go aws/awserr/types.go SprintError; aws-sdk-go-v2 smithy-go errors.go
# `api error Code: message`), wrapped by the driver as `s3aws: ...` (distribution
# registry/storage/driver/base/base.go). Codes: Amazon S3 API Reference, "Error responses",
# "List of error codes".
def _s3_code(*codes: str) -> str:
    return rf"\b(?:{'|'.join(codes)}):\s"


KNOWN_ISSUES: tuple[KnownIssue, ...] = (
    # The driver calls itself "s3aws" (distribution 2.2 and later): in Go's %#v of a log line
    # (`driver.Error{DriverName:"s3aws", ...}`) and in the JSON detail of an HTTP 500.
    _issue("s3-driver-error", r'DriverName"?:\s*"s3(aws)?"',
           "the S3 storage driver failed (3.x known issue): check bucket, credentials, region "
           "and regionendpoint of the registry's s3 storage", "s3-reachability"),
    _issue("s3-no-such-bucket", r"NoSuchBucket",
           "the S3 bucket does not exist (or not at this endpoint and region)",
           "s3-reachability"),
    # SignatureDoesNotMatch's message, or its code as the SDK prints it.
    _issue("s3-signature", r"The request signature we calculated does not match|"
           + _s3_code("SignatureDoesNotMatch"),
           "S3 rejects the request signature: wrong secret key, or region/endpoint mismatch",
           "s3-reachability"),
    _issue("s3-access-denied", _s3_code("AccessDenied", "AllAccessDisabled"),
           "S3 refuses the registry's key access to the bucket: the bucket policy or the key's "
           "IAM policy (the registry needs s3:ListBucket, GetObject, PutObject, DeleteObject "
           "and the multipart actions)", "s3-reachability"),
    _issue("s3-unknown-key", _s3_code("InvalidAccessKeyId"),
           "S3 does not know the registry's access key: a wrong or deleted key, or a key of "
           "another endpoint", "s3-reachability"),
    _issue("s3-clock-skew", _s3_code("RequestTimeTooSkewed"),
           "S3 refuses the requests as too old or too new: the node's clock is off by more "
           "than 15 minutes (run NTP/chrony on the nodes)", "s3-reachability"),
    _issue("s3-slow-down", _s3_code("SlowDown", "ServiceUnavailable"),
           "S3 throttles the registry (503 Slow Down): too many requests for the bucket's "
           "prefix, or an S3-compatible store at its limit", "s3-reachability"),
    _issue("s3-put-eof", r"s3: Put .*EOF",
           "the S3 endpoint dropped an upload (3.x known issue)"),
    # The client prints `digest invalid: provided digest did not match uploaded content`; the
    # registry logs `err.code="digest invalid" ... err.message="provided digest did not match
    # uploaded content"` (distribution registry/api/errcode, ErrorCodeDigestInvalid).
    _issue("shared-storage-digest", r"digest invalid|provided digest did not match uploaded "
           r"content|DIGEST_INVALID",
           "the uploaded data read back differently: replicas on shared NFS see stale file "
           "attributes (set Service sessionAffinity: ClientIP and the NFS export option "
           "no_wdelay)"),
    _issue("upload-session-lost", r"blob upload unknown|BLOB_UPLOAD_UNKNOWN",
           "the upload session is unknown to the replica that got the next request: replicas "
           "do not share storage (emptyDir, hostPath), NFS attribute caching, or replicas "
           "with different REGISTRY_HTTP_SECRET"),
    _issue("upload-session-invalid", r"blob upload invalid|BLOB_UPLOAD_INVALID",
           "the upload session state was rejected: replicas with different "
           "REGISTRY_HTTP_SECRET or storage, behind round-robin balancing"),
    # Go's runtime prints `panic: <reason>` when the registry aborts; at start-up that is its
    # configuration parser (distribution configuration/parser.go, registry/registry.go).
    _issue("registry-panic", r"(?m)^\s*panic: |level=panic",
           "the registry process aborted: a panic at start-up is its configuration",
           "registry-config"),
    _issue("permission-denied", r"permission denied",
           "the registry cannot write its storage: the volume's owner or mode does not let the "
           "registry's user (UID 1001 in the OpenShift 3.x image) write it",
           "storage-permissions"),
    # The filesystem driver passes the kernel's errors through (distribution
    # registry/storage/driver/filesystem/driver.go); their text is Linux's strerror as Go
    # spells it (golang/go src/syscall/zerrors_linux_amd64.go: ENOSPC, EROFS).
    _issue("storage-full", r"no space left on device",
           "the registry's store is full: its volume has no space left (grow the volume or "
           "prune images)"),
    _issue("storage-read-only", r"read-only file system",
           "the registry's store is mounted read-only: the volume, its PV or the NFS export "
           "does not allow writes", "storage-permissions"),
    # distribution 3.x logs `storage driver health check: <error>` (registry/handlers/app.go);
    # every 2.x and 3.x registry answers requests with this detail while the check fails
    # (distribution health/health.go Handler).
    _issue("storage-health-check", r"storage driver health check|health check failed: "
           r"please see /debug/health",
           "the storage driver's health check fails: the registry cannot list its store and "
           "answers 503 (S3: check s3-reachability; a filesystem: storage-permissions)"),
    # Go's runtime aborts with `fatal error: runtime: out of memory` when the kernel refuses
    # memory (golang/go src/runtime/mem_linux.go); ENOMEM's strerror is `cannot allocate
    # memory` (golang/go src/syscall/zerrors_linux_amd64.go).
    _issue("out-of-memory", r"fatal error: runtime: out of memory|cannot allocate memory",
           "the process ran out of memory: its memory limit, or a node without memory to "
           "spare for a pod without requests", "besteffort-qos"),
    # The console (cockpit-ws) loads its certificate with GLib (gio/gtlscertificate.c) and
    # cannot bind a port another process holds (cockpit src/ws/main.c, GLib's socket error).
    _issue("console-certificate", r"No PEM-encoded (?:certificate|private key) found|"
           r"Cannot decrypt PEM-encoded private key",
           "the console cannot load its certificate from /etc/cockpit/ws-certs.d",
           "cert-chain-order"),
    _issue("console-port-in-use", r"Failed to bind to port \d+.*in use",
           "another process holds the console's port on its node", "cockpit-port-conflict"),
)


def issues(*ids: str) -> tuple[KnownIssue, ...]:
    """The issues of `ids`, in that order; an unknown id is a bug, not an empty match."""
    by_id = {issue.id: issue for issue in KNOWN_ISSUES}
    return tuple(by_id[issue_id] for issue_id in ids)


def find_known_issues(text: str) -> list[KnownIssue]:
    return [issue for issue in KNOWN_ISSUES if issue.pattern.search(text)]


QUOTE_LIMIT = 300


def quoted(line: str) -> str:
    """A log line as a finding quotes it: URL credentials and keys redacted, whole up to
    QUOTE_LIMIT characters."""
    line = redact_text(line)
    return line if len(line) <= QUOTE_LIMIT else f"{line[:QUOTE_LIMIT]}..."


def matching_lines(lines: Iterable[str], issue: KnownIssue) -> list[str]:
    return [line for line in lines if issue.pattern.search(line)]
