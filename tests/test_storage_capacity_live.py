"""storage-capacity against the fake API server: the kubelets' summary API through the API
server (--node-stats; the fake proxies `nodes/<node>/proxy/stats/summary` to summaries set
here, and the chart's rendered roles grant `get` on nodes/proxy only when the admin opts in),
pruning CronJobs as each Kubernetes version serves them, and the chart's --prometheus-url."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import Result
from registry_doctor.doctor.rbac import CLUSTER, Rule
from tests.conftest import CLUSTERS
from tests.fixcluster import registry
from tests.helmchart import container_args, render, rendered_rules
from tests.kubefake import FakeKubeAPI

FakeFactory = Callable[[Path], FakeKubeAPI]
NODE = "infra-node-1.example.com"  # where the healthy cluster's registry pod runs
GIB = 2 ** 30
NODES_PROXY = Rule(CLUSTER, "", "nodes/proxy", ("get",))


def summary(used: int, capacity: int = 20 * GIB) -> dict[str, Any]:
    """A kubelet summary (`/stats/summary`) with the registry's claim and a pod's emptyDir."""
    volume = {"time": "2026-12-06T03:00:00Z", "availableBytes": capacity - used,
              "capacityBytes": capacity, "usedBytes": used, "inodesFree": 1_000_000,
              "inodes": 1_310_720, "inodesUsed": 310_720}
    return {"node": {"nodeName": NODE}, "pods": [
        {"podRef": {"name": "docker-registry-3-7kq2x", "namespace": "default"},
         "volume": [{**volume, "name": "registry-storage",
                     "pvcRef": {"name": "registry-claim", "namespace": "default"}},
                    {**volume, "name": "registry-token-abcde", "usedBytes": 4096}]},
        {"podRef": {"name": "jenkins-1-x", "namespace": "jenkins"},
         "volume": [{**volume, "name": "home", "usedBytes": capacity,
                     "pvcRef": {"name": "registry-claim", "namespace": "jenkins"}}]}]}


def fake_with_node(fake_api: FakeFactory) -> FakeKubeAPI:
    api = fake_api(CLUSTERS / "healthy")
    api.put_object({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})
    return api


def capacity(api: FakeKubeAPI, tmp_path: Path, **settings: Any) -> Result:
    config = RunConfig(kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"), **settings)
    report = engine.run(config, engine.select_checks(["storage-capacity"], config=config))
    result = report.result("storage-capacity")
    assert result is not None
    return result


def test_the_summary_api_measures_the_registrys_claim(fake_api: FakeFactory,
                                                      tmp_path: Path) -> None:
    api = fake_with_node(fake_api)
    api.kubelet_summaries[NODE] = summary(used=19 * GIB)
    result = capacity(api, tmp_path, node_stats=True)
    assert result.status.value == "crit", result
    assert result.summary == "claim registry-claim uses 95% of its bytes and 24% of its inodes"
    assert f"source: the kubelet summary API of node {NODE} (through the API server)" \
        in result.details
    assert "growth: unknown (no day of history in the source)" in result.details
    assert result.metrics["storage_used_bytes"] == 19 * GIB
    assert [r.path for r in api.requests if r.resource == "nodes/proxy"] == [
        f"/api/v1/nodes/{NODE}/proxy/stats/summary"]


def test_without_the_opt_in_no_kubelet_is_asked(fake_api: FakeFactory, tmp_path: Path) -> None:
    api = fake_with_node(fake_api)
    api.kubelet_summaries[NODE] = summary(used=19 * GIB)
    result = capacity(api, tmp_path)
    assert result.status.value == "skip", result
    assert "--node-stats is off" in result.summary
    assert not [r for r in api.requests if r.resource == "nodes/proxy"]


def test_an_unreachable_kubelet_is_unknown_with_the_cause(fake_api: FakeFactory,
                                                          tmp_path: Path) -> None:
    result = capacity(fake_with_node(fake_api), tmp_path, node_stats=True)
    assert result.status.value == "unknown", result
    assert "error trying to reach service" in result.summary


def test_nodes_proxy_is_granted_only_when_opted_in(fake_api: FakeFactory,
                                                  tmp_path: Path) -> None:
    default = render(tmp_path, {})
    assert NODES_PROXY not in rendered_rules(default)
    assert "--node-stats" not in container_args(default, "Deployment")
    opted_in = render(tmp_path, {"checks": {"optIn": {"node_stats": True}}})
    assert NODES_PROXY in rendered_rules(opted_in)
    assert "--node-stats" in container_args(opted_in, "Deployment")
    api = fake_with_node(fake_api)
    api.kubelet_summaries[NODE] = summary(used=5 * GIB)
    api.restrict_to(opted_in, "registry-doctor", "rd-registry-doctor")
    assert capacity(api, tmp_path, node_stats=True).status.value == "ok"
    api.restrict_to(default, "registry-doctor", "rd-registry-doctor")
    refused = capacity(api, tmp_path, node_stats=True)
    assert refused.status.value == "unknown" and "forbidden: get nodes/proxy" in refused.summary


@pytest.mark.parametrize("kube_profile", ["kubernetes-1.33"])
def test_a_batch_v1_cronjob_reports_its_last_success(fake_cluster: Any, kube_profile: str,
                                                    tmp_path: Path) -> None:
    """Kubernetes 1.21+ serves CronJob as batch/v1 (1.25+ only so), with
    status.lastSuccessfulTime; OpenShift 3.11's batch/v1beta1 one is in test_live's cases.
    The details say it whatever the verdict (here: the broken registry's emptyDir, a skip)."""
    api, _ = fake_cluster(registry(kube_profile))
    api.put_object(yaml.safe_load("""
        apiVersion: batch/v1
        kind: CronJob
        metadata: {name: image-pruner, namespace: default}
        spec:
          schedule: "0 0 * * *"
          suspend: true
          jobTemplate:
            spec:
              template:
                spec:
                  restartPolicy: Never
                  containers:
                  - name: image-pruner
                    image: quay.io/openshift/origin-cli:4.14
                    command: [oc]
                    args: [adm, prune, images, --keep-tag-revisions=3, --confirm]
        status: {lastSuccessfulTime: "2026-11-30T00:03:12Z"}
    """))
    result = capacity(api, tmp_path)
    assert "image cleanup: cronjob/image-pruner runs `prune images` on schedule '0 0 * * *' but "\
        "is suspended (spec.suspend=true): last success 2026-11-30T00:03:12Z "\
        "(status.lastSuccessfulTime)" in result.details, result.details


def test_the_chart_passes_the_prometheus_url(tmp_path: Path) -> None:
    assert not [a for a in container_args(render(tmp_path, {}), "Deployment")
                if a.startswith("--prometheus-url")]
    url = "http://prometheus.monitoring.svc:9090"
    manifests = render(tmp_path, {"checks": {"prometheusUrl": url}})
    assert f"--prometheus-url={url}" in container_args(manifests, "Deployment")
