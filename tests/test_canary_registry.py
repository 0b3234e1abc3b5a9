"""`registry-doctor canary --url` against the real registry (Debian's docker-registry 2.8) on
loopback: each storage and auth setup must get its verdict, exit code and evidence.

The check push-pull-canary gives the same verdicts in a cluster; its fixture cases can only be
`skip` or `unknown` offline (there is no registry in a dump), so its ok, warn and crit verdicts
are proven here and in test_canary_cluster.py.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from registry_doctor.doctor.cli import app
from tests.registry_harness import (
    RoundRobinProxy,
    bcrypt_htpasswd,
    filesystem,
    moto_s3,
    port_free_on,
    refusing_oci,
    registry,
    self_signed,
    token_service,
)
from tests.tools import find_tool, free_port

SECRET = "canary-Passw0rd-not-to-be-printed"
SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "report.schema.json").read_text())


def canary(url: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Run the command as a user would (JSON output); its exit code and report."""
    result = CliRunner().invoke(app, ["canary", "--url", url, "--timeout", "20", "-o", "json",
                                      *args], env=env, catch_exceptions=False)
    assert SECRET not in result.output
    report = json.loads(result.output)
    jsonschema.validate(report, SCHEMA)  # a URL report is a report like any other
    return result.exit_code, report


def verdict(report: dict[str, Any]) -> dict[str, Any]:
    [result] = report["results"]
    assert result["check"] == "push-pull-canary"
    return result


def shown(result: dict[str, Any]) -> str:
    return result["summary"] + "\n" + "\n".join(result["details"])


def test_filesystem_storage_ok_and_table_output(tmp_path: Path) -> None:
    with registry(tmp_path, filesystem(tmp_path / "store")) as reg:
        code, report = canary(reg.url)
        table = CliRunner().invoke(app, ["canary", "--url", reg.url]).output
        with urllib.request.urlopen(f"{reg.url}/v2/registry-doctor/canary/tags/list") as page:
            tags = json.load(page)
    result = verdict(report)
    assert (code, result["status"]) == (0, "ok"), shown(result)
    assert "pushed, read back and deleted" in result["summary"]
    assert "delete: deleted; OCI manifest sha256:" in shown(result)
    assert report["source"] == {"type": "url", "url": reg.url}
    assert table.startswith(f"registry-doctor: registry {reg.url},")
    assert tags["tags"] is None  # deleted: the canary leaves no tag behind


def test_phase_timings_reach_the_exporter_as_bounded_labels(tmp_path: Path) -> None:
    from registry_doctor.checks.push_pull_canary import phase_metrics
    from registry_doctor.doctor.probes.canary import Target, run_canary
    from registry_doctor.doctor.probes.registry_client import Address, Credentials

    with registry(tmp_path, filesystem(tmp_path / "store")) as reg:
        data = run_canary([Target("url", Address.parse(reg.url), "registry", verify_tls=False)],
                          Credentials(None, None), "registry-doctor/canary", 20.0, 2)
    metrics = phase_metrics(data)
    push = (("target", "url"), ("phase", "push"))
    assert metrics[("canary_phase_success", push)] == 1.0
    assert metrics[("canary_phase_duration_seconds", push)] > 0
    assert {dict(labels)["target"] for _, labels in metrics} == {"url"}


def test_s3_storage_ok_then_crit_when_the_bucket_is_gone(tmp_path: Path) -> None:
    with moto_s3(tmp_path / "s3") as s3, registry(tmp_path / "reg", s3.storage()) as reg:
        code, report = canary(reg.url)
        assert (code, verdict(report)["status"]) == (0, "ok"), shown(verdict(report))
        s3.remove_bucket()
        code, report = canary(reg.url)
        log = reg.log_text()
    result = verdict(report)
    assert (code, result["status"]) == (2, "crit"), shown(result)
    assert "push failed (server-error): start blob upload: HTTP 500" in result["summary"]
    assert "known issue in the registry's answer: the S3 storage driver failed" \
        in shown(result)
    assert "NoSuchBucket" in log  # what the pod log says (judged in test_canary_cluster.py)
    assert s3.secret_key not in json.dumps(report)


def test_read_only_mode_is_warn(tmp_path: Path) -> None:
    storage = {**filesystem(tmp_path / "store"),
               "maintenance": {"readonly": {"enabled": True}}}
    with registry(tmp_path, storage) as reg:
        code, report = canary(reg.url)
    result = verdict(report)
    assert (code, result["status"]) == (1, "warn"), shown(result)
    assert "read-only maintenance mode" in result["summary"]
    assert "HTTP 405, the registry accepts only GET, HEAD" in result["summary"]


def test_delete_disabled_is_warn_and_the_image_is_what_skopeo_sees(tmp_path: Path) -> None:
    skopeo = find_tool("skopeo")
    with registry(tmp_path, filesystem(tmp_path / "store", delete=False)) as reg:
        code, report = canary(reg.url, "--repository", "team/canary-check")
        result = verdict(report)
        digest = shown(result).split("OCI manifest ")[1].split()[0]
        inspected = subprocess.run(
            [skopeo, "inspect", "--tls-verify=false",
             f"docker://{reg.host}:{reg.port}/team/canary-check@{digest}"],
            capture_output=True, text=True, timeout=60)
    assert (code, result["status"]) == (1, "warn"), shown(result)
    assert "does not allow delete (storage.delete.enabled is not true)" in result["summary"]
    assert "image pruning fails too" in result["summary"]
    assert inspected.returncode == 0, inspected.stderr
    image = json.loads(inspected.stdout)
    assert image["Digest"] == digest
    assert (image["Os"], image["Architecture"]) == ("linux", "amd64")
    assert image["Labels"] == {"io.registry-doctor.canary": "url"}
    assert len(image["Layers"]) == 1


def test_registry_without_oci_support_gets_docker_schema_2(tmp_path: Path) -> None:
    """OpenShift before 4.7 refuses OCI manifests; the canary then pushes Docker schema 2, and
    the image is read back and deleted through the real registry behind the front."""
    with registry(tmp_path, filesystem(tmp_path / "store")) as reg, refusing_oci(reg) as url:
        code, report = canary(url)
    result = verdict(report)
    assert (code, result["status"]) == (0, "ok"), shown(result)
    assert f"registry {url} refused an OCI manifest (MANIFEST_INVALID: manifest invalid " \
           "(unsupported manifest media type" in shown(result)
    assert "pushed Docker schema 2 instead" in shown(result)
    assert "delete: deleted; Docker schema 2 manifest sha256:" in shown(result)


def test_split_store_behind_round_robin_is_crit_every_time(tmp_path: Path) -> None:
    """Two replicas, each with its own directory (emptyDir), behind a round-robin balancer:
    the seed's "subsequent requests to pull the same image may not always succeed". Reads on
    fresh connections reach both replicas, so the verdict does not depend on luck."""
    port = port_free_on("127.0.0.1", "127.0.0.2")
    with registry(tmp_path / "a", filesystem(tmp_path / "a" / "store"), port=port) as one, \
            registry(tmp_path / "b", filesystem(tmp_path / "b" / "store"), host="127.0.0.2",
                     port=port) as two:
        proxy = RoundRobinProxy([(one.host, port), (two.host, port)])
        try:
            runs = [canary(f"http://127.0.0.1:{proxy.port}") for _ in range(3)]
        finally:
            proxy.close()
    for code, report in runs:
        result = verdict(report)
        assert (code, result["status"]) == (2, "crit"), shown(result)
        assert "pull failed (inconsistent)" in result["summary"]
        assert "served on other connections" in result["summary"]
        assert "MANIFEST_UNKNOWN" in result["summary"] or "BLOB_UNKNOWN" in result["summary"]


def test_basic_auth_with_htpasswd(tmp_path: Path) -> None:
    htpasswd = bcrypt_htpasswd(tmp_path / "htpasswd", "alice", SECRET)
    auth = {"htpasswd": {"realm": "canary-test", "path": str(htpasswd)}}
    with registry(tmp_path, filesystem(tmp_path / "store"), auth=auth) as reg:
        good = canary(reg.url, "--username", "alice",
                      env={"REGISTRY_DOCTOR_PASSWORD": SECRET})
        wrong = canary(reg.url, "--username", "alice", "--password", "not-the-password")
        anonymous = canary(reg.url)
    result = verdict(good[1])
    assert (good[0], result["status"]) == (0, "ok"), shown(result)
    assert "(auth: basic)" in shown(result)
    for code, report in (wrong, anonymous):
        result = verdict(report)
        assert (code, result["status"]) == (3, "unknown"), shown(result)
        assert "could not authenticate (auth): GET /v2/: HTTP 401" in result["summary"]
    assert "with anonymous access" in verdict(anonymous[1])["summary"]


def test_bearer_token_dance_as_openshift_does_it(tmp_path: Path) -> None:
    """The registry answers `WWW-Authenticate: Bearer realm=...`; the canary asks the realm
    for a token with any user name and the OpenShift token as password, scoped to push, pull
    and delete on its repository; the real registry verifies the signed token."""
    keys = self_signed(tmp_path / "keys", "token-signer")
    with token_service(keys, password=SECRET) as tokens, \
            registry(tmp_path, filesystem(tmp_path / "store"),
                     auth=tokens.registry_auth()) as reg:
        code, report = canary(reg.url, "--token", SECRET)
        refused = canary(reg.url, "--token", "expired-token")
    result = verdict(report)
    assert (code, result["status"]) == (0, "ok"), shown(result)
    assert "(auth: bearer token (from credentials))" in shown(result)
    granted = [r for r in tokens.requests if r["user"]]
    assert {r["scope"] for r in granted} == {"repository:registry-doctor/canary:pull,push,delete"}
    assert {r["user"] for r in granted} == {"registry-doctor"}
    assert {r["service"] for r in tokens.requests} == {"canary-test"}
    result = verdict(refused[1])
    assert (refused[0], result["status"]) == (3, "unknown"), shown(result)
    assert "the token service" in result["summary"] and "refused the credentials (HTTP 401)" \
        in result["summary"]


def test_tls_certificate_is_verified_unless_insecure(tmp_path: Path) -> None:
    keys = self_signed(tmp_path / "tls", "registry")
    tls = {"certificate": str(keys.cert_pem), "key": str(keys.key_pem)}
    with registry(tmp_path, filesystem(tmp_path / "store"), tls=tls) as reg:
        verified = canary(reg.url)
        insecure = canary(reg.url, "--insecure")
        plain = canary(reg.url.replace("https://", "http://"))
    result = verdict(verified[1])
    assert (verified[0], result["status"]) == (2, "crit"), shown(result)
    assert "connect failed (tls): TLS certificate of" in result["summary"]
    assert "not trusted" in result["summary"]
    assert verdict(insecure[1])["status"] == "ok", shown(verdict(insecure[1]))
    result = verdict(plain[1])
    assert result["status"] == "crit", shown(result)
    assert "auth failed (protocol)" in result["summary"] or "HTTP 400" in result["summary"]


def test_unreachable_and_hung_registries_are_crit(tmp_path: Path) -> None:
    refused = canary(f"http://127.0.0.1:{free_port()}")
    result = verdict(refused[1])
    assert (refused[0], result["status"]) == (2, "crit"), shown(result)
    assert "connect failed (unreachable)" in result["summary"]
    assert "refused the connection" in result["summary"]
    with socket_that_never_answers() as port:
        hung = CliRunner().invoke(app, ["canary", "--url", f"http://127.0.0.1:{port}",
                                        "--timeout", "1", "-o", "json"])
    result = verdict(json.loads(hung.output))
    assert (hung.exit_code, result["status"]) == (2, "crit"), shown(result)
    assert "(timeout)" in result["summary"]


@pytest.mark.parametrize(("args", "message"), [
    (["--token", "t", "--username", "u", "--password", "p"], "either --token or"),
    (["--username", "u"], "--username and --password go together"),
    (["--repository", "Not/Valid"], "not a valid repository name"),
    (["--output", "xml"], "unknown output format"),
])
def test_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["canary", "--url", "http://127.0.0.1:1", *args])
    assert result.exit_code == 64
    assert message in result.output


def test_check_validates_the_canary_repository_and_skips_without_probes(
        clusters: Path) -> None:
    bad = CliRunner().invoke(app, ["check", "--canary", "--canary-repository", "a//b",
                                   "--from-dir", str(clusters / "healthy")])
    assert bad.exit_code == 64
    assert "--canary-repository 'a//b' is not a valid repository name" in bad.output
    offline = CliRunner().invoke(app, ["check", "--canary", "-c", "push-pull-canary",
                                       "--from-dir", str(clusters / "healthy"), "-o", "json"])
    [result] = json.loads(offline.output)["results"]
    assert (offline.exit_code, result["status"]) == (3, "skip")  # nothing evaluated


def test_bad_url_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["canary", "--url", "ftp://example.com"])
    assert result.exit_code == 64
    assert "--url 'ftp://example.com' is not an http(s) registry URL" in result.output


@contextlib.contextmanager
def socket_that_never_answers() -> Iterator[int]:
    """A listener that accepts TCP and never says a word (a hung registry)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]
