"""The S3 probe and the s3-reachability verdict against a real S3 protocol server (moto),
with authentication enforced for the credential cases, and against real sockets that
refuse, hang or present an untrusted certificate."""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from registry_doctor.doctor.model import Status
from registry_doctor.doctor.probe_results import S3Failure
from tests.s3server import (
    OPEN_KEYS,
    S3Server,
    moto_server,
    s3_config,
    s3_verdict,
    write_registry_dump,
)
from tests.tools import free_port


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as running:
        yield running


@pytest.fixture
def bucket(s3: S3Server) -> str:
    s3.reset()
    s3.client().create_bucket(Bucket="images")
    return "images"


@pytest.fixture(scope="module")
def auth_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[S3Server, dict]]:
    """A second server that checks keys: a user allowed S3, one allowed nothing."""
    with moto_server(tmp_path_factory.mktemp("moto-auth") / "moto.log") as running:
        keys = {"allowed": running.user_keys("registry", allow_s3=True),
                "denied": running.user_keys("nobody", allow_s3=False)}
        running.client(keys=keys["allowed"]).create_bucket(Bucket="images")
        running.enforce_auth()
        yield running, keys


def dump_for(tmp_path: Path, text: str, **kwargs: object) -> Path:
    return write_registry_dump(tmp_path / "dump", text, **kwargs)


def test_reachable_bucket_is_ok_with_step_timings(s3: S3Server, bucket: str,
                                                  tmp_path: Path) -> None:
    result, data = s3_verdict(dump_for(tmp_path, s3_config(s3.endpoint, bucket)))
    assert result.status is Status.OK, result
    assert [s.step for s in data.steps] == ["dns", "connect", "credentials",
                                                 "head-bucket", "list"]
    assert all(s.ok and s.seconds >= 0 for s in data.steps)
    assert data.prefix == "registry/" and data.bucket_region == "us-east-1"
    assert data.credentials == ("storage.s3.accesskey/secretkey (secret registry-config key "
                                   "config.yml)")
    assert f"bucket images at {s3.endpoint} answered in" in result.summary
    assert result.metrics["s3_probe_duration_seconds"] > 0  # for the exporter


def test_missing_bucket_is_crit_with_its_own_fix(s3: S3Server, bucket: str,
                                                 tmp_path: Path) -> None:
    result, data = s3_verdict(dump_for(tmp_path, s3_config(s3.endpoint, "no-such-bucket")))
    assert result.status is Status.CRIT
    assert data.failure.reason == "NoSuchBucket"
    assert result.summary.startswith("head-bucket failed: bucket no-such-bucket does not exist")
    assert "Create the bucket in region us-east-1" in result.remediation.summary


def test_write_probe_puts_and_deletes_one_marker(s3: S3Server, bucket: str,
                                                 tmp_path: Path) -> None:
    result, data = s3_verdict(dump_for(tmp_path, s3_config(s3.endpoint, bucket)),
                              s3_write_probe=True)
    assert result.status is Status.OK and "and wrote a marker" in result.summary
    assert [s.step for s in data.steps][-2:] == ["put", "delete"]
    assert s3.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_bucket_in_another_region_is_named(s3: S3Server, tmp_path: Path) -> None:
    s3.reset()
    s3.client().create_bucket(Bucket="images",
                              CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    result, data = s3_verdict(dump_for(tmp_path, s3_config(s3.endpoint)))
    assert data.bucket_region == "eu-west-1"
    # moto answers anyway (real S3 redirects): a warning here, crit when S3 itself refuses.
    assert result.status is Status.WARN
    assert result.summary.startswith("bucket images is in eu-west-1, the registry signs for "
                                     "us-east-1")
    assert "Set storage.s3.region to eu-west-1" in result.remediation.summary


@pytest.mark.parametrize(("user", "reason"), [
    ("allowed", None), ("denied", "AccessDenied"), ("unknown", "InvalidAccessKeyId"),
    ("wrong-secret", "SignatureDoesNotMatch")])
def test_credentials_are_judged_by_the_server(auth_s3: tuple[S3Server, dict], user: str,
                                             reason: str | None, tmp_path: Path) -> None:
    server, keys = auth_s3
    chosen = {"unknown": ("AKIAUNKNOWNUNKNOWN00", "x" * 40),
              "wrong-secret": (keys["allowed"][0], "y" * 40)}.get(user) or keys[user]
    result, data = s3_verdict(dump_for(tmp_path, s3_config(server.endpoint, keys=chosen,
                                                           root=None)), s3_write_probe=True)
    assert (data.failure and data.failure.reason) == reason, data
    assert result.status is (Status.OK if reason is None else Status.CRIT), result
    said = json.dumps([result.to_dict(), asdict(data)])
    assert chosen[1] not in said and chosen[0] not in said


def test_credentials_from_the_container_environment(auth_s3: tuple[S3Server, dict],
                                                    tmp_path: Path) -> None:
    from tests.workloads import secret

    server, keys = auth_s3
    env = {"AWS_ACCESS_KEY_ID": {"valueFrom": {"secretKeyRef": {"name": "aws", "key": "id"}}},
           "AWS_SECRET_ACCESS_KEY": {"valueFrom": {"secretKeyRef": {"name": "aws",
                                                                    "key": "key"}}}}
    aws = secret("aws", {"id": keys["allowed"][0], "key": keys["allowed"][1]})
    result, data = s3_verdict(dump_for(tmp_path, s3_config(server.endpoint, keys=None, root=None),
                                       env=env, objects=(aws,)))
    assert result.status is Status.OK, result
    assert data.credentials == ("env AWS_ACCESS_KEY_ID of dc/docker-registry from secret aws "
                                   "key id and env AWS_SECRET_ACCESS_KEY of dc/docker-registry "
                                   "from secret aws key key")


def test_never_signs_with_this_hosts_credentials(auth_s3: tuple[S3Server, dict],
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    server, keys = auth_s3
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys["allowed"][0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys["allowed"][1])
    result, data = s3_verdict(dump_for(tmp_path, s3_config(server.endpoint, keys=None,
                                                           root=None)))
    assert data.failure.reason == "no-credentials"
    assert result.status is Status.UNKNOWN and "cannot sign as the registry" in result.summary
    assert "instance role" in result.summary


def test_refused_connection(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    result, data = s3_verdict(dump_for(tmp_path, s3_config(endpoint)))
    assert data.failure == S3Failure("connect", "refused",
                                     f"{endpoint[7:]} refused the connection")
    assert result.status is Status.CRIT and "s3_probe_duration_seconds" in result.metrics
    assert result.summary.startswith("connect failed: nothing accepts connections")


def test_unresolvable_endpoint(tmp_path: Path) -> None:
    result, data = s3_verdict(dump_for(tmp_path, s3_config("http://s3.registry-doctor.invalid")))
    assert (data.failure.step, data.failure.reason) == ("dns", "dns")
    assert result.status is Status.CRIT
    assert "Correct storage.s3.regionendpoint" in result.remediation.summary


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A real listener that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_endpoint_that_never_answers_times_out(silent_port: int, tmp_path: Path) -> None:
    result, data = s3_verdict(dump_for(tmp_path, s3_config(f"http://127.0.0.1:{silent_port}")),
                              probe_timeout=1.0)
    assert data.failure.reason == "timeout", data
    assert data.failure.step == "head-bucket"
    assert result.status is Status.CRIT


@pytest.fixture
def untrusted_tls_port(tmp_path: Path) -> Iterator[int]:
    """A real TLS server whose self-signed certificate no CA vouches for."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp_path / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "tls.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        try:
            connection, _ = listener.accept()
            with connection, context.wrap_socket(connection, server_side=True):
                pass
        except OSError:
            pass  # the client hung up on the untrusted certificate

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()
    thread.join(10)


def test_untrusted_certificate(untrusted_tls_port: int, tmp_path: Path) -> None:
    endpoint = f"https://127.0.0.1:{untrusted_tls_port}"
    result, data = s3_verdict(dump_for(tmp_path, s3_config(endpoint).replace(
        "secure: false", "secure: true")))
    assert (data.failure.step, data.failure.reason) == ("tls", "tls-verify"), data
    assert "certificate" in data.failure.detail
    assert result.status is Status.CRIT
    assert "ignores skipverify" in result.remediation.summary


def test_keys_in_the_config_never_reach_the_report(s3: S3Server, bucket: str,
                                                   tmp_path: Path) -> None:
    result, data = s3_verdict(dump_for(tmp_path, s3_config(s3.endpoint, "no-such-bucket")))
    said = json.dumps([result.to_dict(), asdict(data)])
    assert OPEN_KEYS[0] not in said and OPEN_KEYS[1] not in said
