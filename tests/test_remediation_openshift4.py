"""Remediation on OpenShift 4 through the real client against the openshift-4.14 fake: every
fix is a change of the operator's Config CR (never the Deployment it writes and would revert),
verified by re-reading it, with no rollout of ours; the scope guard allows that one object."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from registry_doctor.checks import all_checks
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.fix import flow
from registry_doctor.doctor.fix.journal import SECRET_NAME, RunRecord
from registry_doctor.doctor.fix.model import FixOptions, ObjectRef
from registry_doctor.doctor.fix.scope import Managed
from registry_doctor.doctor.model import Report
from tests.conftest import CLUSTERS
from tests.kubefake import FakeKubeAPI

ON_OPENSHIFT4 = pytest.mark.parametrize("kube_profile", ["openshift-4.14"])
NAMESPACE, REGISTRY = "openshift-image-registry", "image-registry"
CONFIG_REF = {"apiVersion": "imageregistry.operator.openshift.io/v1", "kind": "Config",
              "namespace": None, "name": "cluster"}
Obj = dict[str, Any]


def fix(api: FakeKubeAPI, tmp_path: Path, check: str, **options: Any) -> Report:
    config = RunConfig(kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"), probes=False,
                       names_given=frozenset())  # as the CLI: the platform names them
    lines: list[Obj] = []
    return flow.fix(config, FixOptions(**{"apply": True, "poll_seconds": 0.05, **options}),
                    [all_checks()[check]], lines.append)


def actions(report: Report, check: str) -> list[Obj]:
    result = report.result(check)
    assert result is not None and result.remediation is not None, report
    return list(result.remediation.actions)


def operator_spec(api: FakeKubeAPI) -> Obj:
    config = api.get_object("configs", None, "cluster")
    assert config is not None
    return config["spec"]


def deployment(api: FakeKubeAPI) -> Obj:
    found = api.get_object("deployments", NAMESPACE, REGISTRY)
    assert found is not None
    return found


def journal(api: FakeKubeAPI) -> list[RunRecord]:
    secret = api.get_object("secrets", NAMESPACE, SECRET_NAME)
    assert secret is not None
    return [RunRecord.from_json(json.loads(base64.b64decode(v)))
            for _, v in sorted(secret["data"].items())]


@ON_OPENSHIFT4
@pytest.mark.parametrize(("check", "options", "spec"), [
    ("besteffort-qos", {}, {"resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}}),
    ("nfs-scaling", {"allow_disruptive": True}, {"replicas": 1}),
    ("ephemeral-storage", {"allow_disruptive": True},
     {"storage": {"managementState": "Managed", "pvc": {"claim": ""}}}),
], ids=["set-resources", "scale-to-one", "use-claim"])
def test_a_fix_changes_the_operators_config_and_is_verified_by_rereading_it(
        fake_api: Callable[[Path], FakeKubeAPI], tmp_path: Path, check: str,
        options: Obj, spec: Obj) -> None:
    api = fake_api(CLUSTERS / "openshift4-broken")
    before = deployment(api)
    report = fix(api, tmp_path, check, **options)
    [action] = actions(report, check)
    assert (action["object"], action["redeploy"], action["state"]) == (
        CONFIG_REF, None, "applied"), action["message"]
    assert spec.items() <= operator_spec(api).items()
    after = deployment(api)  # the operator renders it; no write or rollout of ours
    assert after["spec"] == before["spec"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    changed = {r.path for r in api.requests if r.method == "PATCH"}
    assert changed == {"/apis/imageregistry.operator.openshift.io/v1/configs/cluster"}
    [run] = journal(api)
    [unit] = run.units
    assert unit.state == "verified" and "the operator rolls the registry out" in unit.message
    # the backup of the Config holds no secret: its spec.httpSecret is redacted
    assert "9f2c1d0e8b7a6c5d4e3f2a1b0c9d8e7f" not in json.dumps(run.to_json())


@ON_OPENSHIFT4
def test_the_plan_says_how_the_config_changes_and_changes_nothing(
        fake_api: Callable[[Path], FakeKubeAPI], tmp_path: Path) -> None:
    api = fake_api(CLUSTERS / "openshift4-broken")
    report = fix(api, tmp_path, "besteffort-qos", apply=False)
    [action] = actions(report, "besteffort-qos")
    assert action["state"] == "planned" and action["rbac"]["verdict"] == "allowed"
    assert action["patch"]["body"] == [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": "61190"},
        {"op": "add", "path": "/spec/resources/requests",
         "value": {"cpu": "100m", "memory": "256Mi"}}]
    assert "the operator rolls the registry out from " \
        "configs.imageregistry.operator.openshift.io/cluster" in action["notes"]
    assert [r for r in api.requests if r.method == "PATCH"] == []


def test_the_scope_allows_the_operators_config_named_cluster_only() -> None:
    managed = Managed.of(RunConfig(namespace=NAMESPACE, registry_name=REGISTRY), FixOptions())
    config = {"apiVersion": "imageregistry.operator.openshift.io/v1", "kind": "Config"}
    assert managed.refusal(ObjectRef.of({**config, "metadata": {"name": "cluster"}})) is None
    other = managed.refusal(ObjectRef.of({**config, "metadata": {"name": "other"}}))
    assert other is not None and "not one of the objects registry-doctor manages" in other
