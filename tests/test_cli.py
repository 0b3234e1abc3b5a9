"""The command line as an operator meets it: exit codes, formats, messages, never a traceback."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import CLUSTERS, REPO

SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "doctor.cli", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120)


def assert_clean(run: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in run.stdout + run.stderr, run.stderr


def test_json_report_matches_schema_and_verdict() -> None:
    run = cli("check", "--from-dir", str(CLUSTERS / "broken"), "-o", "json",
              "--check", "besteffort-qos")
    assert_clean(run)
    report = json.loads(run.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["results"][0]["status"] == "crit"
    assert run.returncode == report["exit_code"] == 2


def test_healthy_dump_exits_zero() -> None:
    run = cli("check", "--from-dir", str(CLUSTERS / "healthy"), "--check", "besteffort-qos")
    assert_clean(run)
    assert run.returncode == 0, run.stdout
    assert "OK      besteffort-qos" in run.stdout
    assert "\033[" not in run.stdout  # no colour when stdout is not a terminal


def test_yaml_report_is_the_same_document() -> None:
    args = ("check", "--from-dir", str(CLUSTERS / "broken"), "--check", "besteffort-qos")
    as_yaml = yaml.safe_load(cli(*args, "-o", "yaml").stdout)
    as_json = json.loads(cli(*args, "-o", "json").stdout)
    for report in (as_yaml, as_json):
        report.pop("generated")
    assert as_yaml == as_json


def test_demo_runs_on_the_bundled_dump() -> None:
    run = cli("demo")
    assert_clean(run)
    assert run.returncode == 0
    assert "CRIT    besteffort-qos" in run.stdout


@pytest.mark.parametrize("args", [
    ("check", "--no-such-flag"),
    ("check", "--check", "no-such-check"),
    ("check", "--skip", "no-such-check"),
    ("check", "-o", "xml"),
    ("check", "--from-dir", "/nonexistent/dump"),
    ("check", "--timeout", "0"),
    ("explain", "no-such-check"),
    ("no-such-command",),
])
def test_usage_errors_exit_64_with_one_line(args: tuple[str, ...]) -> None:
    run = cli(*args)
    assert_clean(run)
    assert run.returncode == 64
    assert run.stderr.strip().count("\n") == 0 and run.stderr.startswith("registry-doctor: ")


def test_unreachable_cluster_is_unknown_with_the_cause(tmp_path: Path) -> None:
    run = cli("check", "--kubeconfig", str(tmp_path / "absent"), "-o", "json")
    assert_clean(run)
    report = json.loads(run.stdout)
    jsonschema.validate(report, SCHEMA)
    assert run.returncode == 3
    assert all(r["status"] == "unknown" and "cannot load cluster credentials" in r["summary"]
               for r in report["results"])


def test_unparsable_files_are_named_and_the_run_goes_on(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    for source in (CLUSTERS / "broken").glob("*.yaml"):
        (dump / source.name).write_text(source.read_text())
    (dump / "bad.yaml").write_text("kind: Pod\nmetadata: {name: [unclosed\n")
    (dump / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    run = cli("check", "--from-dir", str(dump), "-o", "json", "--check", "besteffort-qos")
    assert_clean(run)
    report = json.loads(run.stdout)
    problems = report["source"]["problems"]
    assert any(p.startswith("bad.yaml: not valid YAML") for p in problems), problems
    assert any(p.startswith("binary.json: not UTF-8") for p in problems), problems
    assert report["results"][0]["status"] == "crit"


def test_snapshot_round_trip_keeps_verdicts_and_redacts_secrets(tmp_path: Path) -> None:
    from doctor.snapshot.dump import REDACTED, load_dump

    source = CLUSTERS / "healthy"
    secrets = [o for o in load_dump(source).objects if o["kind"] == "Secret"]
    decoded = "".join(base64.b64decode(v).decode() for o in secrets
                      for v in (o.get("data") or {}).values())
    key = decoded[decoded.index("BEGIN PRIVATE KEY"):decoded.index("END PRIVATE KEY")]
    key_lines = [line for line in key.splitlines()[1:] if len(line) > 20]
    assert key_lines  # console-secret holds a certificate chain and its private key
    out = tmp_path / "out"
    run = cli("snapshot", "--from-dir", str(source), "--out", str(out))
    assert_clean(run)
    assert run.returncode == 0, run.stderr
    written = "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    written += "".join(base64.b64decode(v).decode() for o in load_dump(out).objects
                       if o["kind"] == "Secret" for v in (o.get("data") or {}).values())
    assert not [line for line in key_lines if line in written], "a private key was written"
    assert "BEGIN PRIVATE KEY" not in written and REDACTED in written
    for secret in secrets:  # the secrets are kept, their values are not
        assert secret["metadata"]["name"] in written
    again = cli("check", "--from-dir", str(out), "-o", "json", "--check", "besteffort-qos")
    assert json.loads(again.stdout)["results"][0]["status"] == "ok"


def test_list_and_explain_render_metadata() -> None:
    listing = cli("list")
    assert listing.returncode == 0 and "besteffort-qos" in listing.stdout
    explained = cli("explain", "besteffort-qos")
    assert explained.returncode == 0 and "severity when failing: crit" in explained.stdout
