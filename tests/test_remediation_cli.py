"""Remediation from the command line, as cron runs it: the plan in JSON, JSON lines of an
applied run, usage errors, `rollback`, `permissions`, and a run killed after each of its writes
(afterwards every object is its old or its new version, and a rerun converges)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from registry_doctor.doctor.fix.cluster import CRASH_ENV, CRASH_EXIT_CODE
from registry_doctor.doctor.fix.journal import UNFINISHED
from tests.conftest import CLUSTERS, REPO
from tests.fixcluster import broken, expire_lock, lock_record, lock_resource, registry
from tests.kubefake import FakeKubeAPI
from tests.kubefake.pytest_plugin import EVERY_PROFILE
from tests.test_remediation import journal, pods, template_resources

SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())
FIXED = {"requests": {"cpu": "100m", "memory": "256Mi"}}
Obj = dict[str, Any]
Live = Callable[[list[Obj]], tuple[FakeKubeAPI, Path]]


def run(*args: str, crash_after: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash_after is not None:
        env[CRASH_ENV] = str(crash_after)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=120)


def fix(kubeconfig: Path, *extra: str, crash_after: int | None = None
        ) -> subprocess.CompletedProcess[str]:
    return run("-m", "registry_doctor.doctor.cli",
               "check", "--kubeconfig", str(kubeconfig), "--check",
               "besteffort-qos", "--fix", *extra, crash_after=crash_after)


def documents(stdout: str) -> list[Obj]:
    """The JSON values on stdout, in order (JSON lines, then the report)."""
    decoder, found, position = json.JSONDecoder(), [], 0
    text = stdout.strip()
    while position < len(text):
        value, position = decoder.raw_decode(text, position)
        found.append(value)
        while position < len(text) and text[position].isspace():
            position += 1
    return found


def test_the_plan_in_json_matches_the_schema(fake_cluster: Live) -> None:
    _, kubeconfig = fake_cluster(broken())
    planned = fix(kubeconfig, "-o", "json")
    report = json.loads(planned.stdout)
    jsonschema.validate(report, SCHEMA)
    [action] = report["results"][0]["remediation"]["actions"]
    assert action["state"] == "planned" and report["fix"]["mode"] == "plan"
    assert planned.returncode == 2


def test_an_applied_run_logs_json_lines_then_the_report(fake_cluster: Live) -> None:
    api, kubeconfig = fake_cluster(broken())
    applied = fix(kubeconfig, "--yes", "-o", "json")
    *lines, report = documents(applied.stdout)
    jsonschema.validate(report, SCHEMA)
    assert [line["event"] for line in lines] == ["lock", "action", "redeploy", "rollout",
                                                 "verify", "unit"]
    assert all(line["run"] == report["fix"]["run"] for line in lines)
    assert applied.returncode == 0 and report["results"][0]["status"] == "ok"
    assert template_resources(api) == FIXED


def test_a_table_shows_each_action_the_rollout_and_the_verdict(fake_cluster: Live) -> None:
    _, kubeconfig = fake_cluster(broken())
    table = fix(kubeconfig, "--yes").stdout
    assert "* applied [safe] besteffort-qos/set-resources" in table
    assert "rollout rc/docker-registry-3: Complete" in table
    assert "besteffort-qos: verified: besteffort-qos crit -> ok" in table


@EVERY_PROFILE
def test_the_cron_run_fixes_and_verifies_on_each_server(fake_cluster: Live,
                                                       kube_profile: str) -> None:
    """What the chart's CronJob runs, on a 3.11 master (lock as a ConfigMap annotation) and a
    current Kubernetes (a Lease)."""
    api, kubeconfig = fake_cluster(registry(kube_profile))
    applied = fix(kubeconfig, "--yes", "-o", "json")
    *lines, report = documents(applied.stdout)
    jsonschema.validate(report, SCHEMA)
    assert applied.returncode == 0 and report["results"][0]["status"] == "ok", applied.stdout
    assert lines[0]["kind"] == report["fix"]["lease"]["kind"] == (
        "Lease" if kube_profile == "kubernetes-1.33" else "ConfigMap")
    assert [u["state"] for u in report["fix"]["units"]] == ["verified"]
    assert not lock_record(api).get("holderIdentity")  # released


@EVERY_PROFILE
def test_server_dry_run_says_when_the_server_has_none(fake_cluster: Live,
                                                      kube_profile: str) -> None:
    api, kubeconfig = fake_cluster(registry(kube_profile))
    table = fix(kubeconfig, "--dry-run=server")
    report = json.loads(fix(kubeconfig, "--dry-run=server", "-o", "json").stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["fix"]["dryRun"]["server"] is api.profile.dry_run
    assert ("server dry run not used: the API server (v3.11.0) has no server-side dry run"
            in table.stdout) is not api.profile.dry_run
    assert not [r for r in api.requests if r.method != "GET" and r.query.get("dryRun") != "All"
                and r.resource != "selfsubjectaccessreviews"]


@EVERY_PROFILE
def test_a_lock_that_cannot_be_taken_still_prints_the_verdicts(fake_cluster: Live,
                                                              kube_profile: str) -> None:
    api, kubeconfig = fake_cluster(registry(kube_profile))
    api.inject("500", resource=lock_resource(api), verb="create")
    table = fix(kubeconfig, "--yes")
    assert table.returncode == 2, table.stdout + table.stderr
    assert "cluster ?" not in table.stdout and "crit" in table.stdout
    assert "not applied: the run lock could not be taken: " in table.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("--from-dir", str(CLUSTERS / "broken"), "--fix", "--yes"),
     "--yes: a dump (--from-dir) cannot be changed"),
    (("--from-dir", str(CLUSTERS / "broken"), "--fix", "--dry-run", "server"),
     "--dry-run=server: a dump (--from-dir) cannot be changed"),
    (("--yes",), "act on the plan of --fix: add --fix"),
    (("--fix", "--dry-run", "later"), "--dry-run later: choose none, client or server"),
    (("--fix", "--yes", "--dry-run", "server"), "choose one"),
    (("--fix", "--requests-cpu", "lots"), "--requests-cpu lots: not a Kubernetes quantity"),
    (("--fix", "--cooldown", "soon"), "--cooldown soon: not a duration"),
    (("--fix-only", "no-such-check"), "unknown check id: no-such-check"),
])
def test_usage_errors_exit_64(args: tuple[str, ...], message: str) -> None:
    result = run("-m", "registry_doctor.doctor.cli", "check", *args)
    assert result.returncode == 64, result.stdout + result.stderr
    assert result.stderr.startswith("registry-doctor: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_plan_from_a_dump_is_printed() -> None:
    result = run("-m", "registry_doctor.doctor.cli", "check", "--from-dir",
                 str(CLUSTERS / "broken"), "--fix", "-o", "json")
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    [action] = report["results"][0]["remediation"]["actions"]
    assert action["rbac"]["verdict"] == "unchecked" and "not checked" in report["fix"]["note"]


def test_rollback_command(fake_cluster: Live) -> None:
    api, kubeconfig = fake_cluster(broken())
    assert fix(kubeconfig, "--yes").returncode == 0
    rollback = ("-m", "registry_doctor.doctor.cli", "rollback", "--kubeconfig", str(kubeconfig))
    preview = run(*rollback)
    assert preview.returncode == 0 and "(add --yes to roll back)" in preview.stdout
    assert template_resources(api) == FIXED
    done = run(*rollback, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert template_resources(api) == {}
    assert "besteffort-qos: rolled-back: rolled back by `registry-doctor rollback`" in done.stdout


def test_permissions_list_every_rule_as_data() -> None:
    result = run("-m", "registry_doctor.doctor.cli", "permissions", "-o", "json")
    document = json.loads(result.stdout)
    rules = {(r["apiGroups"][0], r["resources"][0]): r["verbs"] for r in document["rules"]}
    assert rules[("apps.openshift.io", "deploymentconfigs/instantiate")] == ["create"]
    assert rules[("coordination.k8s.io", "leases")] == ["create", "get", "update"]
    assert rules[("", "configmaps")] == ["create", "get", "update"]  # the lock without Leases
    hosts = {row["neededBy"] for row in document["needs"]}
    assert hosts == {"machinery", "besteffort-qos", "ephemeral-storage", "nfs-scaling",
                     "s3-reachability", "cert-chain-order", "oauth-redirect",
                     "cockpit-port-conflict"}
    [oauth] = [r for r in document["rules"] if r["resources"] == ["oauthclients"]]
    assert oauth["clusterScoped"] and oauth["verbs"] == ["get", "patch"]


def writes_of_a_clean_run(fake_cluster: Live, command: Callable[[Path], list[str]]) -> int:
    _, kubeconfig = fake_cluster(broken())
    clean = run(*command(kubeconfig))
    report = documents(clean.stdout)[-1]
    assert clean.returncode == 0, clean.stdout + clean.stderr
    return report["fix"]["writes"]


def converged(api: FakeKubeAPI) -> None:
    assert len(api.deployment_requests) == 1  # never a second redeploy
    assert {p["status"]["qosClass"] for p in pods(api, "docker-registry-")} == {"Burstable"}
    assert not [u for r in journal(api) for u in r.units if u.state in UNFINISHED]


def qos_fix(kubeconfig: Path) -> list[str]:
    return ["-m", "registry_doctor.doctor.cli", "check", "--kubeconfig", str(kubeconfig), "--check",
            "besteffort-qos", "--fix", "--yes", "-o", "json"]


def test_killed_after_any_write_the_qos_fix_is_old_or_new_and_converges(
        fake_cluster: Live) -> None:
    total = writes_of_a_clean_run(fake_cluster, qos_fix)
    assert total >= 8  # lease, journal, patch, event, journal, instantiate, ..., release
    for step in range(1, total + 1):
        api, kubeconfig = fake_cluster(broken())
        killed = run(*qos_fix(kubeconfig), crash_after=step)
        assert killed.returncode == CRASH_EXIT_CODE, (step, killed.stderr)
        assert template_resources(api) in ({}, FIXED), step
        expire_lock(api)
        rerun = run(*qos_fix(kubeconfig))
        assert rerun.returncode == 0, (step, rerun.stdout, rerun.stderr)
        assert template_resources(api) == FIXED, step
        converged(api)


def storage_fix(kubeconfig: Path) -> list[str]:
    return ["-m", "registry_doctor.doctor.cli", "check", "--kubeconfig", str(kubeconfig), "--check",
            "ephemeral-storage", "--fix", "--yes", "--allow-disruptive", "--claim-size", "5Gi",
            "-o", "json"]


def store(api: FakeKubeAPI) -> Obj:
    dc = api.get_object("deploymentconfigs", "default", "docker-registry")
    return dc["spec"]["template"]["spec"]["volumes"][0]


def test_killed_after_any_write_the_claim_swap_is_old_or_new_and_converges(
        fake_cluster: Live) -> None:
    total = writes_of_a_clean_run(fake_cluster, storage_fix)
    on_claim = {"name": "registry-storage",
                "persistentVolumeClaim": {"claimName": "docker-registry-claim"}}
    for step in range(1, total + 1):
        api, kubeconfig = fake_cluster(broken())
        killed = run(*storage_fix(kubeconfig), crash_after=step)
        assert killed.returncode == CRASH_EXIT_CODE, (step, killed.stderr)
        assert store(api) in ({"name": "registry-storage", "emptyDir": {}}, on_claim), step
        expire_lock(api)
        rerun = run(*storage_fix(kubeconfig))
        assert rerun.returncode == 0, (step, rerun.stdout, rerun.stderr)
        assert store(api) == on_claim, step
        assert len(api.deployment_requests) == 1, step
        assert [c["metadata"]["name"] for c in api.objects("persistentvolumeclaims")] == [
            "docker-registry-claim"]


# plain Kubernetes: the twuni chart's Deployment, found by discovery

KUBERNETES_BROKEN = CLUSTERS / "kubernetes-broken"


def chart_objects(helm_managed: bool) -> list[Obj]:
    objects = [o for o in yaml.safe_load_all((KUBERNETES_BROKEN / "registry.yaml").read_text())
               if o]
    if not helm_managed:  # applied with kubectl from the chart's rendering
        for obj in objects:
            obj["metadata"]["labels"] = {"app": "docker-registry"}
            obj["metadata"]["annotations"] = {}
    return objects


@pytest.mark.parametrize("kube_profile", ["kubernetes-1.33"])
def test_a_kubectl_applied_chart_deployment_is_patched_and_verified(fake_cluster: Live) -> None:
    api, kubeconfig = fake_cluster(chart_objects(helm_managed=False))
    applied = run("-m", "registry_doctor.doctor.cli", "check", "--kubeconfig", str(kubeconfig),
                  "--check", "besteffort-qos", "--fix", "--yes", "-o", "json")
    report = documents(applied.stdout)[-1]
    jsonschema.validate(report, SCHEMA)
    assert report["source"]["platform"] == "kubernetes", applied.stderr
    [action] = report["results"][0]["remediation"]["actions"]
    assert (action["id"], action["object"]["kind"], action["object"]["namespace"]) == (
        "besteffort-qos/set-resources", "Deployment", "registry")
    assert [u["state"] for u in report["fix"]["units"]] == ["verified"], applied.stdout
    deployment = api.get_object("deployments", "registry", "docker-registry")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"] == FIXED


@pytest.mark.parametrize("kube_profile", ["kubernetes-1.33"])
def test_a_helm_managed_deployment_is_left_to_the_charts_values(fake_cluster: Live) -> None:
    api, kubeconfig = fake_cluster(chart_objects(helm_managed=True))
    before = api.get_object("deployments", "registry", "docker-registry")
    applied = run("-m", "registry_doctor.doctor.cli", "check", "--kubeconfig", str(kubeconfig),
                  "--check", "besteffort-qos", "--fix", "--yes", "-o", "json")
    report = documents(applied.stdout)[-1]
    [action] = report["results"][0]["remediation"]["actions"]
    assert (action["id"], action["operation"], action["state"]) == (
        "besteffort-qos/helm-values", "manual", "manual")
    assert action["steps"][0] == ("change the values of Helm release docker-registry (namespace "
                                  "registry): resources: {requests: {cpu: 100m, memory: 256Mi}}")
    assert api.get_object("deployments", "registry", "docker-registry") == before  # nothing written
