"""OpenShift 4's registry as its operator renders it: the configuration read from the env the
operator writes, the S3 keys from its credentials file (4.7+) or env secret references (4.6),
and the S3 probe signing with them against a real S3 protocol server (moto)."""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import ipaddress
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import Status
from registry_doctor.doctor.snapshot import collect
from registry_doctor.doctor.snapshot.dump import load_dump, write_dump
from registry_doctor.doctor.snapshot.offline import DumpSource
from tests.conftest import CLUSTERS
from tests.s3server import S3Server, moto_server

HEALTHY = CLUSTERS / "openshift4-healthy"
EXAMPLE_KEYS = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
Obj = dict[str, Any]


def objects() -> list[Obj]:
    dump = load_dump(HEALTHY)
    assert not dump.problems
    return copy.deepcopy(dump.objects)


def named(found: list[Obj], kind: str, name: str) -> Obj:
    return next(o for o in found if o["kind"] == kind and o["metadata"]["name"] == name)


def container(found: list[Obj]) -> Obj:
    return named(found, "Deployment", "image-registry")["spec"]["template"]["spec"][
        "containers"][0]


def write(out: Path, found: list[Obj]) -> Path:
    write_dump(out, {"objects": found}, {}, include_secrets=True)
    return out


def settled(dump: Path, **overrides: Any) -> RunConfig:
    return engine.settle(RunConfig(from_dir=dump, names_given=frozenset(), **overrides),
                         DumpSource(dump))


def configuration(dump: Path) -> Any:
    config = settled(dump)
    snapshot = collect(DumpSource(dump), {"deployments", "configmaps", "registry-secrets"},
                       config, config.platform)
    return snapshot.installation().configuration


def test_the_configuration_is_the_operators_env_over_the_images_file() -> None:
    config = configuration(HEALTHY)
    assert config.unresolved is None and config.driver == "s3"
    assert config.path == "/config.yml" and config.path_origin == \
        "REGISTRY_CONFIGURATION_PATH of the image"
    assert config.params["bucket"] == "ci-ln-4h2k9-image-registry-us-east-1-wkdqjx"
    assert config.managed_by == "configs.imageregistry.operator.openshift.io/cluster"


def test_4_7_keys_come_from_the_credentials_file_and_are_never_shown() -> None:
    config = configuration(HEALTHY)
    credentials = config.credentials()
    assert (credentials.access_key, credentials.secret_key) == EXAMPLE_KEYS
    assert credentials.source == ("credentials file /var/run/secrets/cloud/credentials (secret "
                                  "image-registry-private-configuration key credentials)")
    assert EXAMPLE_KEYS[1] not in repr(config) + repr(credentials)


def test_4_6_keys_come_from_env_secret_references(tmp_path: Path) -> None:
    """Up to 4.6 the secret held REGISTRY_STORAGE_S3_ACCESSKEY/_SECRETKEY, referenced from env
    (cluster-image-registry-operator release-4.6 `pkg/envvar/envvar.go`)."""
    found = objects()
    env = container(found)["env"]
    env[:] = [e for e in env if e["name"] != "REGISTRY_STORAGE_S3_CREDENTIALSCONFIGPATH"]
    env += [{"name": f"REGISTRY_STORAGE_S3_{key}", "valueFrom": {"secretKeyRef": {
        "name": "image-registry-private-configuration", "key": f"REGISTRY_STORAGE_S3_{key}"}}}
        for key in ("ACCESSKEY", "SECRETKEY")]
    secret = named(found, "Secret", "image-registry-private-configuration")
    secret["data"] = {f"REGISTRY_STORAGE_S3_{key}": base64.b64encode(value.encode()).decode()
                      for key, value in zip(("ACCESSKEY", "SECRETKEY"), EXAMPLE_KEYS,
                                            strict=True)}
    credentials = configuration(write(tmp_path / "dump", found)).credentials()
    assert (credentials.access_key, credentials.secret_key) == EXAMPLE_KEYS
    assert "REGISTRY_STORAGE_S3_SECRETKEY" in credentials.source


@pytest.fixture(scope="module")
def auth_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[S3Server, tuple]]:
    """moto checking keys: the registry's user may use S3."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as running:
        keys = running.user_keys("image-registry", allow_s3=True)
        running.client(keys=keys).create_bucket(Bucket="images")
        running.enforce_auth()
        yield running, keys


@pytest.mark.parametrize("signed", [True, False], ids=["registry-keys", "other-keys"])
def test_the_probe_signs_with_the_operators_credentials_file(
        auth_s3: tuple[S3Server, tuple[str, str]], tmp_path: Path, signed: bool) -> None:
    s3, keys = auth_s3
    found = objects()
    env = container(found)["env"]
    for variable in env:
        if variable["name"] == "REGISTRY_STORAGE_S3_BUCKET":
            variable["value"] = "images"
    env.append({"name": "REGISTRY_STORAGE_S3_REGIONENDPOINT", "value": s3.endpoint})
    used = keys if signed else EXAMPLE_KEYS
    credentials = ("[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n"
                   .format(*used))
    named(found, "Secret", "image-registry-private-configuration")["data"] = {
        "credentials": base64.b64encode(credentials.encode()).decode()}
    dump = write(tmp_path / "dump", found)
    config = settled(dump, probes=True)
    [check] = engine.select_checks(["s3-reachability"], config=config)
    snapshot = collect(DumpSource(dump), set(check.meta.kinds), config, config.platform)
    probe = engine.run_probes(snapshot, config, {"s3"})["s3"]
    result = engine.evaluate(check, snapshot, config, {"s3": probe})
    assert probe.data.credentials.startswith("credentials file /var/run/secrets/cloud/")
    assert result.status is (Status.OK if signed else Status.CRIT), result
    assert used[1] not in str(result) + str(probe.data)


def certificate_pair(tmp_path: Path) -> tuple[bytes, Path, Path]:
    """A CA (PEM) and a certificate it signed for 127.0.0.1, with its key (files)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "storage CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s3")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (tmp_path / "tls.crt").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "tls.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return ca.public_bytes(serialization.Encoding.PEM), tmp_path / "tls.crt", \
        tmp_path / "tls.key"


@pytest.fixture
def private_ca_endpoint(tmp_path: Path) -> Iterator[tuple[int, bytes]]:
    """A real TLS server whose certificate a private CA signed (as an on-premise S3's is):
    its port and that CA."""
    ca, cert, key = certificate_pair(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        with contextlib.suppress(OSError):  # the client may hang up on the certificate
            connection, _ = listener.accept()
            with connection, context.wrap_socket(connection, server_side=True):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], ca
    listener.close()
    thread.join(10)


@pytest.mark.parametrize("trusted", [True, False], ids=["trustedCA", "no-trustedCA"])
def test_the_probe_trusts_the_ca_the_operator_gives_the_registry(
        private_ca_endpoint: tuple[int, bytes], tmp_path: Path, trusted: bool) -> None:
    """spec.storage.s3.trustedCA reaches the registry as key storage-ca-bundle.pem of ConfigMap
    image-registry-certificates (`pkg/resource/caconfig.go`): the probe verifies with it."""
    port, ca = private_ca_endpoint
    found = objects()
    container(found)["env"].append({"name": "REGISTRY_STORAGE_S3_REGIONENDPOINT",
                                    "value": f"https://127.0.0.1:{port}"})
    if trusted:
        named(found, "ConfigMap", "image-registry-certificates")["data"][
            "storage-ca-bundle.pem"] = ca.decode()
    dump = write(tmp_path / "dump", found)
    config = settled(dump, probes=True, probe_timeout=3)
    snapshot = collect(DumpSource(dump), {"deployments", "configmaps", "registry-secrets"},
                       config, config.platform)
    data = engine.run_probes(snapshot, config, {"s3"})["s3"].data
    tls = next(s for s in data.steps if s.step == "tls")
    assert tls.ok is trusted, data
    if trusted:
        assert data.trusted_ca == "configmap image-registry-certificates key " \
            "storage-ca-bundle.pem"
    else:
        assert data.failure.reason == "tls-verify" and data.trusted_ca is None


HTTP_SECRET = "9f2c1d0e8b7a6c5d4e3f2a1b0c9d8e7f"  # of the Config's spec.httpSecret and the env's


def test_a_snapshot_never_holds_the_registrys_secrets(tmp_path: Path) -> None:
    """The Config keeps the registry's HTTP secret in plain text; the credentials file holds
    the S3 keys: neither reaches a snapshot."""
    run = subprocess.run([sys.executable, "-m", "registry_doctor.doctor.cli", "snapshot",
                          "--from-dir", str(HEALTHY), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    written = "".join(p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert "httpSecret: <redacted by registry-doctor>" in written
    for secret in (HTTP_SECRET, *EXAMPLE_KEYS):
        assert secret not in written + run.stdout + run.stderr
