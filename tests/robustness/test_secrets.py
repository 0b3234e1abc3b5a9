"""No secret reaches any output: a dump holding S3 keys (in registry env, in config.yml in a
ConfigMap and in a Secret), REGISTRY_HTTP_SECRET, the OAuth client secret and the console's
private key, through `check` and `check --fix` plans in every format (offline and live),
`snapshot --out` without --include-secrets (offline and live), and the exporter's /metrics
and logs. (tests/test_console_secrets.py covers the console fixture cases' reports.)"""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from doctor.snapshot.dump import load_dump, write_dump
from doctor.snapshot.redact import LAST_APPLIED, REDACTED, REDACTED_ANNOTATION, redact
from tests.conftest import CLUSTERS, REPO
from tests.exporting import http_get, poll, serve_command
from tests.kubefake import FakeKubeAPI
from tests.tools import free_port, stop

ACCESS_KEY = "AKIAREGISTRYDOCTOR7Q"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYregdocS3key"
CONFIG_YML = f"""version: 0.1
http:
  addr: :5000
  secret: config-http-secret-9d7c1e55a0b3
storage:
  delete:
    enabled: true
  s3:
    accesskey: {ACCESS_KEY}
    secretkey: "{SECRET_KEY}"
    region: us-east-1
    bucket: registry
"""
STRING_DATA_PASSWORD = "string-data-password-4f1d2c"
_KEY_BLOCK = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----(.*?)-----END", re.S)


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": "default"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def _with_s3_env(obj: dict[str, Any]) -> None:
    spec = obj["spec"]["template"]["spec"] if obj["kind"] == "DeploymentConfig" else obj["spec"]
    registry = next(c for c in spec["containers"] if c["name"] == "registry")
    registry.setdefault("env", []).extend([
        {"name": "REGISTRY_STORAGE_S3_ACCESSKEY", "value": ACCESS_KEY},
        {"name": "REGISTRY_STORAGE_S3_SECRETKEY", "value": SECRET_KEY}])


def laden_objects(base: str = "healthy") -> tuple[list[dict[str, Any]],
                                                  dict[tuple[str, str], str]]:
    dump = load_dump(CLUSTERS / base)
    objects = copy.deepcopy(dump.objects)
    for obj in objects:
        if obj["metadata"]["name"].startswith("docker-registry") and \
                obj["kind"] in ("DeploymentConfig", "Pod"):
            _with_s3_env(obj)
    objects += [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "registry-config", "namespace": "default"},
         "data": {"config.yml": CONFIG_YML, "console.cert": _console_pem()}},
        _secret("registry-config-secret", {"config.yml": CONFIG_YML}),
        {**_secret("registry-credentials", {}), "stringData": {"password": STRING_DATA_PASSWORD}},
    ]
    for obj in objects:  # `kubectl apply` keeps a copy of the whole object, values included
        if obj["kind"] in ("Secret", "DeploymentConfig", "OAuthClient", "ConfigMap"):
            annotations = obj["metadata"].setdefault("annotations", {})
            annotations[LAST_APPLIED] = json.dumps(obj)
    return objects, dump.logs


def _console_pem() -> str:
    secret = yaml.safe_load((CLUSTERS / "healthy" / "console-secret.yaml").read_text())
    return base64.b64decode(secret["data"]["registry-console.cert"]).decode()


def secrets_of(objects: list[dict[str, Any]]) -> set[str]:
    """Every secret string: the planted ones, REGISTRY_HTTP_SECRET, OAuth client secrets,
    Secret values as stored and every line of the private keys in them."""
    found = {ACCESS_KEY, SECRET_KEY, "config-http-secret-9d7c1e55a0b3", STRING_DATA_PASSWORD}
    for obj in objects:
        if obj["kind"] == "OAuthClient":
            found.add(obj["secret"])
        for env in _env(obj):
            if env["name"] == "REGISTRY_HTTP_SECRET":
                found.add(env["value"])
        if obj["kind"] == "Secret" and REDACTED_ANNOTATION not in obj["metadata"].get(
                "annotations", {}):
            for value in (obj.get("data") or {}).values():
                found.add(value[:40])
                for block in _KEY_BLOCK.findall(base64.b64decode(value)):
                    found.update(line.decode() for line in block.split() if len(line) >= 16)
    assert len(found) > 8
    return found


def _env(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = obj.get("spec") or {}
    spec = (spec.get("template") or {}).get("spec") or spec
    for container in spec.get("containers") or []:
        yield from container.get("env") or []


@pytest.fixture(scope="module", params=["healthy", "broken"])
def laden(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """The planted secrets on the healthy cluster, and on the broken one, whose failing
    checks make the fix planners write plans (a reordered certificate file, a new claim)."""
    objects, logs = laden_objects(request.param)
    folder = tmp_path_factory.mktemp("laden")
    write_dump(folder, {"objects": objects}, logs, include_secrets=True)
    return folder, secrets_of(objects)


def cli(*args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "doctor.cli", *args], capture_output=True,
                         text=True, cwd=REPO, timeout=120)
    assert "Traceback" not in run.stderr, run.stderr
    return run.stdout + run.stderr


def assert_no_secret(text: str, secrets: set[str], where: str) -> None:
    leaked = sorted(s for s in secrets if s in text)
    assert not leaked, f"{where} shows {leaked}"


@pytest.mark.parametrize("fix", [(), ("--fix", "--allow-disruptive")], ids=["check", "plan"])
@pytest.mark.parametrize("output", ["table", "json", "yaml"])
def test_check_offline(output: str, fix: tuple[str, ...], laden: tuple[Path, set[str]]) -> None:
    folder, secrets = laden
    shown = cli("check", "--from-dir", str(folder), "-o", output, *fix)
    assert_no_secret(shown, secrets, f"{output} {' '.join(fix)}")


def _snapshot_text(out: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(out.rglob("*")) if p.is_file())


def test_snapshot_offline(laden: tuple[Path, set[str]], tmp_path: Path) -> None:
    folder, secrets = laden
    shown = cli("snapshot", "--from-dir", str(folder), "--out", str(tmp_path / "out"))
    written = _snapshot_text(tmp_path / "out")
    assert "REGISTRY_HTTP_SECRET" in written and "config.yml" in written
    assert_no_secret(shown + written, secrets, "snapshot --out")


def test_check_and_snapshot_live(laden: tuple[Path, set[str]], tmp_path: Path) -> None:
    folder, secrets = laden
    dump = load_dump(folder)
    with FakeKubeAPI(objects=dump.objects, logs=dump.logs) as api:
        kubeconfig = str(api.write_kubeconfig(tmp_path / "kubeconfig"))
        shown = "".join(cli("check", "--kubeconfig", kubeconfig, "--no-probes", "-o", output)
                        for output in ("table", "json", "yaml"))
        shown += cli("check", "--kubeconfig", kubeconfig, "--no-probes", "--fix",
                     "--allow-disruptive", "-o", "json")
        shown += cli("snapshot", "--kubeconfig", kubeconfig, "--out", str(tmp_path / "out"))
    written = _snapshot_text(tmp_path / "out")
    assert "REGISTRY_HTTP_SECRET" in written
    assert_no_secret(shown + written, secrets, "live check and snapshot")


def test_a_broken_secret_file_is_reported_without_its_values(laden: tuple[Path, set[str]],
                                                             tmp_path: Path) -> None:
    folder, secrets = laden
    broken = tmp_path / "broken"
    write_dump(broken, {"objects": load_dump(folder).objects}, {}, include_secrets=True)
    text = (broken / "objects.yaml").read_text()
    (broken / "objects.yaml").write_text(text.replace(f"accesskey: {ACCESS_KEY}",
                                                      f'accesskey: "{ACCESS_KEY}'))
    (broken / "extra.json").write_text(json.dumps({"kind": "Secret", "data": SECRET_KEY})[:-3])
    for output in ("table", "json"):
        shown = cli("check", "--from-dir", str(broken), "-o", output)
        assert "not valid" in shown
        assert_no_secret(shown, secrets, output)


def test_exporter_metrics_and_logs(laden: tuple[Path, set[str]], tmp_path: Path) -> None:
    folder, secrets = laden
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(serve_command("--from-dir", str(folder), "--listen",
                                                 f"127.0.0.1:{port}", "--interval", "1h"),
                                   stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        metrics = poll(lambda: _ready_metrics(port), "a report on /metrics")
    finally:
        stop(process)
    logs = log.read_text()
    assert '"run finished"' in logs
    assert_no_secret(metrics + logs, secrets, "exporter")


def _ready_metrics(port: int) -> str | None:
    status, body, _ = http_get(f"http://127.0.0.1:{port}/metrics")
    return body if status == 200 and "registry_doctor_check_status" in body else None


def test_the_planted_secrets_are_in_the_dump(laden: tuple[Path, set[str]]) -> None:
    """The tests above cannot pass by planting nothing."""
    folder, secrets = laden
    stored = "".join(p.read_text() for p in folder.rglob("*.yaml"))
    assert stored.count(LAST_APPLIED) >= 5
    decoded = stored + "".join(
        base64.b64decode(v).decode(errors="replace") for o in yaml.safe_load(
            (folder / "objects.yaml").read_text())["items"] if o["kind"] == "Secret"
        for v in (o.get("data") or {}).values())
    assert all(s in decoded for s in secrets), sorted(s for s in secrets if s not in decoded)


def test_redaction_keeps_structure_and_leaves_the_original_alone() -> None:
    objects, _ = laden_objects()
    dc = next(o for o in objects if o["kind"] == "DeploymentConfig"
              and o["metadata"]["name"] == "docker-registry")
    before = json.dumps(dc, sort_keys=True)
    redacted = redact(dc)
    assert json.dumps(dc, sort_keys=True) == before
    env = {e["name"]: e["value"] for e in redacted["spec"]["template"]["spec"]["containers"][0]
           ["env"]}
    original = {e["name"]: e["value"] for e in dc["spec"]["template"]["spec"]["containers"][0]
                ["env"]}
    assert env.keys() == original.keys()
    assert {n for n in env if env[n] != original[n]} == {
        "REGISTRY_HTTP_SECRET", "REGISTRY_STORAGE_S3_ACCESSKEY", "REGISTRY_STORAGE_S3_SECRETKEY"}
    configmap = redact(next(o for o in objects if o["kind"] == "ConfigMap"))
    config = yaml.safe_load(configmap["data"]["config.yml"])
    assert config["storage"]["s3"]["region"] == "us-east-1"
    assert config["storage"]["s3"]["secretkey"] == config["http"]["secret"] == REDACTED
    assert configmap["metadata"]["annotations"][REDACTED_ANNOTATION] == "true"
