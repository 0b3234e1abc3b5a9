"""Signatures of the registry's known push failures (OpenShift 3.x docs, the registry's
"Known Issues"), to recognise in a registry's error answers and in its pod logs.

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


def _issue(issue_id: str, pattern: str, meaning: str) -> KnownIssue:
    return KnownIssue(issue_id, re.compile(pattern, re.IGNORECASE), meaning)


KNOWN_ISSUES: tuple[KnownIssue, ...] = (
    # The driver calls itself "s3aws" (distribution 2.2 and later): in Go's %#v of a log line
    # (`driver.Error{DriverName:"s3aws", ...}`) and in the JSON detail of an HTTP 500.
    _issue("s3-driver-error", r'DriverName"?:\s*"s3(aws)?"',
           "the S3 storage driver failed (3.x known issue): check bucket, credentials, region "
           "and regionendpoint of the registry's s3 storage"),
    _issue("s3-no-such-bucket", r"NoSuchBucket",
           "the S3 bucket does not exist (or not at this endpoint and region)"),
    _issue("s3-signature", r"The request signature we calculated does not match",
           "S3 rejects the request signature: wrong secret key, or region/endpoint mismatch"),
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
           "the registry process aborted: a panic at start-up is its configuration"),
    _issue("permission-denied", r"permission denied",
           "the registry cannot write its storage: the volume's owner or mode does not let the "
           "registry's user (UID 1001 in the OpenShift 3.x image) write it"),
)


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
