"""A real S3 protocol server for tests (moto_server on 127.0.0.1), and registry-doctor's
verdict on a registry configured to use it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import Result
from registry_doctor.doctor.probe_results import S3Reach
from registry_doctor.doctor.snapshot import collect
from registry_doctor.doctor.snapshot.dump import write_dump
from registry_doctor.doctor.snapshot.offline import DumpSource
from tests.tools import find_tool, free_port, server
from tests.workloads import registry_dc, secret

REGION = "us-east-1"
# Any keys work until authentication is enforced.
OPEN_KEYS = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
ALLOW_S3 = json.dumps({"Version": "2012-10-17",
                       "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})


@dataclass
class S3Server:
    endpoint: str

    def client(self, service: str = "s3", keys: tuple[str, str] = OPEN_KEYS,
               region: str = REGION) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(service, endpoint_url=self.endpoint, region_name=region,
                            aws_access_key_id=keys[0], aws_secret_access_key=keys[1],
                            config=Config(s3={"addressing_style": "path"}))

    def post(self, path: str, body: bytes = b"") -> None:
        request = urllib.request.Request(f"{self.endpoint}{path}", data=body, method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10):
            pass

    def reset(self) -> None:
        self.post("/moto-api/reset")

    def user_keys(self, name: str, allow_s3: bool) -> tuple[str, str]:
        """Keys of a new IAM user, allowed everything on S3 or nothing."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        if allow_s3:
            iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=ALLOW_S3)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def enforce_auth(self) -> None:
        """From now on, unknown keys and wrong signatures are refused (moto
        `core/authorization.py`)."""
        self.post("/moto-api/reset-auth", b"0")


@contextmanager
def moto_server(log: Path) -> Iterator[S3Server]:
    port = free_port()
    with server([find_tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)], port, log):
        yield S3Server(f"http://127.0.0.1:{port}")


def s3_config(endpoint: str, bucket: str = "images", keys: tuple[str, str] | None = OPEN_KEYS,
              region: str = REGION, root: str | None = "/registry") -> str:
    """A registry configuration on `endpoint`. With authentication enforced, moto rejects the
    signature of a request whose query holds a '/' (getmoto/moto#5948), as a list under a
    rootdirectory does: those tests use root=None."""
    credentials = f"    accesskey: {keys[0]}\n    secretkey: {keys[1]}\n" if keys else ""
    rootdirectory = f"    rootdirectory: {root}\n" if root else ""
    return (f"version: 0.1\nstorage:\n  delete:\n    enabled: true\n  s3:\n{credentials}"
            f"    region: {region}\n    regionendpoint: {endpoint}\n    secure: false\n"
            f"    bucket: {bucket}\n{rootdirectory}")


def write_registry_dump(out: Path, config_text: str, env: dict[str, Any] | None = None,
                        objects: tuple[dict[str, Any], ...] = ()) -> Path:
    """A dump of a DeploymentConfig reading `config_text` from secret registry-config."""
    dc = registry_dc(env=env)
    write_dump(out, {"objects": [dc, secret("registry-config", {"config.yml": config_text}),
                                 *objects]}, {}, include_secrets=True)
    return out


def s3_verdict(dump: Path, **overrides: Any) -> tuple[Result, S3Reach]:
    """The s3-reachability result with probes on, as `engine.run` computes it, and the data
    of the probe behind it."""
    config = RunConfig(from_dir=dump, probes=True, **overrides)
    [check] = engine.select_checks(["s3-reachability"], config=config)
    snapshot = collect(DumpSource(dump), set(check.meta.kinds), config)
    probe = engine.run_probes(snapshot, config, {"s3"})["s3"]
    return engine.evaluate(check, snapshot, config, {"s3": probe}), probe.data
