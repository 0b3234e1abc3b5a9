"""No secret reaches any output. A dump is laden with every kind of secret the registry's
objects can hold: S3 keys (in registry env, in config.yml in a ConfigMap and in a Secret),
REGISTRY_HTTP_SECRET, the OAuth client secret, the console's private key, a Route's
`spec.tls.key`, config.yml in flow style and with folded and literal scalars, an Azure account
key and a notifications endpoint token in REGISTRY_* env overrides, a PEM key in an unrelated
annotation, a service account token in a 3.x dockercfg Secret's annotation and user:password in
URLs (in env, config and a pod log). None may appear in `check` output (every format, offline
and live), `check --fix` plans and diffs, `snapshot --out` without --include-secrets, or the
exporter's /metrics and logs. A redacted snapshot must still diagnose as the original does.
(tests/test_console_secrets.py covers the console fixture cases' reports.)"""

from __future__ import annotations

import base64
import copy
import json
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry_doctor.doctor.render import FORMATS
from registry_doctor.doctor.snapshot.dump import load_dump, write_dump
from registry_doctor.doctor.snapshot.redact import (
    LAST_APPLIED,
    REDACTED,
    REDACTED_ANNOTATION,
    redact,
    redact_file,
    redact_text,
)
from tests.certs import issue, new_key
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
SA_TOKEN = "eyJhbGciOiJSUzI1NiJ9.service-account-token.c2lnbmF0dXJl"
LOG_PASSWORD = "log-url-password-6a7b8c"
# Quoted as evidence by checks that read the log (a failed push, the configuration at start).
LOG_BEARER = "log-bearer-token-5e4d3c2b1a"
LOG_ACCESS_KEY, LOG_SECRET_KEY = "AKIALOGGEDKEY7788", "logged-secret-key-99aa88bb"
AZURE_ACCOUNT_KEY = "azureAccountKey+9Qx2Lm7Vb4Np1Zr8=="
NOTIFY_TOKEN = "notify-bearer-token-7c41d9e2b3"
HOOK_PASSWORD = "hook-url-password-5e6f7a8b"
PROXY_PASSWORD = "proxy-url-password-0d9c8b7a"
FLOW_SECRET = "flow-style-secret-key-1f2e3d"
FLOW_CONFIG = ("{version: 0.1, http: {secret: 'flow-http-secret-3c4d5e'}, storage: {s3: "
               f'{{accesskey: AKIAFLOWSTYLE0000000, secretkey: "{FLOW_SECRET}", '
               "region: us-east-1, bucket: flow}}}\n")
BROKEN_FLOW = FLOW_CONFIG.replace("bucket: flow}", "bucket: [flow}")  # not YAML: read as text
FOLDED_CONFIG = f"""version: 0.1
http:
  secret: >-
    folded-http-secret-
    second-line-8a9b
storage:
  swift:
    username: swifty
    password: |
      literal-swift-password-0c1d
    authurl: https://keystone.example.com/v3
  redis:
    password: &redis "anchored-redis-password-2e3f"
proxy:
  remoteurl: https://proxyuser:{PROXY_PASSWORD}@registry-1.docker.io
  password: *redis
"""
NOTIFICATIONS = ('[{name: hook, url: "https://hookuser:' + HOOK_PASSWORD + '@hooks.example.com/'
                 'events", headers: {Authorization: ["Bearer ' + NOTIFY_TOKEN + '"]}}]')
PLANTED = {ACCESS_KEY, SECRET_KEY, "config-http-secret-9d7c1e55a0b3", STRING_DATA_PASSWORD,
           SA_TOKEN, LOG_PASSWORD, LOG_BEARER, LOG_ACCESS_KEY, LOG_SECRET_KEY, AZURE_ACCOUNT_KEY,
           NOTIFY_TOKEN, HOOK_PASSWORD, PROXY_PASSWORD,
           FLOW_SECRET,
           "AKIAFLOWSTYLE0000000", "flow-http-secret-3c4d5e", "folded-http-secret-",
           "second-line-8a9b", "literal-swift-password-0c1d", "anchored-redis-password-2e3f"}
_KEY_BLOCK = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----(.*?)-----END", re.S)


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": "default"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def _with_secrets(obj: dict[str, Any]) -> None:
    spec = obj["spec"]["template"]["spec"] if obj["kind"] == "DeploymentConfig" else obj["spec"]
    registry = next(c for c in spec["containers"] if c["name"] == "registry")
    registry.setdefault("env", []).extend([
        {"name": "REGISTRY_STORAGE_S3_ACCESSKEY", "value": ACCESS_KEY},
        {"name": "REGISTRY_STORAGE_S3_SECRETKEY", "value": SECRET_KEY},
        {"name": "REGISTRY_STORAGE_AZURE_ACCOUNTKEY", "value": AZURE_ACCOUNT_KEY},
        {"name": "REGISTRY_NOTIFICATIONS_ENDPOINTS", "value": NOTIFICATIONS},
        {"name": "HTTPS_PROXY", "value": f"http://proxy:{PROXY_PASSWORD}@proxy.example.com:3128"},
        *({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
          for name, secret, key in (("EXTRA_PASSWORD", "registry-credentials", "password"),
                                    ("PULL_CONFIG", "registry-dockercfg-x7k2p", ".dockercfg")))])
    # Named by the pod template, so snapshot collects them (it reads no other Secret).
    registry.setdefault("volumeMounts", []).append({"name": "extra-config",
                                                    "mountPath": "/etc/registry-extra"})
    spec.setdefault("volumes", []).append({"name": "extra-config",
                                           "secret": {"secretName": "registry-config-secret"}})


def _new_key_pem() -> str:
    return issue("route.example.com").key_pem().decode()


ROUTE_KEY, ANNOTATION_KEY = _new_key_pem(), _new_key_pem()


def laden_objects(base: str = "healthy") -> tuple[list[dict[str, Any]],
                                                  dict[tuple[str, str], str]]:
    dump = load_dump(CLUSTERS / base)
    objects = copy.deepcopy(dump.objects)
    for obj in objects:
        if obj["metadata"]["name"].startswith("docker-registry") and \
                obj["kind"] in ("DeploymentConfig", "Pod"):
            _with_secrets(obj)
        if (obj["kind"], obj["metadata"]["name"]) == ("Service", "docker-registry"):
            obj["metadata"].setdefault("annotations", {})["example.com/notes"] = \
                f"rotated on Monday, old key:\n{ANNOTATION_KEY}"
    objects += [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "registry-config", "namespace": "default"},
         "data": {"config.yml": CONFIG_YML, "console.cert": _console_pem()}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "registry-config-styles", "namespace": "default"},
         "data": {"flow.yml": FLOW_CONFIG, "folded.yml": FOLDED_CONFIG,
                  "broken.yml": BROKEN_FLOW}},
        _secret("registry-config-secret", {"config.yml": CONFIG_YML, "flow.yml": FLOW_CONFIG,
                                           "folded.yml": FOLDED_CONFIG}),
        {**_secret("registry-credentials", {}), "stringData": {"password": STRING_DATA_PASSWORD}},
        {**_secret("registry-dockercfg-x7k2p", {".dockercfg": "{}"}), "metadata": {
            "name": "registry-dockercfg-x7k2p", "namespace": "default",
            "annotations": {"openshift.io/token-secret.value": SA_TOKEN}}},
        {"apiVersion": "route.openshift.io/v1", "kind": "Route",
         "metadata": {"name": "registry-edge", "namespace": "default"},
         "spec": {"host": "registry-edge.apps.example.com",
                  "to": {"kind": "Service", "name": "docker-registry"},
                  "tls": {"termination": "edge", "key": ROUTE_KEY,
                          "certificate": _console_pem().split("-----BEGIN PRIVATE")[0]}}},
    ]
    for obj in objects:  # `kubectl apply` keeps a copy of the whole object, values included
        if obj["kind"] in ("Secret", "DeploymentConfig", "OAuthClient", "ConfigMap"):
            annotations = obj["metadata"].setdefault("annotations", {})
            annotations[LAST_APPLIED] = json.dumps(obj)
    logs = {pod: text + f'time="2026-12-01T10:00:00Z" level=info msg="pulling through '
                        f'https://puller:{LOG_PASSWORD}@registry-1.docker.io/v2/"\n'
                        f'time="2026-12-01T10:00:01Z" level=info msg="storage s3" '
                        f'accesskey={LOG_ACCESS_KEY} secretkey={LOG_SECRET_KEY}\n'
                        'time="2026-12-01T10:00:02Z" level=error msg="mkdir /registry/docker: '
                        'permission denied" http.request.header.authorization="Bearer '
                        f'{LOG_BEARER}"\n'
                        f'panic: s3 auth failed for secretkey={LOG_SECRET_KEY}\n'
            for pod, text in dump.logs.items()}
    return objects, logs


def _console_pem() -> str:
    secret = yaml.safe_load((CLUSTERS / "healthy" / "console-secret.yaml").read_text())
    return base64.b64decode(secret["data"]["registry-console.cert"]).decode()


def secrets_of(objects: list[dict[str, Any]]) -> set[str]:
    """Every secret string: the planted ones, REGISTRY_HTTP_SECRET, OAuth client secrets,
    Secret values as stored (but certificates, which are public) and every line of every
    private key."""
    found = set(PLANTED)
    for key in (ROUTE_KEY, ANNOTATION_KEY):
        found.update(_key_lines(key.encode()))
    for obj in objects:
        if obj["kind"] == "OAuthClient":
            found.add(obj["secret"])
        for env in _env(obj):
            if env["name"] == "REGISTRY_HTTP_SECRET":
                found.add(env["value"])
        if obj["kind"] == "Secret" and REDACTED_ANNOTATION not in obj["metadata"].get(
                "annotations", {}):
            for value in (obj.get("data") or {}).values():
                text = base64.b64decode(value)
                if not _kept_in_part(text):
                    found.add(value[:40])
                found.update(_key_lines(text))
    assert len(found) > 20
    return found


def _kept_in_part(text: bytes) -> bool:
    """Certificate files and registry configurations are redacted, not masked whole: their
    beginning is no secret (their secrets are planted and listed above)."""
    return b"-----BEGIN CERTIFICATE" in text or text.startswith((b"version:", b"{version:"))


def _key_lines(pem: bytes) -> set[str]:
    return {line.decode() for block in _KEY_BLOCK.findall(pem) for line in block.split()
            if len(line) >= 16}


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
    run = subprocess.run([sys.executable, "-m", "registry_doctor.doctor.cli",
                          *args], capture_output=True,
                         text=True, cwd=REPO, timeout=120)
    assert "Traceback" not in run.stderr, run.stderr
    return run.stdout + run.stderr


def assert_no_secret(text: str, secrets: set[str], where: str) -> None:
    leaked = sorted(s for s in secrets if s in text)
    assert not leaked, f"{where} shows {leaked}"


@pytest.mark.parametrize("fix", [(), ("--fix", "--allow-disruptive")], ids=["check", "plan"])
@pytest.mark.parametrize("output", FORMATS)
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
    names = {o["metadata"]["name"] for o in load_dump(tmp_path / "out").objects}
    assert {"registry-config-secret", "registry-credentials", "registry-dockercfg-x7k2p",
            "registry-edge", "registry-config-styles"} <= names  # the planted ones are written
    assert_no_secret(shown + written, secrets, "snapshot --out")


def test_check_and_snapshot_live(laden: tuple[Path, set[str]], tmp_path: Path) -> None:
    folder, secrets = laden
    dump = load_dump(folder)
    with FakeKubeAPI(objects=dump.objects, logs=dump.logs) as api:
        kubeconfig = str(api.write_kubeconfig(tmp_path / "kubeconfig"))
        shown = "".join(cli("check", "--kubeconfig", kubeconfig, "--no-probes", "-o", output)
                        for output in FORMATS)
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
    stored = "".join(p.read_text() for p in folder.rglob("*") if p.suffix in (".yaml", ".log"))
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
    env = {e["name"]: e.get("value") for e in redacted["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    original = {e["name"]: e.get("value") for e in dc["spec"]["template"]["spec"]
                ["containers"][0]["env"]}
    assert env.keys() == original.keys()
    assert {n for n in env if env[n] == REDACTED} == {
        "REGISTRY_HTTP_SECRET", "REGISTRY_STORAGE_S3_ACCESSKEY", "REGISTRY_STORAGE_S3_SECRETKEY",
        "REGISTRY_STORAGE_AZURE_ACCOUNTKEY"}
    assert env["HTTPS_PROXY"] == f"http://{REDACTED}@proxy.example.com:3128"
    hook = yaml.safe_load(env["REGISTRY_NOTIFICATIONS_ENDPOINTS"])[0]
    assert hook["name"] == "hook" and hook["headers"] == {"Authorization": [REDACTED]}
    assert hook["url"] == f"https://{REDACTED}@hooks.example.com/events"
    configmap = redact(next(o for o in objects if o["kind"] == "ConfigMap"))
    config = yaml.safe_load(configmap["data"]["config.yml"])
    assert config["storage"]["s3"]["region"] == "us-east-1"
    assert config["storage"]["s3"]["secretkey"] == config["http"]["secret"] == REDACTED
    assert configmap["metadata"]["annotations"][REDACTED_ANNOTATION] == "true"


def test_every_yaml_style_keeps_its_structure_and_loses_its_secrets() -> None:
    objects, _ = laden_objects()
    styles = redact(next(o for o in objects if o["metadata"]["name"] == "registry-config-styles"))
    flow = yaml.safe_load(styles["data"]["flow.yml"])
    assert flow == {"version": 0.1, "http": {"secret": REDACTED}, "storage": {"s3": {
        "accesskey": REDACTED, "secretkey": REDACTED, "region": "us-east-1", "bucket": "flow"}}}
    folded_text = styles["data"]["folded.yml"]
    folded = yaml.safe_load(folded_text)
    assert folded_text.count("\n") == FOLDED_CONFIG.count("\n")  # line numbers hold
    assert folded["storage"]["swift"] == {"username": "swifty", "password": REDACTED,
                                          "authurl": "https://keystone.example.com/v3"}
    assert folded["proxy"] == {"remoteurl": f"https://{REDACTED}@registry-1.docker.io",
                               "password": REDACTED}
    assert "region: us-east-1" in styles["data"]["broken.yml"]
    htpasswd = "admin:$2y$05$Yd4hFu1ZdPrn0xUv6Q9wKeyLqC0h1Fh1y8o3b5o7vXw2r3s4t5u6e\n"
    assert redact_file("htpasswd", htpasswd) == REDACTED  # auth.htpasswd's file, by its name
    secret = redact(next(o for o in objects if o["metadata"]["name"] == "registry-config-secret"))
    in_secret = yaml.safe_load(base64.b64decode(secret["data"]["flow.yml"]))
    assert in_secret == flow


def test_private_keys_keep_their_public_half_and_pair_with_their_certificate() -> None:
    from registry_doctor.doctor.pem import read_pem_file

    issued = issue("registry-edge.apps.example.com", key=new_key("rsa"))
    for layout in ("pkcs8", "pkcs1"):
        pem = issued.cert_pem() + issued.key_pem(layout)
        route = {"kind": "Route", "metadata": {"name": "r"},
                 "spec": {"tls": {"certificate": issued.cert_pem().decode(),
                                  "key": issued.key_pem(layout).decode()}}}
        shown = redact(route)["spec"]["tls"]
        assert shown["certificate"] == route["spec"]["tls"]["certificate"]
        assert not _key_lines(issued.key_pem(layout)) & set(shown["key"].split())
        original = read_pem_file("tls", pem)
        kept = read_pem_file("tls", pem.replace(issued.key_pem(layout),
                                                shown["key"].encode()))
        assert kept.keys[0].public_key == original.keys[0].public_key \
            == original.certificates[0].public_key
        assert (kept.labels, kept.keys[0].layout, kept.problems) == \
            (original.labels, original.keys[0].layout, original.problems)
    encrypted = issued.key_pem(password=b"pass").decode()
    redacted = redact_text(encrypted)
    assert read_pem_file("k", redacted.encode()).keys[0].encrypted
    assert not _key_lines(encrypted.encode()) & set(redacted.split())
    truncated = encrypted[:200]  # no END line: masked to the end all the same
    assert not _key_lines(encrypted.encode()) & set(redact_text(truncated).split())
    encoded = base64.b64encode(issued.key_pem()).decode()
    assert encoded[:40] not in redact_text(f"client-key-data: {encoded}")


@pytest.mark.parametrize("cluster", [CLUSTERS / "healthy", CLUSTERS / "broken",
                                     REPO / "doctor" / "examples" / "openshift-3.11-broken"],
                         ids=["healthy", "broken", "openshift-3.11-broken"])
def test_a_redacted_snapshot_diagnoses_as_the_original(cluster: Path, tmp_path: Path) -> None:
    assert_same_diagnosis(cluster, tmp_path / "out")


def test_a_redacted_laden_snapshot_diagnoses_as_the_original(laden: tuple[Path, set[str]],
                                                             tmp_path: Path) -> None:
    assert_same_diagnosis(laden[0], tmp_path / "out")


def test_a_redacted_mounted_config_diagnoses_as_the_original(tmp_path: Path) -> None:
    """The registry reads config.yml (flow style, S3 keys in it) from a Secret, with an env
    override: the configuration checks say the same of the redacted copy."""
    from tests.s3server import write_registry_dump

    source = write_registry_dump(tmp_path / "dump", FLOW_CONFIG.replace(
        "bucket: flow", "bucket: flow, regionendpoint: 'http://u:p@127.0.0.1:9'"),
        env={"REGISTRY_STORAGE_S3_SECRETKEY": SECRET_KEY, "REGISTRY_HTTP_SECRET": "h"})
    assert_same_diagnosis(source, tmp_path / "out", "registry-config")


def assert_same_diagnosis(source: Path, out: Path, judged: str = "cert-chain-order") -> None:
    """Statuses, summaries and evidence equal, and the `judged` check, which reads a Secret
    (a PEM file, a config file), is not unknown on the original."""
    cli("snapshot", "--from-dir", str(source), "--out", str(out))
    original = _verdicts(cli("check", "--from-dir", str(source), "-o", "json"))
    assert original[judged][0] in ("ok", "warn", "crit"), original[judged]
    assert _verdicts(cli("check", "--from-dir", str(out), "-o", "json")) == original


def _verdicts(shown: str) -> dict[str, tuple[str, str, list[str]]]:
    report = json.loads(shown[:shown.rindex("}") + 1])
    return {r["check"]: (r["status"], r["summary"], r["details"]) for r in report["results"]}


def test_include_secrets_is_for_the_owner_only(tmp_path: Path) -> None:
    out = tmp_path / "with-secrets"
    shown = cli("snapshot", "--from-dir", str(CLUSTERS / "healthy"), "--out", str(out),
                "--include-secrets")
    assert "wrote" in shown and "redacted" not in shown
    folders = [out, *(p for p in out.rglob("*") if p.is_dir())]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(folders) >= 3 and len(files) >= 5  # logs/<namespace>/ included
    assert {stat.S_IMODE(p.stat().st_mode) for p in folders} == {0o700}
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    refused = cli("snapshot", "--from-dir", str(CLUSTERS / "healthy"), "--out", str(shared),
                  "--include-secrets")
    assert "others can read this folder" in refused and not list(shared.iterdir())


def test_plans_and_diffs_show_no_secret(laden: tuple[Path, set[str]]) -> None:
    """Every laden object as a fix plan shows it: created (the whole object in the diff),
    changed (a patch and a diff next to each secret) and deleted."""
    from registry_doctor.doctor.fix.patch import shown, shown_patch, yaml_diff

    folder, secrets = laden
    text = []
    for obj in load_dump(folder).objects:
        changed = copy.deepcopy(obj)
        changed.setdefault("metadata", {})["labels"] = {"changed": "yes"}
        for env in _env(changed):
            env["value"] = "changed"
        text += [json.dumps(shown(obj)), json.dumps(shown_patch(obj, changed)),
                 yaml_diff(None, obj, "created", None), yaml_diff(obj, changed, "changed", "1"),
                 yaml_diff(obj, None, "deleted", "1")]
    assert_no_secret("\n".join(text), secrets, "plans and diffs")


def test_free_text_redaction_reads_a_long_line_once() -> None:
    """A log line of megabytes (a dump or a chatty registry) is scanned once per character,
    not once per pair of characters: a backtracking key pattern took minutes here."""
    long_word = "x" * 1_000_000
    assert redact_text(f"a={long_word}") == f"a={long_word}"
    assert redact_text(f"{long_word}=1 secret=s3") == f"{long_word}=1 secret={REDACTED}"
