"""`check --fix --yes --exit-policy fix`, as the chart's CronJob runs it: the job fails only when
a fix failed or nothing could be judged; a crit that needs a person is in the report only."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.fixcluster import broken
from tests.kubefake import FakeKubeAPI
from tests.test_cli import kubeconfig_for
from tests.test_remediation_cli import documents
from tests.tools import free_port

Obj = dict[str, Any]
Live = Callable[[list[Obj]], tuple[FakeKubeAPI, Path]]


def fix_run(kubeconfig: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_doctor.doctor.cli",
                           "check", "--kubeconfig",
                           str(kubeconfig), "--fix", "--yes", "-o", "json", *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def statuses(run: subprocess.CompletedProcess[str]) -> dict[str, str]:
    report = documents(run.stdout)[-1]
    return {r["check"]: r["status"] for r in report["results"]}


def test_a_crit_that_needs_a_person_does_not_fail_the_job(fake_cluster: Live) -> None:
    _, kubeconfig = fake_cluster(broken())
    run = fix_run(kubeconfig, "--exit-policy", "fix")
    report = documents(run.stdout)[-1]
    # besteffort-qos was fixed; ephemeral-storage stays crit: its fix is a person's choice.
    assert statuses(run)["besteffort-qos"] == "ok"
    assert statuses(run)["ephemeral-storage"] == "crit"
    [manual] = report["results"][[r["check"] for r in report["results"]].index(
        "ephemeral-storage")]["remediation"]["actions"]
    assert manual["state"] == "manual"
    assert report["exit_code"] == 2  # the report keeps the verdicts' code
    assert run.returncode == 0, run.stderr
    assert "exit 0 (--exit-policy fix): no fix failed; the verdicts' exit code is 2" in run.stderr


def test_the_default_policy_still_exits_with_the_verdicts(fake_cluster: Live) -> None:
    _, kubeconfig = fake_cluster(broken())
    run = fix_run(kubeconfig)
    assert run.returncode == 2 and statuses(run)["ephemeral-storage"] == "crit"
    assert "--exit-policy" not in run.stderr


@pytest.mark.parametrize("fault", ["rollout", "write"])
def test_a_failed_fix_fails_the_job(fake_cluster: Live, fault: str) -> None:
    api, kubeconfig = fake_cluster(broken())
    if fault == "rollout":
        api.deployer.outcomes = ["Failed"]  # rolled back
    else:
        api.inject("500", resource="deploymentconfigs", verb="patch")  # not applied
    run = fix_run(kubeconfig, "--exit-policy", "fix", "--check", "besteffort-qos")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "exit 2 (--exit-policy fix): a fix failed: besteffort-qos" in run.stderr


def test_an_unreachable_cluster_fails_the_job(tmp_path: Path) -> None:
    kubeconfig = kubeconfig_for(tmp_path / "kubeconfig", f"https://127.0.0.1:{free_port()}")
    run = fix_run(kubeconfig, "--exit-policy", "fix")
    assert run.returncode == 3, run.stdout + run.stderr
    assert set(json.loads(run.stdout)["counts"].items()) >= {("ok", 0), ("crit", 0)}
    assert "exit 3 (--exit-policy fix): nothing could be judged" in run.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--fix", "--exit-policy", "never"), "--exit-policy never: choose checks or fix"),
    (("--exit-policy", "fix"), "act on the plan of --fix: add --fix"),
])
def test_exit_policy_usage_errors(args: tuple[str, ...], message: str) -> None:
    run = subprocess.run([sys.executable, "-m", "registry_doctor.doctor.cli", "check", *args],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 64 and message in run.stderr, run.stderr
