"""PEM files as text segments, so blocks can be reordered with every byte of each kept, and
outlined (labels and certificate subjects, never key material) for plans and diffs."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----[ \t]*(?:\r?\n|$)",
                    re.DOTALL)


@dataclass(frozen=True)
class Segment:
    label: str  # "CERTIFICATE", "PRIVATE KEY", ...
    text: str  # the block with whatever preceded it since the previous block
    der: bytes | None  # None when the body is not base64

    @property
    def is_key(self) -> bool:
        return self.label.endswith("PRIVATE KEY")


def segments(text: str) -> tuple[list[Segment], str]:
    """The blocks of `text` in order, and the text after the last one."""
    found, start = [], 0
    for match in _BLOCK.finditer(text):
        body = "".join(match.group(2).split())
        try:
            der: bytes | None = binascii.a2b_base64(body.encode("ascii"), strict_mode=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            der = None
        found.append(Segment(match.group(1), text[start:match.end()], der))
        start = match.end()
    return found, text[start:]


def subject_of(segment: Segment) -> str | None:
    """The certificate's subject (RFC 4514), or None when it is not a readable certificate."""
    if segment.label != "CERTIFICATE" or segment.der is None:
        return None
    from cryptography import x509

    try:
        return x509.load_der_x509_certificate(segment.der).subject.rfc4514_string()
    except ValueError:
        return None


def outline(value: str) -> str | None:
    """`PEM: CERTIFICATE (CN=a), PRIVATE KEY (redacted)`, or None when `value` holds no PEM."""
    blocks, _ = segments(value)
    if not blocks:
        return None
    parts = []
    for block in blocks:
        if block.is_key:
            parts.append(f"{block.label} (redacted)")
        else:
            subject = subject_of(block)
            parts.append(f"{block.label} ({subject})" if subject else block.label)
    return "PEM: " + ", ".join(parts)


def decoded(value: object) -> str | None:
    """A Secret `data` value as text, or None when it is not base64 of UTF-8 text."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
