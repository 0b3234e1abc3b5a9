"""doctor.pem and doctor.cockpit: total over any input (fuzzed with hypothesis), faithful on
real certificates and keys made with `cryptography`."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from registry_doctor.doctor.cockpit import (
    CockpitVersion,
    choose,
    judge_directory,
    name_matches,
    version_of_image,
)
from registry_doctor.doctor.pem import KEY_LABELS, read_pem_file
from tests.certs import CONSOLE_HOST, make_pki

PKI = make_pki()
RSA = make_pki(key_kind="rsa")
OLD = version_of_image("docker.io/cockpit/kubernetes:latest")
NEW = CockpitVersion(287, "Cockpit 287")
LABELS = ["CERTIFICATE", *KEY_LABELS, "X509 CRL", "garbage"]


def _block(label: str, body: bytes, wrap: int = 64) -> bytes:
    text = base64.b64encode(body).decode()
    lines = "\n".join(text[i:i + wrap] for i in range(0, len(text), wrap))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n".encode()




def _der(pem: bytes) -> bytes:
    return base64.b64decode(b"".join(pem.splitlines()[1:-1]))


real_ders = st.sampled_from([_der(PKI.leaf.cert_pem()), _der(PKI.leaf.key_pem()),
                             _der(RSA.leaf.key_pem("pkcs1"))])
# Real DER cut, extended or with a byte changed: the parsers' hardest inputs.
damaged_ders = st.builds(
    lambda der, cut, position, byte: (der[:cut] if cut else der)[:position] + bytes([byte])
    + der[position + 1:],
    real_ders, st.integers(0, 600), st.integers(0, 700), st.integers(0, 255))
pem_files = st.lists(
    st.builds(_block, st.sampled_from(LABELS), st.one_of(st.binary(max_size=300), damaged_ders),
              st.integers(1, 80)) | st.binary(max_size=80),
    max_size=6).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    pem = read_pem_file("x.cert", data)
    assert pem.size == len(data)


@settings(max_examples=300, deadline=None)
@given(pem_files)
def test_pem_framed_garbage_never_raises(data: bytes) -> None:
    read_pem_file("x.cert", data)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["a.cert", "b.crt", "b.key", "0-self-signed.cert",
                                        "z.cert", "z.key", "c.pem"]), pem_files, max_size=5),
       st.sampled_from([OLD, NEW]), st.booleans())
def test_judging_any_folder_never_raises(files: dict[str, bytes], version: CockpitVersion,
                                         writable: bool) -> None:
    parsed = {name: read_pem_file(name, data) for name, data in files.items()}
    findings = judge_directory(parsed, version, CONSOLE_HOST, datetime.now(timezone.utc),
                               writable)
    assert findings


def test_reads_a_merged_console_file() -> None:
    pem = read_pem_file("console.cert", PKI.merged_pem())
    leaf, intermediate = pem.certificates
    assert (leaf.common_name, leaf.dns_names, leaf.is_ca) == (CONSOLE_HOST, (CONSOLE_HOST,),
                                                              False)
    assert intermediate.is_ca and leaf.signed_by(intermediate)
    assert not intermediate.signed_by(leaf)
    (key,) = pem.keys
    assert (key.layout, key.encrypted, key.public_key) == ("PKCS#8", False, leaf.public_key)
    assert not pem.problems


def test_key_layouts() -> None:
    for data, layout, encrypted in (
            (RSA.leaf.key_pem("pkcs1"), "PKCS#1", False),
            (PKI.leaf.key_pem("sec1"), "SEC1", False),
            (PKI.leaf.key_pem(password=b"pw"), "encrypted PKCS#8", True),
            (RSA.leaf.key_pem("pkcs1", b"pw"), "encrypted PKCS#1", True)):
        (key,) = read_pem_file("k", data).keys
        assert (key.layout, key.encrypted) == (layout, encrypted)
        assert key.public_key is None or not encrypted


def test_private_key_material_is_not_kept() -> None:
    pem = read_pem_file("console.cert", PKI.merged_pem())
    secret = b"".join(PKI.leaf.key_pem().splitlines()[1:-1]).decode()
    assert secret[:40] not in repr(pem)


def test_problems_name_the_line() -> None:
    cert = PKI.leaf.cert_pem().decode()
    truncated = cert.replace("-----END CERTIFICATE-----\n", "")
    mismatched = cert.replace("END CERTIFICATE", "END PRIVATE KEY")
    bad_base64 = cert.replace("M", "*", 1)
    assert read_pem_file("a", truncated.encode()).problems == (
        "line 1: CERTIFICATE block has no END line",)
    assert "closed by END PRIVATE KEY" in read_pem_file("a", mismatched.encode()).problems[0]
    assert read_pem_file("a", bad_base64.encode()).problems == (
        "line 1: the CERTIFICATE block is not valid base64",)
    assert read_pem_file("a", b"hello").problems == ("no PEM block (-----BEGIN ...-----) found",)


def test_choice_is_the_last_file_in_byte_order() -> None:
    # strcmp order: uppercase sorts before lowercase, digits before both
    assert choose(["a.cert", "Z.cert", "0-self-signed.cert"], OLD).certificate == "a.cert"
    assert choose(["a.cert", "Z.cert"], OLD).shadowed == ("Z.cert",)
    old = choose(["console.crt", "console.key", "0-self-signed.cert"], OLD)
    assert (old.certificate, old.ignored, old.key) == ("0-self-signed.cert", ("console.crt",),
                                                      None)
    new = choose(["console.cert", "console.crt", "console.key"], NEW)
    assert (new.certificate, new.key, new.shadowed) == ("console.crt", "console.key",
                                                        ("console.cert",))
    assert choose([], NEW).certificate is None


def test_version_from_the_image() -> None:
    assert version_of_image("quay.io/cockpit/ws:287").number == 287
    assert version_of_image("cockpit/ws:latest").number is None
    assert version_of_image("docker.io/cockpit/kubernetes:195").number == 195
    for console in ("docker.io/cockpit/kubernetes:latest",
                    "registry.redhat.io/openshift3/registry-console:v3.11",
                    "registry.example.com:5000/openshift3/registry-console:1.4.1",
                    "cockpit/kubernetes@sha256:" + "0" * 64):
        version = version_of_image(console)
        assert version.number is None and not version.split_key, console


def test_wildcards_cover_one_label() -> None:
    assert name_matches("*.apps.example.com", CONSOLE_HOST)
    assert name_matches("REGISTRY-console-default.apps.example.com.", CONSOLE_HOST)
    assert not name_matches("*.example.com", CONSOLE_HOST)
    assert not name_matches("*.apps.example.com", "apps.example.com")
    assert not name_matches("*.com", "example.com")
