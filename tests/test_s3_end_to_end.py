"""End to end: a real registry (Debian's docker-registry) on a real S3 protocol server (moto),
pushed to with a real client (skopeo). registry-doctor, reading a dump of a cluster whose
registry has the same configuration, must agree with what the push did: ok when it works,
crit with the reason when the bucket is gone or the keys are wrong."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.s3server import OPEN_KEYS, S3Server, moto_server, s3_config, write_registry_dump
from tests.tools import find_tool, free_port, server


def oci_layout(folder: Path) -> Path:
    """A one-layer OCI image layout, tagged v1, written byte by byte."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes, media_type: str) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        payload = b"pushed by the registry-doctor end-to-end test\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    layer = blob(gzip.compress(tar.getvalue(), mtime=0),
                 "application/vnd.oci.image.layer.v1.tar+gzip")
    config = blob(json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers",
                   "diff_ids": [f"sha256:{hashlib.sha256(tar.getvalue()).hexdigest()}"]},
    }).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = blob(json.dumps({"schemaVersion": 2,
                                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "config": config, "layers": [layer]}).encode(),
                    "application/vnd.oci.image.manifest.v1+json")
    manifest["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
    (folder / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [manifest]}))
    return folder


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return oci_layout(tmp_path_factory.mktemp("oci") / "hello")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Start the real registry on a configuration text; gives its address."""
    binary = find_tool("docker-registry")
    with ExitStack() as running:
        def start(config_text: str) -> str:
            port = free_port()
            path = tmp_path / f"registry-{port}.yml"
            path.write_text(config_text)
            # AWS_CA_BUNDLE makes Debian's 2.8.2 S3 driver panic; no host keys either.
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("REGISTRY_", "AWS_"))}
            env["REGISTRY_HTTP_ADDR"] = f"127.0.0.1:{port}"
            running.enter_context(server([binary, "serve", str(path)], port,
                                         tmp_path / f"registry-{port}.log", env=env))
            return f"127.0.0.1:{port}"

        yield start


def push(image: Path, address: str, tag: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_tool("skopeo"), "--insecure-policy", "copy", "--dest-tls-verify=false",
         f"oci:{image}:v1", f"docker://{address}/demo/hello:{tag}"],
        capture_output=True, text=True, timeout=180)


def doctor(dump: Path) -> tuple[int, dict]:
    """registry-doctor's verdict on the dump, through the command line, probes on."""
    run = subprocess.run(
        [sys.executable, "-m", "registry_doctor.doctor.cli",
         "check", "--from-dir", str(dump), "--probes",
         "--check", "s3-reachability", "--check", "ephemeral-storage", "--s3-write-probe",
         "-o", "json"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "Traceback" not in run.stderr, run.stderr
    return run.returncode, json.loads(run.stdout)


def s3_result(report: dict) -> dict:
    return next(r for r in report["results"] if r["check"] == "s3-reachability")


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Server]:
    with moto_server(tmp_path / "moto.log") as running:
        yield running


def test_push_works_then_the_bucket_goes(s3: S3Server, registry: Callable[[str], str],
                                        image: Path, tmp_path: Path) -> None:
    s3.client().create_bucket(Bucket="images")
    config = s3_config(s3.endpoint)
    address = registry(config)
    pushed = push(image, address, "v1")
    assert pushed.returncode == 0, pushed.stderr
    keys = s3.client().list_objects_v2(Bucket="images", Prefix="registry/docker/")
    assert keys["KeyCount"] > 0  # the image really is in the bucket
    dump = write_registry_dump(tmp_path / "dump", config)

    code, report = doctor(dump)
    assert s3_result(report)["status"] == "ok", s3_result(report)
    assert code == 0
    assert {r["status"] for r in report["results"]} == {"ok"}

    bucket = s3.client()
    for key in bucket.list_objects_v2(Bucket="images").get("Contents", []):
        bucket.delete_object(Bucket="images", Key=key["Key"])
    bucket.delete_bucket(Bucket="images")
    assert push(image, address, "v2").returncode != 0  # the registry cannot store it now
    code, report = doctor(dump)
    result = s3_result(report)
    assert result["status"] == "crit" and code == 2
    assert "bucket images does not exist" in result["summary"]
    assert "NoSuchBucket" in result["summary"]
    assert OPEN_KEYS[1] not in json.dumps(report)


@pytest.mark.parametrize(("wrong", "reason"), [("access key", "InvalidAccessKeyId"),
                                               ("secret key", "SignatureDoesNotMatch")])
def test_wrong_keys(s3: S3Server, registry: Callable[[str], str], image: Path, tmp_path: Path,
                    wrong: str, reason: str) -> None:
    good = s3.user_keys("registry", allow_s3=True)
    s3.client(keys=good).create_bucket(Bucket="images")
    s3.enforce_auth()
    keys = ("AKIAUNKNOWNUNKNOWN00", good[1]) if wrong == "access key" else (good[0], "x" * 40)
    config = s3_config(s3.endpoint, keys=keys, root=None)
    assert push(image, registry(config), "v1").returncode != 0
    code, report = doctor(write_registry_dump(tmp_path / "dump", config))
    result = s3_result(report)
    assert result["status"] == "crit" and code == 2, result
    assert reason in result["summary"]
    said = json.dumps(report)
    assert keys[0] not in said and keys[1] not in said and good[1] not in said
