"""PEM files read the way Cockpit reads them: blocks, certificates and private keys.

Pure and total: any bytes give a `PemFile` (with its problems listed), never an exception. A
private key is reduced at once to facts about it (layout, encryption, its public key), so no
key material is kept or can reach a report.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from registry_doctor.doctor.snapshot.redact import REDACTED_KEY_PREFIX

if TYPE_CHECKING:  # cryptography (~60 ms) is imported when a certificate is read, not before
    from cryptography import x509

MAX_PEM_BYTES = 1024 * 1024  # larger is not a certificate file; parsing stops there
_BEGIN = re.compile(r"^-----BEGIN ([A-Z0-9 ]{1,64})-----\s*$")
_END = re.compile(r"^-----END ([A-Z0-9 ]{1,64})-----\s*$")
_HEADER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*): ?(.*)$")
KEY_LABELS = {  # PEM label -> layout, as `openssl` writes them
    "PRIVATE KEY": "PKCS#8",
    "RSA PRIVATE KEY": "PKCS#1",
    "EC PRIVATE KEY": "SEC1",
    "ENCRYPTED PRIVATE KEY": "encrypted PKCS#8",
}
# cryptography raises any of these (and sometimes others) on malformed DER; a certificate
# file must never crash the run, so the parsers below catch Exception at their one call site.


@dataclass(frozen=True)
class Block:
    label: str
    der: bytes
    line: int  # 1-based line of the BEGIN marker
    encrypted_header: bool = False  # "Proc-Type: 4,ENCRYPTED" (OpenSSL's legacy encryption)
    redacted: bool = False  # a key redacted by registry-doctor: `der` is its public half


@dataclass(frozen=True)
class Certificate:
    position: int  # 1-based position among the certificates of its file or chain
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    has_san: bool
    is_ca: bool
    public_key: bytes  # SubjectPublicKeyInfo, DER
    fingerprint: str  # SHA-256 of the DER, hex
    common_name: str | None
    _x509: x509.Certificate = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"certificate {self.position} ({self.common_name or self.subject})"

    @property
    def self_issued(self) -> bool:
        return self.subject == self.issuer and self.signed_by(self)

    def signed_by(self, issuer: Certificate) -> bool:
        """True when `issuer` is named as this certificate's issuer and its key verifies the
        signature: names alone prove nothing."""
        try:
            self._x509.verify_directly_issued_by(issuer._x509)
        except Exception:  # ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm
            return False
        return True


@dataclass(frozen=True)
class PrivateKeyInfo:
    layout: str  # "PKCS#8", "PKCS#1", "SEC1", "encrypted PKCS#8", "encrypted PKCS#1", ...
    label: str
    line: int
    encrypted: bool
    public_key: bytes | None  # SubjectPublicKeyInfo DER of its public half, None if unreadable
    problem: str | None = None


@dataclass(frozen=True)
class PemFile:
    name: str
    size: int
    certificates: tuple[Certificate, ...] = ()
    keys: tuple[PrivateKeyInfo, ...] = ()
    labels: tuple[str, ...] = ()  # every block's label, in order
    problems: tuple[str, ...] = ()


def read_pem_file(name: str, data: bytes) -> PemFile:
    """Everything PEM in `data`; problems (bad base64, unparsable DER, truncated blocks) are
    listed, never raised."""
    problems: list[str] = []
    if len(data) > MAX_PEM_BYTES:
        problems.append(f"larger than {MAX_PEM_BYTES // 1024} KiB: only the start was read")
        data = data[:MAX_PEM_BYTES]
    blocks = pem_blocks(data, problems)
    certificates: list[Certificate] = []
    keys: list[PrivateKeyInfo] = []
    for block in blocks:
        if block.label == "CERTIFICATE":
            cert = certificate_from_der(block.der, len(certificates) + 1)
            if cert is None:
                problems.append(f"line {block.line}: the CERTIFICATE block is not a valid "
                                "X.509 certificate")
            else:
                certificates.append(cert)
        elif block.label in KEY_LABELS:
            keys.append(_key_info(block))
    if not blocks and not problems and data.strip():
        problems.append("no PEM block (-----BEGIN ...-----) found")
    return PemFile(name, len(data), tuple(certificates), tuple(keys),
                   tuple(b.label for b in blocks), tuple(problems))


def pem_blocks(data: bytes, problems: list[str]) -> list[Block]:
    text = data.decode("latin-1")  # every byte maps to one character: never fails
    blocks: list[Block] = []
    label: str | None = None
    start = 0
    body: list[str] = []
    encrypted = False
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if label is None:
            begin = _BEGIN.match(line)
            if begin:
                label, start, body, encrypted = begin.group(1), number, [], False
            continue
        end = _END.match(line)
        if end:
            if end.group(1) != label:
                problems.append(f"line {start}: BEGIN {label} closed by END {end.group(1)} "
                                f"at line {number}")
            else:
                der = _base64(body)
                if der is None:
                    problems.append(f"line {start}: the {label} block is not valid base64")
                else:
                    blocks.append(_block(label, der, start, encrypted))
            label = None
        elif begin := _BEGIN.match(line):
            problems.append(f"line {start}: {label} block not closed before line {number}")
            label, start, body, encrypted = begin.group(1), number, [], False
        elif _HEADER.match(line) and not body:
            encrypted = encrypted or (line.startswith("Proc-Type:") and "ENCRYPTED" in line)
        elif line:
            body.append(line)
    if label is not None:
        problems.append(f"line {start}: {label} block has no END line")
    return blocks


def _block(label: str, der: bytes, line: int, encrypted: bool) -> Block:
    """A block; a key that `registry-doctor snapshot` redacted reads as the key it was, with
    only its public half (doctor/snapshot/redact.py)."""
    if label.startswith(REDACTED_KEY_PREFIX) and label.endswith("PRIVATE KEY"):
        return Block(label.removeprefix(REDACTED_KEY_PREFIX), der, line, encrypted, True)
    return Block(label, der, line, encrypted)


def _base64(lines: list[str]) -> bytes | None:
    try:
        return binascii.a2b_base64("".join(lines).encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def certificate_from_der(der: bytes, position: int) -> Certificate | None:
    """The facts a check needs about one DER certificate, or None when it does not parse."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_der_x509_certificate(der)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            dns = tuple(san.get_values_for_type(x509.DNSName))
            ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
            has_san = True
        except x509.ExtensionNotFound:
            dns, ips, has_san = (), (), False
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        public_key = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return Certificate(
            position=position, subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
            dns_names=dns, ip_addresses=ips, has_san=has_san, is_ca=is_ca,
            public_key=public_key, fingerprint=hashlib.sha256(der).hexdigest(),
            common_name=_common_name(cert), _x509=cert)
    except Exception:  # see the note at the top: malformed DER raises many types
        return None


def _common_name(cert: x509.Certificate) -> str | None:
    from cryptography.x509.oid import NameOID

    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def _key_info(block: Block) -> PrivateKeyInfo:
    layout = KEY_LABELS[block.label]
    if block.label == "ENCRYPTED PRIVATE KEY" or block.encrypted_header:
        prefix = "" if layout.startswith("encrypted") else "encrypted "
        return PrivateKeyInfo(prefix + layout, block.label, block.line, True, None)
    public = public_key_of(block)
    if public is None:
        return PrivateKeyInfo(layout, block.label, block.line, False, None,
                              f"line {block.line}: the {block.label} block is not a valid key")
    return PrivateKeyInfo(layout, block.label, block.line, False, public)


# Parsed once per process (the exporter reads the same file every run). Keyed by the key's
# digest and holding only public keys: no key material stays in memory.
_PUBLIC_KEYS: dict[bytes, bytes | None] = {}
MAX_CACHED_KEYS = 32


def public_key_of(block: Block) -> bytes | None:
    """The public key (DER SubjectPublicKeyInfo) of an unencrypted key block, redacted or not;
    None if it holds no readable key."""
    return _checked_public_key(block.der) if block.redacted else _public_key(block.der)


def _checked_public_key(der: bytes) -> bytes | None:
    from cryptography.hazmat.primitives import serialization

    try:
        serialization.load_der_public_key(der)
    except Exception:  # see the note at the top
        return None
    return der


def _public_key(der: bytes) -> bytes | None:
    """The public key (DER SubjectPublicKeyInfo) of a private key; None if it is not one."""
    digest = hashlib.sha256(der).digest()
    if digest not in _PUBLIC_KEYS:
        if len(_PUBLIC_KEYS) >= MAX_CACHED_KEYS:
            _PUBLIC_KEYS.clear()
        _PUBLIC_KEYS[digest] = _load_public_key(der)
    return _PUBLIC_KEYS[digest]


def _load_public_key(der: bytes) -> bytes | None:
    from cryptography.hazmat.primitives import serialization

    try:
        # Only the public half is used: the RSA consistency check (~40 ms) would prove nothing
        # a comparison with the certificate's public key does not.
        key = serialization.load_der_private_key(der, password=None,
                                                 unsafe_skip_rsa_key_validation=True)
        return key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    except Exception:  # see the note at the top
        return None
