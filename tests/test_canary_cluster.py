"""The check push-pull-canary in a cluster, through the engine: targets come from the Service,
its Route and its Endpoints, as the snapshot holds them.

A loopback "cluster": registry pods are real registries on 127.0.0.1 and 127.0.0.2 (same port,
as pods share a container port), the Service's cluster IP 127.0.0.3 is a round-robin balancer
in front of them. The objects come from a dump, so no API server is needed; the canary runs as
it does live.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import Report, Result, Status
from registry_doctor.doctor.probes import ProbeError, canary
from registry_doctor.doctor.probes.canary import Target, cluster_targets, run_canary
from registry_doctor.doctor.probes.registry_client import Address, Credentials
from registry_doctor.doctor.snapshot import Snapshot, collect
from registry_doctor.doctor.snapshot.dump import write_dump
from registry_doctor.doctor.snapshot.offline import DumpSource
from tests.registry_harness import (
    Registry,
    RoundRobinProxy,
    filesystem,
    moto_s3,
    port_free_on,
    registry,
    self_signed,
    token_service,
)

NS, NAME = "default", "docker-registry"
LABELS = {"docker-registry": "default"}
SERVICE_IP = "127.0.0.3"


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, **extra}


def service(port: int, cluster_ip: str = SERVICE_IP) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(NAME),
            "spec": {"clusterIP": cluster_ip, "selector": LABELS, "ports": [
                {"name": "5000-tcp", "port": port, "protocol": "TCP", "targetPort": 5000}]}}


def endpoints(port: int, ready: list[tuple[str, str]],
              not_ready: list[tuple[str, str]] = ()) -> dict[str, Any]:
    def addresses(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
        return [{"ip": ip, "targetRef": {"kind": "Pod", "name": pod, "namespace": NS}}
                for ip, pod in pairs]

    subset = {"addresses": addresses(ready),
              "ports": [{"name": "5000-tcp", "port": port, "protocol": "TCP"}]}
    if not_ready:
        subset["notReadyAddresses"] = addresses(list(not_ready))
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta(NAME),
            "subsets": [subset]}


def route(host: str, termination: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"host": host, "to": {"kind": "Service", "name": NAME}}
    if termination:
        spec["tls"] = {"termination": termination}
    return {"apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": meta(NAME),
            "spec": spec}


def workload(pods: list[str]) -> list[dict[str, Any]]:
    """The registry DeploymentConfig and its running pods (whose logs the check reads)."""
    dc = {"apiVersion": "apps.openshift.io/v1", "kind": "DeploymentConfig",
          "metadata": meta(NAME, labels=LABELS),
          "spec": {"replicas": len(pods), "selector": LABELS, "template": {
              "metadata": {"labels": LABELS},
              "spec": {"containers": [{"name": "registry", "image": "registry"}]}}}}
    return [dc] + [{"apiVersion": "v1", "kind": "Pod", "metadata": meta(p, labels=LABELS),
                    "spec": {"containers": [{"name": "registry"}]},
                    "status": {"phase": "Running"}} for p in pods]


def judge(tmp_path: Path, objects: list[dict[str, Any]],
          logs: dict[tuple[str, str], str] | None = None) -> Result:
    dump = tmp_path / "dump"
    write_dump(dump, {"objects": objects}, logs or {}, include_secrets=True)
    config = RunConfig(from_dir=dump, probes=True, canary=True, probe_timeout=15)
    report: Report = engine.run(config, engine.select_checks(["push-pull-canary"],
                                                             config=config))
    result = report.result("push-pull-canary")
    assert result is not None
    return result


def shown(result: Result) -> str:
    return f"{result.status.value}: {result.summary}\n" + "\n".join(result.details)


@contextlib.contextmanager
def replicas(tmp_path: Path, shared: bool) -> Iterator[tuple[int, int]]:
    """Two registry pods on one port (127.0.0.1, 127.0.0.2) and the Service balancer in front:
    (pod port, service port). `shared`: one store for both, as on a ReadWriteMany claim."""
    port = port_free_on("127.0.0.1", "127.0.0.2")
    stores = [tmp_path / "store"] * 2 if shared else [tmp_path / "a" / "s", tmp_path / "b" / "s"]
    with registry(tmp_path / "a", filesystem(stores[0]), port=port) as one, \
            registry(tmp_path / "b", filesystem(stores[1]), host="127.0.0.2", port=port) as two:
        proxy = RoundRobinProxy([(one.host, port), (two.host, port)], host=SERVICE_IP)
        try:
            yield port, proxy.port
        finally:
            proxy.close()


PODS = [("127.0.0.1", "docker-registry-1-aaaaa"), ("127.0.0.2", "docker-registry-1-bbbbb")]


def test_replicas_on_shared_storage_are_ok(tmp_path: Path) -> None:
    with replicas(tmp_path, shared=True) as (port, service_port):
        result = judge(tmp_path, [service(service_port), endpoints(port, PODS)])
    assert result.status is Status.OK, shown(result)
    assert result.summary == ("pushed, read back and deleted a canary image in "
                              "registry-doctor/canary through service docker-registry, "
                              "2 endpoints")
    assert any(d.startswith("endpoint 127.0.0.2 (pod docker-registry-1-bbbbb) at "
                            "http://127.0.0.2:") for d in result.details), shown(result)
    assert {r.ref() for r in result.resources} == {
        "Service/default/docker-registry", "Pod/default/docker-registry-1-aaaaa",
        "Pod/default/docker-registry-1-bbbbb"}


def test_replicas_with_their_own_storage_are_crit_naming_the_pods(tmp_path: Path) -> None:
    """emptyDir or hostPath with replicas > 1: an image pushed through one pod is missing
    through the other, every time (not by the luck of the balancer)."""
    with replicas(tmp_path, shared=False) as (port, service_port):
        result = judge(tmp_path, [service(service_port), endpoints(port, PODS)])
    assert result.status is Status.CRIT, shown(result)
    assert "reads of an image pushed through another target failed: the registry replicas " \
           "do not serve the same images" in result.summary
    # The Service balances over both pods: its own reads are inconsistent too.
    assert result.summary.endswith("(and 1 more finding)")
    assert "crit: through service docker-registry: pull failed (inconsistent)" in shown(result)
    assert any(d.startswith("pushed through endpoint 127.0.0.1 (pod docker-registry-1-aaaaa)"
                            ", read through endpoint 127.0.0.2 (pod docker-registry-1-bbbbb): "
                            "manifest sha256:") and "MANIFEST_UNKNOWN" in d
               for d in result.details), shown(result)


@pytest.mark.parametrize(("in_cluster", "status"), [(True, Status.CRIT),
                                                     (False, Status.UNKNOWN)])
def test_one_dead_pod_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            in_cluster: bool, status: Status) -> None:
    """The Service still works (it balances over the live pod), the dead endpoint shows by
    name. From outside the cluster network an unreachable pod IP proves nothing: unknown."""
    if in_cluster:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    else:
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    port = port_free_on("127.0.0.1", "127.0.0.4")
    with registry(tmp_path, filesystem(tmp_path / "store"), port=port) as live:
        proxy = RoundRobinProxy([(live.host, port)], host=SERVICE_IP)
        try:
            result = judge(tmp_path, [service(proxy.port), endpoints(
                port, [PODS[0], ("127.0.0.4", "docker-registry-1-dead0")])])
        finally:
            proxy.close()
    assert result.status is status, shown(result)
    assert result.summary.startswith("through endpoint 127.0.0.4 (pod docker-registry-1-dead0)")
    reason = "refused the connection" if in_cluster else "not reachable from this machine"
    assert reason in result.summary
    assert any(d.startswith("service docker-registry at http://127.0.0.3:") and "delete ok" in d
               for d in result.details), shown(result)


def test_route_failing_while_the_service_works_is_warn(tmp_path: Path) -> None:
    """Clients inside the cluster (builds, deployments) still push and pull; the Route as seen
    from inside may differ from what outside clients get, so it warns."""
    with registry(tmp_path, filesystem(tmp_path / "store")) as reg:
        result = judge(tmp_path, [service(reg.port, cluster_ip="127.0.0.1"),
                                  route("127.0.0.5", None)])
    assert result.status is Status.WARN, shown(result)
    assert result.summary.startswith("through route docker-registry (127.0.0.5): connect "
                                     "failed (unreachable)")


def test_s3_failure_names_the_signature_in_the_pod_log(tmp_path: Path) -> None:
    """The registry log (read before the canary) shows earlier failures with the known S3
    signature; the real registry wrote it when a push met the removed bucket."""
    pod = "docker-registry-2-s3aaa"
    with moto_s3(tmp_path / "s3") as s3, \
            registry(tmp_path / "reg", s3.storage()) as reg:
        s3.remove_bucket()
        _push_once(reg)
        logs = {(NS, pod): reg.log_text()}
        objects = [service(reg.port, cluster_ip="127.0.0.1"), *workload([pod])]
        result = judge(tmp_path, objects, logs)
    assert result.status is Status.CRIT, shown(result)
    assert "push failed (server-error): start blob upload: HTTP 500" in result.summary
    assert any(d.startswith(f"pod/{NS}/{pod} log (read before the canary): ")
               and "match s3-no-such-bucket (the S3 bucket does not exist" in d
               for d in result.details), shown(result)
    assert not any(s3.secret_key in d for d in result.details)


def test_in_cluster_credentials_are_the_cluster_token_and_never_shown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Live, the canary authenticates with the token of the tool's cluster credentials (here
    an `oc login` kubeconfig), sent to the registry's token service as OpenShift expects; the
    probe data (what the exporter reads) and the verdict never hold the token."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    token = "sha256~cluster-token-never-shown"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    keys = self_signed(tmp_path / "keys", "token-signer")
    with token_service(keys, password=token) as tokens, \
            registry(tmp_path, filesystem(tmp_path / "store"),
                     auth=tokens.registry_auth()) as reg:
        write_dump(tmp_path / "dump", {"objects": [
            service(reg.port, cluster_ip="127.0.0.1"),
            endpoints(reg.port, [("127.0.0.1", "docker-registry-1-aaaaa")])]}, {})
        config = RunConfig(kubeconfig=kubeconfig, canary=True, probe_timeout=15)
        snapshot = collect(DumpSource(tmp_path / "dump"), {"services", "endpoints"}, config)
        data = canary.run(snapshot, config, config.probe_timeout)
        report = engine.run(config, engine.select_checks(["push-pull-canary"], config=config),
                            source=DumpSource(tmp_path / "dump"))
    assert data.credentials == "the cluster credentials' bearer token"
    assert {r["user"] for r in tokens.requests} == {"registry-doctor"}
    assert data.phases.keys() == {"service", "endpoint"}
    for phases in data.phases.values():
        assert phases.keys() == {"connect", "auth", "push", "pull", "delete"}
        assert all(p.ok is True and isinstance(p.seconds, float) for p in phases.values())
    assert data.cross_reads and all(c.ok for c in data.cross_reads)
    result = report.result("push-pull-canary")
    assert result is not None and result.status is Status.OK, result
    assert token not in json.dumps(asdict(data)) + json.dumps(report.to_dict())


def test_the_canary_ends_within_its_probe_timeout(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Addresses that accept TCP and never answer: each target fails with a timeout inside
    the probe's deadline, so the engine gets the probe's own findings, not a lost probe."""
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    with socket.create_server(("127.0.0.6", 0)) as hung:
        port = hung.getsockname()[1]
        dump = tmp_path / "dump"
        write_dump(dump, {"objects": [service(port, cluster_ip="127.0.0.6"),
                                      endpoints(port, [("127.0.0.6", "docker-registry-1-hung")])
                                      ]}, {})
        config = RunConfig(from_dir=dump, probes=True, canary=True, probe_timeout=1)
        report = engine.run(config, engine.select_checks(["push-pull-canary"], config=config))
    result = report.result("push-pull-canary")
    assert result is not None and result.status is Status.CRIT, result
    assert "connect failed (timeout)" in result.summary


def _push_once(reg: Registry) -> None:
    target = Target("url", Address.parse(reg.url), "registry")
    data = run_canary([target], Credentials(), "registry-doctor/canary", 10)
    assert data.targets[0].failure is not None
    assert data.targets[0].failure.kind == "server-error"


def snapshot_of(objects: list[dict[str, Any]]) -> Snapshot:
    collections: dict[str, list[dict[str, Any]]] = {"services": [], "routes": [],
                                                    "endpoints": []}
    for obj in objects:
        collections[obj["kind"].lower() + ("" if obj["kind"] == "Endpoints" else "s")].append(obj)
    return Snapshot(config=RunConfig(), source={}, collections=collections)


def test_targets_are_the_service_each_route_and_each_ready_endpoint() -> None:
    snapshot = snapshot_of([
        service(5000, cluster_ip="172.30.1.1"),
        route("docker-registry-default.apps.example.com", "passthrough"),
        endpoints(5000, [("10.128.0.12", "docker-registry-3-7kq2x"), ("10.129.0.7", "")],
                  not_ready=[("10.130.0.2", "docker-registry-3-zz9")]),
    ])
    targets, skipped = cluster_targets(snapshot, RunConfig())
    assert [(t.kind, str(t.address), t.name) for t in targets] == [
        ("service", "https://172.30.1.1:5000", "service docker-registry"),
        ("route", "https://docker-registry-default.apps.example.com:443",
         "route docker-registry (docker-registry-default.apps.example.com)"),
        ("endpoint", "https://10.128.0.12:5000",
         "endpoint 10.128.0.12 (pod docker-registry-3-7kq2x)"),
        ("endpoint", "https://10.129.0.7:5000", "endpoint 10.129.0.7"),
    ]
    assert [t.plain_fallback for t in targets] == [True, False, True, True]
    assert not any(t.verify_tls for t in targets)
    assert skipped == ["endpoint 10.130.0.2 (pod docker-registry-3-zz9) is not ready: "
                       "not probed"]


def test_route_without_tls_is_plain_http_and_headless_service_is_skipped() -> None:
    snapshot = snapshot_of([service(5000, cluster_ip="None"), route("registry.example", None)])
    targets, skipped = cluster_targets(snapshot, RunConfig())
    assert [str(t.address) for t in targets] == ["http://registry.example:80"]
    assert skipped == ["service docker-registry has no cluster IP (headless): only its "
                       "endpoints probed"]


def test_a_route_is_probed_at_the_hosts_its_routers_admitted() -> None:
    served = route("docker-registry-default.apps.example.com", "edge")
    served["status"] = {"ingress": [
        {"host": "registry.apps.example.com", "routerName": "default",
         "conditions": [{"type": "Admitted", "status": "True"}]},
        {"host": "registry.internal.example.com", "routerName": "sharded",
         "conditions": [{"type": "Admitted", "status": "False",
                         "reason": "HostAlreadyClaimed"}]}]}
    targets, _ = cluster_targets(snapshot_of([service(5000, cluster_ip="None"), served]),
                                 RunConfig())
    assert [str(t.address) for t in targets] == ["https://registry.apps.example.com:443"]


def test_no_service_or_no_port_cannot_be_probed() -> None:
    with pytest.raises(ProbeError, match="service docker-registry not found in namespace "
                                         "default: nothing to push to"):
        cluster_targets(snapshot_of([]), RunConfig())
    portless = service(5000)
    portless["spec"]["ports"] = "garbage"
    with pytest.raises(ProbeError, match=r"has no TCP port in spec\.ports"):
        cluster_targets(snapshot_of([portless]), RunConfig())
