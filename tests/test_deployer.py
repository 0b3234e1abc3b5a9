"""The fake API server's deployer: rollouts of DeploymentConfigs, Deployments and DaemonSets
as remediation tests need them, driven over HTTP and by the real kubectl."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixcluster import broken, edited
from tests.kubefake import FakeKubeAPI
from tests.kubefake.deployer import qos_class
from tests.test_remediation import as_deployment
from tests.tools import find_tool

Obj = dict[str, Any]
DC = "/apis/apps.openshift.io/v1/namespaces/default/deploymentconfigs/docker-registry"
Start = Callable[[list[Obj]], tuple[FakeKubeAPI, Path]]


def instantiate(api: FakeKubeAPI) -> requests.Response:
    return requests.post(f"{api.url}{DC}/instantiate", timeout=10, json={
        "kind": "DeploymentRequest", "apiVersion": "apps.openshift.io/v1",
        "name": "docker-registry", "latest": True, "force": True})


def phase(api: FakeKubeAPI, name: str) -> str:
    controller = api.get_object("replicationcontrollers", "default", name)
    return controller["metadata"]["annotations"]["openshift.io/deployment.phase"]


def pod_names(api: FakeKubeAPI) -> list[str]:
    return sorted(p["metadata"]["name"] for p in api.objects("pods"))


def with_resources(resources: Obj) -> list[Obj]:
    def change(dc: Obj) -> None:
        dc["spec"]["template"]["spec"]["containers"][0]["resources"] = resources
    return edited(broken(), "DeploymentConfig", "docker-registry", change)


@pytest.mark.parametrize(("resources", "qos"), [
    ({}, "BestEffort"),
    ({"requests": {"cpu": "100m"}}, "Burstable"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
    ({"requests": {"cpu": "0"}}, "BestEffort"),
])
def test_instantiate_rolls_out_new_pods(fake_cluster: Start, resources: Obj, qos: str) -> None:
    api, _ = fake_cluster(with_resources(resources))
    answer = instantiate(api)
    assert answer.status_code == 201 and answer.json()["status"]["latestVersion"] == 3
    assert phase(api, "docker-registry-3") == "Complete"
    new = api.objects("pods")
    assert len(new) == 2 and all(p["metadata"]["name"].startswith("docker-registry-3-")
                                 and p["metadata"]["labels"]["deployment"] == "docker-registry-3"
                                 and p["status"]["qosClass"] == qos for p in new)


def test_a_failed_rollout_keeps_the_old_pods(fake_cluster: Start) -> None:
    api, _ = fake_cluster(broken())
    before = pod_names(api)
    api.deployer.outcomes = ["Failed"]
    instantiate(api)
    assert phase(api, "docker-registry-3") == "Failed" and pod_names(api) == before
    instantiate(api)
    assert phase(api, "docker-registry-4") == "Complete" and pod_names(api) != before


def test_a_running_rollout_fails_when_cancelled(fake_cluster: Start) -> None:
    api, _ = fake_cluster(broken())
    api.deployer.outcomes = ["Running"]
    instantiate(api)
    assert phase(api, "docker-registry-3") == "Running"
    requests.patch(f"{api.url}/api/v1/namespaces/default/replicationcontrollers/"
                   "docker-registry-3", timeout=10,
                   data=json.dumps({"metadata": {"annotations": {
                       "openshift.io/deployment.cancelled": "true"}}}),
                   headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
    assert phase(api, "docker-registry-3") == "Failed"


def test_a_paused_config_is_not_instantiated(fake_cluster: Start) -> None:
    api, _ = fake_cluster(edited(broken(), "DeploymentConfig", "docker-registry",
                                 lambda dc: dc["spec"].update(paused=True)))
    answer = instantiate(api)
    assert (answer.status_code, answer.json()["message"]) == (
        400, 'cannot trigger a deployment for "docker-registry" because it is paused')
    assert api.objects("replicationcontrollers") == []


@pytest.mark.parametrize("triggers", [False, True])
def test_template_changes_start_a_rollout_only_with_config_change_triggers(
        fake_cluster: Start, triggers: bool) -> None:
    api, _ = fake_cluster(broken())
    api.deployer.config_change_triggers = triggers
    requests.patch(f"{api.url}{DC}", timeout=10, data=json.dumps(
        {"spec": {"template": {"metadata": {"labels": {"tier": "infra"}}}}}),
        headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
    dc = api.get_object("deploymentconfigs", "default", "docker-registry")
    assert dc["status"]["observedGeneration"] == dc["metadata"]["generation"]
    assert dc["status"]["latestVersion"] == (3 if triggers else 2)
    assert len(api.objects("replicationcontrollers")) == (1 if triggers else 0)


def test_kubectl_rollout_restart_rolls_a_deployment_out(fake_cluster: Start,
                                                        tmp_path: Path) -> None:
    api, kubeconfig = fake_cluster(as_deployment(broken()))
    kubectl = find_tool("kubectl")
    restarted = subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), "rollout", "restart",
         "deployment/docker-registry", "-n", "default"], capture_output=True, text=True,
        timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert restarted.returncode == 0, restarted.stderr
    deployment = api.get_object("deployments", "default", "docker-registry")
    assert deployment["status"]["updatedReplicas"] == 2
    assert deployment["status"]["observedGeneration"] == deployment["metadata"]["generation"]
    assert all("pod-template-hash" in p["metadata"]["labels"] for p in api.objects("pods"))


def test_a_paused_deployment_does_not_roll_out(fake_cluster: Start) -> None:
    api, _ = fake_cluster(edited(as_deployment(broken()), "Deployment", "docker-registry",
                                 lambda d: d["spec"].update(paused=True)))
    before = pod_names(api)
    requests.patch(f"{api.url}/apis/apps/v1/namespaces/default/deployments/docker-registry",
                   timeout=10, data=json.dumps({"spec": {"template": {"metadata": {
                       "labels": {"tier": "infra"}}}}}),
                   headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
    assert pod_names(api) == before


def test_qos_counts_init_containers_and_defaults_requests_from_limits() -> None:
    assert qos_class({"initContainers": [{"resources": {"requests": {"memory": "1Mi"}}}],
                      "containers": [{}]}) == "Burstable"
    assert qos_class({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                                                    "requests": {"cpu": "500m"}}}]}) == \
        "Burstable"
