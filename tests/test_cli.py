"""The command line as an operator meets it: exit codes, formats, messages, never a traceback."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import CLUSTERS, REPO
from tests.tools import free_port

SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_doctor.doctor.cli",
                           *args], capture_output=True,
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
    assert report["source"]["platform"] == "openshift3"  # detected: --platform auto


def test_platform_is_chosen_with_a_flag_and_an_unknown_one_is_a_usage_error() -> None:
    args = ("check", "--from-dir", str(CLUSTERS / "broken"), "-o", "json", "--check",
            "besteffort-qos")
    chosen = cli(*args, "--platform", "openshift3")
    assert json.loads(chosen.stdout)["source"]["platform"] == "openshift3"
    unknown = cli(*args, "--platform", "nomad")
    assert_clean(unknown)
    assert unknown.returncode == 64
    assert "--platform nomad: choose from auto, openshift4, openshift3, kubernetes" \
        in unknown.stderr


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


@pytest.mark.parametrize("command", ["check", "serve"])
def test_skipping_every_selected_check_is_a_usage_error_not_an_unknown_run(command: str) -> None:
    """Exit 3 means "nothing could be judged" to Nagios and cron: a run that selected nothing
    must not page as if the cluster were unreadable."""
    run = cli(command, "--from-dir", str(CLUSTERS / "healthy"), "--check", "besteffort-qos",
              "--check", "nfs-scaling", "--skip", "nfs-scaling", "--skip", "besteffort-qos")
    assert_one_usage_line(run, "no check left to run: --skip besteffort-qos, nfs-scaling "
                               "removes every check --check names")


def kubeconfig_for(path: Path, server: str, contexts: tuple[str, ...] = ("x",)) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": n, "context": {"cluster": "c", "user": "u"}} for n in contexts],
        "current-context": contexts[0]}))
    return path


def test_a_refused_connection_is_reported_as_refused_without_url_credentials(
        tmp_path: Path) -> None:
    # Nothing listens on the port: the API server refuses at once, it does not time out.
    server = f"https://alice:s3cret-pass@127.0.0.1:{free_port()}"
    kubeconfig = kubeconfig_for(tmp_path / "kubeconfig", server)
    runs = [cli("check", "--kubeconfig", str(kubeconfig), *output)
            for output in (("-o", "json"), ("-o", "table"))]
    runs.append(cli("snapshot", "--kubeconfig", str(kubeconfig), "--out", str(tmp_path / "d")))
    for run in runs:
        assert_clean(run)
        assert "s3cret-pass" not in run.stdout + run.stderr and "alice" not in run.stdout
    report = json.loads(runs[0].stdout)
    jsonschema.validate(report, SCHEMA)
    assert runs[0].returncode == 3
    assert all(r["status"] == "unknown" and "connection refused" in r["summary"]
               and "timed out" not in r["summary"] for r in report["results"])
    assert report["source"]["server"] == server.replace("alice:s3cret-pass@", "")
    assert "connection refused" in runs[2].stderr  # snapshot names what it could not read
    # ... exits 3 and writes no collection it could not read as an empty one
    assert runs[2].returncode == 3 and "left out of the dump" in runs[2].stderr
    assert not list((tmp_path / "d").glob("*.yaml"))


GARBAGE_KUBECONFIGS = {
    "not-yaml": (b"clusters: [unclosed\n", "not valid YAML at line 2"),
    "a-list": (b"- 1\n- 2\n", "not a kubeconfig"),
    "no-contexts": (b"apiVersion: v1\nkind: Config\n", "current-context"),
    "binary": (b"\xff\xfe\x00garbage", "not a text file"),
}


@pytest.mark.parametrize("command", ["check", "serve", "snapshot", "rollback"])
@pytest.mark.parametrize("case", sorted(GARBAGE_KUBECONFIGS))
def test_an_unusable_kubeconfig_is_one_usage_error(tmp_path: Path, command: str,
                                                   case: str) -> None:
    content, message = GARBAGE_KUBECONFIGS[case]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_bytes(content)
    extra = ("--out", str(tmp_path / "dump")) if command == "snapshot" else ()
    run = cli(command, "--kubeconfig", str(kubeconfig), *extra)
    assert_one_usage_line(run, f"cannot load cluster credentials from {kubeconfig}: ")
    assert message in run.stderr


@pytest.mark.parametrize("args, message", [
    (("--context", "nope"), "--context nope: no such context in {kubeconfig} (its contexts: "
                            "x, y)"),
    (("--kubeconfig", "{absent}"), "--kubeconfig {absent}: no such file"),
    (("--kubeconfig", "{folder}"), "--kubeconfig {folder}: a directory, not a file"),
])
def test_a_wrong_context_or_kubeconfig_path_is_one_usage_error(
        tmp_path: Path, args: tuple[str, str], message: str) -> None:
    kubeconfig = kubeconfig_for(tmp_path / "kubeconfig", f"https://u:pw-123@127.0.0.1:{free_port()}",
                                ("x", "y"))
    names = {"kubeconfig": kubeconfig, "absent": tmp_path / "absent", "folder": tmp_path}
    flags = [a.format(**names) for a in args]
    if "--kubeconfig" not in flags:
        flags += ["--kubeconfig", str(kubeconfig)]
    for command in ("check", "serve", "rollback"):
        run = cli(command, *flags)
        assert_one_usage_line(run, message.format(**names))
        assert "pw-123" not in run.stderr


def assert_one_usage_line(run: subprocess.CompletedProcess[str], start: str) -> None:
    assert_clean(run)
    assert run.returncode == 64, run.stdout + run.stderr
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1 and run.stderr.startswith(f"registry-doctor: {start}"), \
        run.stderr


@pytest.mark.parametrize("args", [("list",), ("check", "--from-dir", str(CLUSTERS / "broken"),
                                              "-o", "json")])
def test_a_closed_stdout_ends_quietly(args: tuple[str, ...]) -> None:
    """`registry-doctor list | head -0`: the reader is gone before the first write."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        run = subprocess.run([sys.executable, "-m", "registry_doctor.doctor.cli", *args],
                             stdout=write_end,
                             stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=120)
    finally:
        os.close(write_end)
    assert (run.returncode, run.stderr) == (1, "")


def test_shell_completion_requests_end_without_a_traceback() -> None:
    env = {**os.environ, "_REGISTRY_DOCTOR_COMPLETE": "bash_complete",
           "COMP_WORDS": "registry-doctor ch", "COMP_CWORD": "1"}
    run = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'registry-doctor'; "
                          "from registry_doctor.doctor.cli import main; main()"],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert_clean(run)
    assert run.returncode in (0, 1)


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
    from registry_doctor.doctor.snapshot.dump import REDACTED, load_dump

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


def test_check_and_serve_share_one_option_set_and_take_each_checks_options_from_its_metadata(
) -> None:
    from typer.main import get_command

    from registry_doctor.checks import all_metas
    from registry_doctor.doctor.cli import app

    commands = get_command(app).commands  # type: ignore[attr-defined]
    flags = {name: {opt for p in commands[name].params for opt in p.opts}
             for name in ("check", "serve")}
    shared = {"--check", "--skip", "--from-dir", "--kubeconfig", "--context", "--platform",
              "--namespace", "--registry", "--console", "--timeout", "--log-tail", "--config"}
    assert shared <= flags["check"] & flags["serve"]
    options = [o for meta in all_metas() for o in meta.options]
    assert options, "the checks declare options"
    for option in options:
        assert option.flag in flags["check"]
        # serve never fixes: a fix option would be accepted and then ignored
        assert (option.flag in flags["serve"]) is not option.fix
    assert cli("check", "--claim-size", "lots", "--fix", "--from-dir",
               str(CLUSTERS / "broken")).stderr.strip() == (
        "registry-doctor: --claim-size lots: not a Kubernetes quantity (e.g. 100m, 256Mi, 20Gi)")
def test_snapshot_keeps_previous_containers_logs_where_oc_adm_inspect_puts_them(
        tmp_path: Path) -> None:
    from tests.casedump import discover_cases, materialize

    case = next(c for c in discover_cases() if c.id == "registry-running/restarts-previous-log-s3")
    out = tmp_path / "out"
    run = cli("snapshot", "--from-dir", str(materialize(case, tmp_path / "case")), "--out",
              str(out), "--check", "registry-running")
    assert run.returncode == 0, run.stderr
    previous = out / "namespaces/default/pods/docker-registry-3-7kq2x/registry/registry/logs"
    assert "AccessDenied: Access Denied" in (previous / "previous.log").read_text()
    again = cli("check", "--from-dir", str(out), "-o", "json", "--check", "registry-running")
    [result] = json.loads(again.stdout)["results"]
    assert result["status"] == "warn"
    assert any("previous container's log (registry)" in d and "AccessDenied" in d
               for d in result["details"])


# plain Kubernetes: `check` with no names finds the chart's registry by itself

KUBERNETES_BROKEN = CLUSTERS / "kubernetes-broken"


def assert_found_by_discovery(run: subprocess.CompletedProcess[str]) -> dict:
    assert_clean(run)
    report = json.loads(run.stdout)
    jsonschema.validate(report, SCHEMA)
    source = report["source"]
    assert (source["platform"], source["namespace"], source["registry"]) == (
        "kubernetes", "registry", "docker-registry")
    assert source["platform_evidence"].startswith("no OpenShift API group served")
    statuses = {r["check"]: r["status"] for r in report["results"]}
    assert statuses["ephemeral-storage"] == statuses["besteffort-qos"] == "crit"
    assert statuses["cockpit-port-conflict"] == "skip"
    assert run.returncode == report["exit_code"] == 2
    return report


def test_a_dump_of_plain_kubernetes_is_recognised_and_its_registry_found() -> None:
    assert_found_by_discovery(cli("check", "--from-dir", str(KUBERNETES_BROKEN), "-o", "json"))


@pytest.mark.parametrize("kube_profile", ["kubernetes-1.33"])
def test_a_plain_kubernetes_cluster_is_recognised_and_its_registry_found(
        fake_api, tmp_path: Path) -> None:
    api = fake_api(KUBERNETES_BROKEN)
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    report = assert_found_by_discovery(cli("check", "--kubeconfig", str(kubeconfig), "-o",
                                           "json", "--no-probes"))
    assert report["results"]
    discovery = [r for r in api.requests if r.resource in ("deployments", "statefulsets")
                 and r.verb == "list"]
    assert {(r.path, r.query.get("labelSelector")) for r in discovery} == {
        ("/apis/apps/v1/deployments", "app=docker-registry"),
        ("/apis/apps/v1/statefulsets", "app=docker-registry")}  # scoped by label, once


def test_several_registries_are_one_usage_error_naming_them(tmp_path: Path) -> None:
    objects = [o for o in yaml.safe_load_all((KUBERNETES_BROKEN / "registry.yaml").read_text())
               if o]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    twin = yaml.safe_load(yaml.safe_dump(deployment))
    twin["metadata"]["namespace"] = "mirror"
    (tmp_path / "objects.yaml").write_text(yaml.safe_dump_all([*objects, twin]))
    run = cli("check", "--from-dir", str(tmp_path))
    assert_one_usage_line(run, "2 distribution registries found in any namespace "
                          "(deployment/docker-registry -n mirror, deployment/docker-registry -n "
                          "registry): name one with --registry NAME -n NAMESPACE")
    named = cli("check", "--from-dir", str(tmp_path), "-n", "mirror", "-o", "json")
    assert json.loads(named.stdout)["source"]["namespace"] == "mirror"


OPENSHIFT4_BROKEN = {  # what each check makes of the broken OpenShift 4 fixture
    "besteffort-qos": "crit", "ephemeral-storage": "crit", "nfs-scaling": "crit",
    "registry-config": "ok", "registry-running": "ok", "registry-operator": "ok",
    "s3-reachability": "skip", "storage-permissions": "ok", "cert-chain-order": "skip",
    "cockpit-port-conflict": "skip", "oauth-redirect": "skip", "console-running": "skip",
    "http-secret": "ok", "ingress-body-size": "skip", "storage-capacity": "skip",
    # the fixture's serving certificate (service CA's, image-registry-tls) is redacted
    "registry-tls": "unknown"}
CONSOLE_SKIP = "does not apply to platform openshift4: the registry console (Cockpit) is " \
    "part of OpenShift 3.x only"


def assert_openshift4_report(run: subprocess.CompletedProcess[str]) -> None:
    """Every check judged as on OpenShift 4, the console's skipped with their reason, and no
    secret of the fixture in the output (its HTTP secret is the Config's and the env's)."""
    assert_clean(run)
    report = json.loads(run.stdout)
    jsonschema.validate(report, SCHEMA)
    source = report["source"]
    assert (source["platform"], source["platform_evidence"], source["namespace"],
            source["registry"]) == ("openshift4", "the cluster serves "
                                    "imageregistry.operator.openshift.io",
                                    "openshift-image-registry", "image-registry")
    statuses = {r["check"]: r["status"] for r in report["results"]}
    assert statuses == OPENSHIFT4_BROKEN
    for result in report["results"]:
        if result["check"] in ("cert-chain-order", "cockpit-port-conflict", "oauth-redirect",
                               "console-running"):
            assert result["summary"] == CONSOLE_SKIP
    fix = next(r for r in report["results"] if r["check"] == "besteffort-qos")["remediation"]
    assert "oc patch configs.imageregistry.operator.openshift.io/cluster --type merge" \
        in fix["summary"]
    assert "9f2c1d0e8b7a6c5d4e3f2a1b0c9d8e7f" not in run.stdout + run.stderr


def test_check_recognises_openshift4_in_a_dump() -> None:
    assert_openshift4_report(cli("check", "--from-dir", str(CLUSTERS / "openshift4-broken"),
                                 "-o", "json"))


@pytest.mark.parametrize("kube_profile", ["openshift-4.14"])
def test_check_recognises_openshift4_on_a_cluster(fake_api: Any, tmp_path: Path) -> None:
    api = fake_api(CLUSTERS / "openshift4-broken")
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    assert_openshift4_report(cli("check", "--kubeconfig", str(kubeconfig), "--no-probes",
                                 "-o", "json"))
