"""Test certificates made with `cryptography`: a root CA, an intermediate, server certificates
and the defects Cockpit refuses (wrong key, encrypted key, expired, misordered chain).

`python -m tests.certs` rewrites the long-lived certificates stored in the fixtures (the healthy
cluster's console secret and the broken example's), so they never need regenerating before
2045; the tests build short-lived ones on the fly with the same functions.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC)
DAY = dt.timedelta(days=1)
# The stored fixtures: valid from 2025 to 2045, so the healthy case does not expire.
FIXTURE_VALIDITY = (dt.datetime(2025, 1, 1, tzinfo=UTC), dt.datetime(2045, 1, 1, tzinfo=UTC))
CONSOLE_HOST = "registry-console-default.apps.example.com"
REPO = Path(__file__).resolve().parent.parent


def new_key(kind: str = "ec") -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: PrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, layout: str = "pkcs8", password: bytes | None = None) -> bytes:
        """The private key as PEM: `pkcs8` (BEGIN PRIVATE KEY), `pkcs1` (BEGIN RSA PRIVATE KEY,
        RSA keys only) or `sec1` (BEGIN EC PRIVATE KEY); encrypted with `password`."""
        formats = {"pkcs8": serialization.PrivateFormat.PKCS8,
                   "pkcs1": serialization.PrivateFormat.TraditionalOpenSSL,
                   "sec1": serialization.PrivateFormat.TraditionalOpenSSL}
        encryption = (serialization.BestAvailableEncryption(password) if password
                      else serialization.NoEncryption())
        return self.key.private_bytes(serialization.Encoding.PEM, formats[layout], encryption)


def issue(common_name: str, issuer: Issued | None = None, *, ca: bool = False,
          hosts: tuple[str, ...] = (), key: PrivateKey | None = None,
          validity: tuple[dt.datetime, dt.datetime] = (NOW - DAY, NOW + 365 * DAY),
          organization: str = "registry-doctor tests") -> Issued:
    """A certificate for `common_name`, signed by `issuer` (self-signed without one)."""
    key = key or new_key()
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False)
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


@dataclass(frozen=True)
class Pki:
    root: Issued
    intermediate: Issued
    leaf: Issued

    def chain_pem(self) -> bytes:
        """Server certificate then intermediate: what a server should send."""
        return self.leaf.cert_pem() + self.intermediate.cert_pem()

    def merged_pem(self) -> bytes:
        """The old console image's layout: the chain, then the unencrypted key."""
        return self.chain_pem() + self.leaf.key_pem()


def make_pki(host: str = CONSOLE_HOST, validity: tuple[dt.datetime, dt.datetime] | None = None,
             key_kind: str = "ec", organization: str = "registry-doctor tests") -> Pki:
    span = validity or (NOW - DAY, NOW + 365 * DAY)
    root = issue(f"{organization} Root CA", ca=True, validity=span, organization=organization)
    intermediate = issue(f"{organization} Issuing CA 1", root, ca=True, validity=span,
                         organization=organization)
    leaf = issue(host, intermediate, hosts=(host,), key=new_key(key_kind), validity=span,
                 organization=organization)
    return Pki(root, intermediate, leaf)


def secret(name: str, namespace: str, files: dict[str, bytes], comment: str) -> str:
    """A Secret as `oc get secret -o yaml` prints it."""
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {k: base64.b64encode(v).decode() for k, v in sorted(files.items())},
    }
    return f"# {comment}\n# Generated by `python -m tests.certs`.\n" + yaml.safe_dump(
        obj, sort_keys=False, width=200)


def _fixture_cases() -> dict[str, tuple[str, dict[str, bytes]]]:
    """cert-chain-order fixture case -> (what its secret shows, the secret's files)."""
    pki = make_pki(validity=FIXTURE_VALIDITY, organization="Example Corp")
    leaf, inter = pki.leaf, pki.intermediate
    ec = make_pki(validity=FIXTURE_VALIDITY, organization="Example Corp")
    old = make_pki(validity=(dt.datetime(2019, 3, 1, tzinfo=UTC),
                             dt.datetime(2020, 3, 1, tzinfo=UTC)), organization="Example Corp")
    wildcard = issue("*.apps.example.com", old.intermediate, hosts=("*.apps.example.com",),
                     validity=(dt.datetime(2019, 3, 1, tzinfo=UTC),
                               dt.datetime(2020, 3, 1, tzinfo=UTC)), organization="Example Corp")
    stranger = issue("Other Corp Issuing CA", ca=True, validity=FIXTURE_VALIDITY,
                     organization="Other Corp")
    # as old Cockpit made it: `openssl req -x509 -days 36500 -newkey rsa:2048 -nodes`
    self_signed = issue("registry-console-2-q8xvd", ca=True, key=new_key("rsa"), validity=(
        dt.datetime(2025, 1, 1, tzinfo=UTC), dt.datetime(2125, 1, 1, tzinfo=UTC)))
    chain = leaf.cert_pem() + inter.cert_pem()
    return {
        "misordered": ("the intermediate pasted before the server certificate",
                       {"console.cert": inter.cert_pem() + leaf.cert_pem() + leaf.key_pem()}),
        "stranger": ("an unrelated CA certificate where the intermediate belongs",
                     {"console.cert": leaf.cert_pem() + stranger.cert_pem() + leaf.key_pem()}),
        "wrong-key": ("the key of another certificate",
                      {"console.cert": chain + Issued(leaf.cert, new_key()).key_pem()}),
        "encrypted-key": ("the key encrypted with a pass phrase",
                          {"console.cert": chain + leaf.key_pem(password=b"changeit")}),
        "ec-key-sec1": ("an EC key as `openssl ecparam -genkey` writes it (SEC1)",
                        {"console.cert": ec.chain_pem() + ec.leaf.key_pem("sec1")}),
        "no-key": ("the certificates without the key", {"console.cert": chain}),
        "expired": ("a certificate that expired in 2020", {"console.cert": old.merged_pem()}),
        "shadowed": ("last year's file left beside the current one",
                     {"console-2019.cert": old.merged_pem(), "console.cert": pki.merged_pem()}),
        "shadowed-by-expired": ("an old wildcard file that sorts after the operator's",
                                {"console.cert": pki.merged_pem(),
                                 "wildcard.cert": wildcard.cert_pem() + old.intermediate.cert_pem()
                                 + wildcard.key_pem()}),
        "only-self-signed": ("the self-signed certificate Cockpit made in an earlier pod",
                             {"0-self-signed.cert": self_signed.cert_pem()
                              + self_signed.key_pem()}),
        "tls-secret": ("`oc create secret tls`: tls.crt and tls.key",
                       {"tls.crt": chain, "tls.key": leaf.key_pem()}),
        "launcher-pair": ("`oc create secret tls`, for the console image's launcher",
                          {"tls.crt": chain, "tls.key": leaf.key_pem()}),
        "cockpit-287-split": ("the split layout of Cockpit >= 211",
                              {"console.crt": chain, "console.key": leaf.key_pem()}),
    }


def write_fixtures() -> None:
    """The healthy console's signed certificate, the broken example's misordered one, and the
    secrets of the cert-chain-order fixture cases."""
    healthy = make_pki(validity=FIXTURE_VALIDITY, key_kind="rsa", organization="Example Corp")
    (REPO / "tests/fixtures/clusters/healthy/console-secret.yaml").write_text(secret(
        "console-secret", "default", {"registry-console.cert": healthy.merged_pem()},
        "The console certificate as the docs' \"Securing the Registry Console\" creates it: "
        "server certificate,\n# intermediate, unencrypted key, in one .cert file."))
    broken = make_pki("registry-console-default.apps.example.com", FIXTURE_VALIDITY,
                      organization="Example Corp")
    misordered = broken.intermediate.cert_pem() + broken.leaf.cert_pem() + broken.leaf.key_pem()
    (REPO / "doctor/examples/openshift-3.11-broken/console-secret.yaml").write_text(secret(
        "console-secret", "default", {"console.cert": misordered},
        "The console certificate with the intermediate pasted before the server certificate."))
    cases = REPO / "tests/fixtures/checks/cert-chain-order"
    for case, (what, files) in _fixture_cases().items():
        (cases / case).mkdir(parents=True, exist_ok=True)
        (cases / case / "secret.yaml").write_text(secret(
            "console-secret", "default", files, f"console-secret holding {what}."))


if __name__ == "__main__":
    write_fixtures()
