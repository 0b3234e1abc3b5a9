"""Keeps tests/kubefake honest: the real kubectl and the real kubernetes client against it."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import requests
import urllib3
from kubernetes.client import ApiClient, ApiException, Configuration
from kubernetes.client.rest import RESTResponse

from registry_doctor.doctor.snapshot.dump import load_dump
from tests.kubefake import FakeKubeAPI
from tests.kubefake.patches import PatchError, json_patch, merge_patch, strategic_merge_patch
from tests.kubefake.profiles import PROFILES
from tests.kubefake.pytest_plugin import ALL_PROFILES
from tests.kubefake.selectors import (
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from tests.tools import find_tool

FIXTURE = Path(__file__).parent / "fixtures" / "kubefake"
POD_1, POD_2 = "docker-registry-1-8j5vz", "docker-registry-1-q2wkm"
DC_PATH = "/apis/apps.openshift.io/v1/namespaces/default/deploymentconfigs/docker-registry"
MERGE, STRATEGIC, JSON_PATCH = ("application/merge-patch+json",
                                "application/strategic-merge-patch+json",
                                "application/json-patch+json")


class Kubectl:
    """The real kubectl, with its own HOME so no discovery cache outlives a test."""

    def __init__(self, binary: Path, kubeconfig: Path, home: Path) -> None:
        self.binary, self.kubeconfig, self.home = binary, kubeconfig, home
        home.mkdir(exist_ok=True)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True, text=True, timeout=120,
            env={"HOME": str(self.home), "PATH": "/usr/bin:/bin"})
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)


@pytest.fixture
def api(fake_api: Callable[[Path], FakeKubeAPI]) -> FakeKubeAPI:
    return fake_api(FIXTURE)


@pytest.fixture
def kubeconfig(api: FakeKubeAPI, tmp_path: Path) -> Path:
    return api.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    return Kubectl(find_tool("kubectl"), kubeconfig, tmp_path / "home")


@pytest.fixture
def configuration(kubeconfig: Path) -> Configuration:
    configuration = Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig),
                                       client_configuration=configuration)
    return configuration


@pytest.fixture
def client(configuration: Configuration) -> Iterator[ApiClient]:
    with ApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture
def no_retry_client(configuration: Configuration) -> Iterator[ApiClient]:
    """A client whose urllib3 raises connection errors instead of retrying them."""
    configuration.retries = False
    with ApiClient(configuration) as api_client:
        yield api_client


def status_of(error: ApiException) -> dict[str, Any]:
    return json.loads(error.body)


def call(client: ApiClient, method: str, path: str, body: Any = None) -> RESTResponse:
    """A raw request through ApiClient.call_api, as code without a typed API does it."""
    headers = {"Content-Type": "application/json"} if body is not None else None
    method, url, headers, body, _ = client.param_serialize(method, path, header_params=headers,
                                                           body=body)
    return client.call_api(method, url, headers, body)


def names(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(obj["metadata"]["name"] for obj in objects)


def dc(api: FakeKubeAPI) -> dict[str, Any]:
    found = api.get_object("deploymentconfigs", "default", "docker-registry")
    assert found is not None
    return found


# kubectl


def test_kubectl_gets_every_listable_kind(api: FakeKubeAPI, kubectl: Kubectl) -> None:
    listable = [r for r in api.profile.resources if "list" in r.verbs]
    kinds = [r.qualified for r in listable]
    listed = kubectl.json("get", ",".join(kinds), "-A")["items"]

    def identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
        meta = obj["metadata"]
        return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]

    expected = {identity(obj) for obj in load_dump(FIXTURE).objects}
    assert {identity(obj) for obj in listed} == expected
    assert {r.resource for r in api.requests if r.verb == "list"} == {r.plural for r in listable}


def test_kubectl_falls_back_from_aggregated_discovery(api: FakeKubeAPI,
                                                      kubectl: Kubectl) -> None:
    kubectl("get", "routes", "-n", "default")
    fetched = {r.path for r in api.requests if r.resource is None}
    # Only legacy discovery reads the API group documents one by one.
    assert {"/api", "/apis", "/api/v1", "/apis/route.openshift.io/v1"} <= fetched


def test_kubectl_label_selectors(kubectl: Kubectl) -> None:
    equality = kubectl("get", "pods", "-l", "docker-registry=default", "-n", "default",
                       "-o", "name")
    assert equality.stdout.split() == [f"pod/{POD_1}", f"pod/{POD_2}"]
    set_based = kubectl("get", "pods", "-l", "deployment in (docker-registry-1),!canary",
                        "-n", "default", "-o", "name")
    assert set_based.stdout.split() == [f"pod/{POD_1}", f"pod/{POD_2}"]
    none = kubectl("get", "pods", "-l", "docker-registry!=default", "-A", "-o", "name")
    assert none.stdout == ""


def test_kubectl_field_selectors(kubectl: Kubectl) -> None:
    on_node_1 = kubectl("get", "pods", "--field-selector", "spec.nodeName=node-1", "-A")
    assert POD_1 in on_node_1.stdout and POD_2 not in on_node_1.stdout
    running = kubectl("get", "pods", "--field-selector", "status.phase!=Running", "-A",
                      "-o", "name")
    assert running.stdout == ""
    unsupported = kubectl("get", "pods", "--field-selector", "spec.bogus=x", "-A", check=False)
    assert unsupported.returncode == 1
    assert unsupported.stderr.startswith("Error from server (BadRequest): ")
    assert unsupported.stderr.strip().endswith("field label not supported: spec.bogus")


def test_kubectl_merge_patch(api: FakeKubeAPI, kubectl: Kubectl) -> None:
    before = dc(api)
    kubectl("patch", "dc", "docker-registry", "-n", "default", "--type", "merge",
            "-p", '{"spec": {"replicas": 3}}')
    after = dc(api)
    assert after["spec"]["replicas"] == 3
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])


def test_kubectl_json_patch(api: FakeKubeAPI, kubectl: Kubectl) -> None:
    patch = [{"op": "test", "path": "/spec/replicas", "value": 2},
             {"op": "replace", "path": "/spec/replicas", "value": 1}]
    kubectl("patch", "dc", "docker-registry", "-n", "default", "--type", "json",
            "-p", json.dumps(patch))
    assert dc(api)["spec"]["replicas"] == 1
    failed = kubectl("patch", "dc", "docker-registry", "-n", "default", "--type", "json",
                     "-p", json.dumps(patch), check=False)
    assert failed.returncode == 1
    # What kubectl makes of the real server's 422 for a failed test operation.
    assert failed.stderr == ("The request is invalid: the server rejected our request due to an "
                             "error in our request\n")


def test_kubectl_strategic_merge_patch_merges_containers_by_name(api: FakeKubeAPI,
                                                                 kubectl: Kubectl) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "registry", "env": [{"name": "REGISTRY_STORAGE_DELETE_ENABLED",
                                      "value": "true"}]}]}}}}
    kubectl("patch", "dc", "docker-registry", "-n", "default", "-p", json.dumps(patch))
    [container] = dc(api)["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["REGISTRY_STORAGE_DELETE_ENABLED"] == "true"
    assert env["REGISTRY_HTTP_ADDR"] == ":5000"  # merged into, not replaced
    assert container["image"] == "docker.io/openshift/origin-docker-registry:v3.11"


@ALL_PROFILES
def test_kubectl_create_apply_and_delete(api: FakeKubeAPI, kubectl: Kubectl,
                                         tmp_path: Path) -> None:
    manifest = tmp_path / "configmap.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: registry-config\n"
                        "data:\n  config.yml: 'version: 0.1'\n")
    assert "configmap/registry-config created" in kubectl("create", "-f", str(manifest)).stdout
    created = api.get_object("configmaps", "default", "registry-config")
    assert created is not None and created["data"] == {"config.yml": "version: 0.1"}

    manifest.write_text(manifest.read_text().replace("0.1", "0.2"))
    kubectl("apply", "--dry-run=server", "-f", str(manifest))
    after_dry_run = api.get_object("configmaps", "default", "registry-config")
    # A Kubernetes 1.11 server never reads dryRun: kubectl's "server dry run" applies there.
    assert (after_dry_run == created) is api.profile.dry_run
    kubectl("apply", "-f", str(manifest))
    applied = api.get_object("configmaps", "default", "registry-config")
    assert applied is not None and applied["data"] == {"config.yml": "version: 0.2"}

    kubectl("delete", "configmap", "registry-config", "-n", "default")
    assert api.get_object("configmaps", "default", "registry-config") is None


def test_kubectl_auth_can_i_honours_forbid(api: FakeKubeAPI, kubectl: Kubectl) -> None:
    assert kubectl("auth", "can-i", "list", "pods").stdout.strip() == "yes"
    api.forbid("pods", "list", "default")
    denied = kubectl("auth", "can-i", "list", "pods", check=False)
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    assert kubectl("auth", "can-i", "list", "pods", "-n", "other").stdout.strip() == "yes"
    assert kubectl("auth", "can-i", "get", "pods").stdout.strip() == "yes"


def test_kubectl_forbidden_list(api: FakeKubeAPI, kubectl: Kubectl) -> None:
    api.forbid("pods", "list")
    result = kubectl("get", "pods", "-n", "default", check=False)
    assert result.returncode == 1
    assert ('Error from server (Forbidden): pods is forbidden: User "system:admin" cannot list '
            'resource "pods" in API group "" in the namespace "default"') in result.stderr


def test_kubectl_logs_tail(kubectl: Kubectl) -> None:
    expected = (FIXTURE / "logs/default" / f"{POD_1}.log").read_text().splitlines()[-5:]
    result = kubectl("logs", POD_1, "-n", "default", "--tail", "5")
    assert result.stdout.splitlines() == expected


def test_kubectl_typed_writes_in_protobuf_are_refused(api: FakeKubeAPI,
                                                      kubectl: Kubectl) -> None:
    # kubectl's typed clients send protobuf; the fake decodes it for access reviews only.
    result = kubectl("create", "configmap", "x", "--from-literal=a=b", check=False)
    assert result.returncode == 1
    assert "the body of the request was in an unknown format" in result.stderr
    assert [r.status for r in api.requests if r.verb == "create"] == [415]


def test_kubectl_retries_after_429(api: FakeKubeAPI, kubectl: Kubectl) -> None:
    api.inject("429", resource="pods", verb="list", times=1)
    assert kubectl("get", "pods", "-n", "default", "-o", "name").stdout.split() == [
        f"pod/{POD_1}", f"pod/{POD_2}"]
    assert [r.status for r in api.requests if r.resource == "pods"] == [429, 200]


# the python client


def test_python_client_default_configuration(kubeconfig: Path) -> None:
    kubernetes.config.load_kube_config(config_file=str(kubeconfig))
    pods = kubernetes.client.CoreV1Api().list_namespaced_pod(
        "default", label_selector="docker-registry=default")
    assert sorted(p.metadata.name for p in pods.items) == [POD_1, POD_2]
    assert {p.spec.node_name for p in pods.items} == {"node-1", "node-2"}


def test_python_client_get_custom_object(client: ApiClient) -> None:
    config = kubernetes.client.CustomObjectsApi(client).get_namespaced_custom_object(
        "apps.openshift.io", "v1", "default", "deploymentconfigs", "docker-registry")
    assert config["kind"] == "DeploymentConfig"
    assert config["metadata"]["labels"] == {"docker-registry": "default"}


def test_python_client_typed_lists(client: ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(client)
    nodes = core.list_node(field_selector="metadata.name=node-2")
    assert [n.metadata.name for n in nodes.items] == ["node-2"]
    assert nodes.kind == "NodeList" and nodes.api_version == "v1"
    assert nodes.items[0].kind is None  # as from a real server (kubernetes/kubernetes#3030)
    assert core.read_namespaced_service("docker-registry", "default").spec.session_affinity == (
        "ClientIP")


@pytest.mark.parametrize("content_type, body", [
    (MERGE, {"spec": {"replicas": 4}}),
    (STRATEGIC, {"spec": {"replicas": 4}}),
    (JSON_PATCH, [{"op": "replace", "path": "/spec/replicas", "value": 4}]),
])
def test_python_client_patch_content_types(api: FakeKubeAPI, client: ApiClient,
                                           content_type: str, body: Any) -> None:
    patched = kubernetes.client.CustomObjectsApi(client).patch_namespaced_custom_object(
        "apps.openshift.io", "v1", "default", "deploymentconfigs", "docker-registry", body,
        _content_type=content_type)
    assert patched["spec"]["replicas"] == 4
    assert dc(api)["spec"]["replicas"] == 4
    [request] = [r for r in api.requests if r.verb == "patch"]
    assert (request.resource, request.namespace, request.name) == (
        "deploymentconfigs", "default", "docker-registry")


def test_python_client_replace_with_stale_resource_version(api: FakeKubeAPI,
                                                          client: ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(client)
    service = core.read_namespaced_service("docker-registry", "default")
    core.patch_namespaced_service("docker-registry", "default",
                                  {"metadata": {"labels": {"touched": "yes"}}})
    service.spec.session_affinity = "None"
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_service("docker-registry", "default", service)
    assert caught.value.status == 409
    assert status_of(caught.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'Operation cannot be fulfilled on services "docker-registry": the object has '
                   "been modified; please apply your changes to the latest version and try "
                   "again",
        "reason": "Conflict", "details": {"name": "docker-registry", "kind": "services"},
        "code": 409}


def test_python_client_patch_with_stale_resource_version(api: FakeKubeAPI,
                                                        client: ApiClient) -> None:
    objects = kubernetes.client.CustomObjectsApi(client)
    stale = dc(api)["metadata"]["resourceVersion"]
    objects.patch_namespaced_custom_object(
        "apps.openshift.io", "v1", "default", "deploymentconfigs", "docker-registry",
        {"metadata": {"resourceVersion": stale}, "spec": {"replicas": 5}})
    with pytest.raises(ApiException) as caught:
        objects.patch_namespaced_custom_object(
            "apps.openshift.io", "v1", "default", "deploymentconfigs", "docker-registry",
            {"metadata": {"resourceVersion": stale}, "spec": {"replicas": 6}})
    assert caught.value.status == 409 and status_of(caught.value)["details"] == {
        "name": "docker-registry", "group": "apps.openshift.io", "kind": "deploymentconfigs"}
    assert dc(api)["spec"]["replicas"] == 5


def test_python_client_forbidden(api: FakeKubeAPI, client: ApiClient) -> None:
    api.forbid("secrets", "get", "default")
    with pytest.raises(ApiException) as caught:
        kubernetes.client.CoreV1Api(client).read_namespaced_secret("registry-certificates",
                                                                   "default")
    assert caught.value.status == 403
    assert status_of(caught.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'secrets "registry-certificates" is forbidden: User "system:admin" cannot get'
                   ' resource "secrets" in API group "" in the namespace "default"',
        "reason": "Forbidden", "details": {"name": "registry-certificates", "kind": "secrets"},
        "code": 403}


def test_python_client_forbidden_at_cluster_scope(api: FakeKubeAPI, client: ApiClient) -> None:
    api.forbid("oauthclients")
    with pytest.raises(ApiException) as caught:
        kubernetes.client.CustomObjectsApi(client).list_cluster_custom_object(
            "oauth.openshift.io", "v1", "oauthclients")
    assert status_of(caught.value)["message"] == (
        'oauthclients.oauth.openshift.io is forbidden: User "system:admin" cannot list resource '
        '"oauthclients" in API group "oauth.openshift.io" at the cluster scope')


def test_python_client_sees_injected_500_and_429(api: FakeKubeAPI,
                                                 no_retry_client: ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(no_retry_client)
    api.inject("500", resource="pods", times=1)
    api.inject("429", resource="pods", times=1)
    with pytest.raises(ApiException) as server_error:
        core.list_namespaced_pod("default")
    assert server_error.value.status == 500
    assert status_of(server_error.value)["reason"] == "InternalError"
    with pytest.raises(ApiException) as throttled:
        core.list_namespaced_pod("default")
    assert throttled.value.status == 429
    assert throttled.value.headers["Retry-After"] == "1"
    assert len(core.list_namespaced_pod("default").items) == 2


def test_python_client_default_retries_hide_429(api: FakeKubeAPI, client: ApiClient) -> None:
    # urllib3's default Retry honours Retry-After on a 429 for reads, as client-go does.
    api.inject("429", resource="pods", times=1)
    assert len(kubernetes.client.CoreV1Api(client).list_namespaced_pod("default").items) == 2
    assert [r.status for r in api.requests] == [429, 200]


def test_python_client_connection_reset(api: FakeKubeAPI, no_retry_client: ApiClient) -> None:
    api.inject("reset", resource="nodes")
    core = kubernetes.client.CoreV1Api(no_retry_client)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        core.list_node()
    assert [r.status for r in api.requests] == [None]
    assert core.read_namespace("default").metadata.name == "default"


def test_python_client_hang_times_out(api: FakeKubeAPI, no_retry_client: ApiClient) -> None:
    api.inject("hang", verb="get", times=1)
    core = kubernetes.client.CoreV1Api(no_retry_client)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        core.read_node("node-1", _request_timeout=1)
    assert core.read_node("node-1", _request_timeout=5).metadata.name == "node-1"


def test_python_client_call_api_instantiate(api: FakeKubeAPI, client: ApiClient) -> None:
    request = {"kind": "DeploymentRequest", "apiVersion": "apps.openshift.io/v1",
               "name": "docker-registry", "latest": True, "force": True}
    result = call(client, "POST", f"{DC_PATH}/instantiate", request)
    assert (result.status, json.loads(result.read())["kind"]) == (201, "DeploymentConfig")
    [recorded] = api.deployment_requests
    assert (recorded.namespace, recorded.name, recorded.request) == (
        "default", "docker-registry", request)


def test_python_client_pod_logs(client: ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(client)
    log = core.read_namespaced_pod_log(POD_2, "default", tail_lines=2, container="registry")
    assert log == "".join((FIXTURE / "logs/default" / f"{POD_2}.log").read_text()
                          .splitlines(keepends=True)[-2:])
    assert core.read_namespaced_pod_log(POD_2, "default", limit_bytes=4) == "time"
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod_log("gone", "default")
    assert caught.value.status == 404
    assert status_of(caught.value)["message"] == 'pods "gone" not found'
    with pytest.raises(ApiException) as wrong_container:
        core.read_namespaced_pod_log(POD_2, "default", container="proxy")
    assert status_of(wrong_container.value)["message"] == (
        f"container proxy is not valid for pod {POD_2}")


def test_python_client_self_subject_access_review(api: FakeKubeAPI, client: ApiClient) -> None:
    authorization = kubernetes.client.AuthorizationV1Api(client)

    def allowed(verb: str, resource: str, subresource: str = "") -> bool:
        review = kubernetes.client.V1SelfSubjectAccessReview(
            spec=kubernetes.client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=kubernetes.client.V1ResourceAttributes(
                    namespace="default", verb=verb, resource=resource,
                    subresource=subresource or None)))
        return authorization.create_self_subject_access_review(review).status.allowed

    api.forbid("pods/log", "get")
    assert allowed("get", "pods") and not allowed("get", "pods", "log")


@pytest.mark.parametrize("kube_profile", ["kubernetes-1.33"])  # a server that knows dryRun
def test_python_client_create_conflicts_and_dry_run(api: FakeKubeAPI, client: ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(client)
    body = {"metadata": {"generateName": "registry-config-"}, "data": {"a": "b"}}
    dry = core.create_namespaced_config_map("default", body, dry_run="All")
    assert dry.metadata.name.startswith("registry-config-") and api.objects("configmaps") == []
    created = core.create_namespaced_config_map("default", body)
    assert created.metadata.generation == 1 and created.metadata.uid
    assert names(api.objects("configmaps")) == [created.metadata.name]
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_config_map("default", {"metadata": {"name": created.metadata.name}})
    assert (exists.value.status, status_of(exists.value)["reason"]) == (409, "AlreadyExists")
    with pytest.raises(ApiException) as missing_namespace:
        core.create_namespaced_config_map("nowhere", {"metadata": {"name": "x"}})
    assert status_of(missing_namespace.value)["message"] == 'namespaces "nowhere" not found'
    with pytest.raises(ApiException) as unnamed:
        core.create_namespaced_config_map("default", {"data": {}})
    assert status_of(unnamed.value)["message"] == (
        'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is '
        "required")


def test_python_client_delete(api: FakeKubeAPI, client: ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(client)
    status = core.delete_namespaced_secret("registry-certificates", "default")
    assert (status["status"], status["details"]["kind"]) == ("Success", "secrets")
    pod = json.loads(call(client, "DELETE", f"/api/v1/namespaces/default/pods/{POD_1}").read())
    assert pod["metadata"]["name"] == POD_1  # the pod registry returns the deleted object
    assert names(api.objects("pods")) == [POD_2]
    assert api.objects("secrets") == []


def test_python_client_delete_collection(api: FakeKubeAPI, client: ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(client)
    for name, team in (("a", "registry"), ("b", "registry"), ("c", "router")):
        core.create_namespaced_config_map("default", {"metadata": {"name": name,
                                                                   "labels": {"team": team}}})
    # The real registry answers the list of deleted objects, which the client types as V1Status.
    response = core.delete_collection_namespaced_config_map(
        "default", label_selector="team=registry", _preload_content=False)
    deleted = json.loads(response.data)
    assert (deleted["kind"], names(deleted["items"])) == ("ConfigMapList", ["a", "b"])
    assert names(api.objects("configmaps")) == ["c"]


def test_request_log_counts_calls(api: FakeKubeAPI, client: ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(client)
    core.list_namespaced_pod("default", label_selector="docker-registry=default")
    api.clear_requests()
    for _ in range(3):
        core.list_namespaced_pod("default", label_selector="docker-registry=default")
    core.read_namespaced_pod(POD_1, "default")
    records = api.requests
    assert [(r.method, r.verb, r.resource, r.namespace, r.name, r.status) for r in records] == (
        [("GET", "list", "pods", "default", None, 200)] * 3
        + [("GET", "get", "pods", "default", POD_1, 200)])
    assert records[0].path == "/api/v1/namespaces/default/pods"
    assert records[0].query == {"labelSelector": "docker-registry=default"}


# API server semantics, checked over plain HTTP


def test_discovery_documents(api: FakeKubeAPI) -> None:
    core = requests.get(f"{api.url}/api/v1", timeout=10).json()
    pods = next(r for r in core["resources"] if r["name"] == "pods")
    assert (pods["kind"], pods["namespaced"], pods["shortNames"]) == ("Pod", True, ["po"])
    assert "get" in next(r for r in core["resources"] if r["name"] == "pods/log")["verbs"]
    groups = {g["name"]: g for g in requests.get(f"{api.url}/apis", timeout=10).json()["groups"]}
    assert groups["apps.openshift.io"]["preferredVersion"] == {
        "groupVersion": "apps.openshift.io/v1", "version": "v1"}
    oauth = requests.get(f"{api.url}/apis/oauth.openshift.io/v1", timeout=10).json()
    assert oauth["resources"][0]["namespaced"] is False
    assert requests.get(f"{api.url}/version", timeout=10).json()["gitVersion"].startswith("v1.11")


GROUPS = {
    "openshift-3.11": ({"apps.openshift.io", "route.openshift.io", "oauth.openshift.io",
                        "security.openshift.io"}, {"coordination.k8s.io"},
                       {"batch": "batch/v1beta1", "events.k8s.io": "events.k8s.io/v1beta1"}),
    "kubernetes-1.33": ({"coordination.k8s.io"}, {"apps.openshift.io", "route.openshift.io",
                                                  "oauth.openshift.io"},
                        {"batch": "batch/v1", "events.k8s.io": "events.k8s.io/v1"}),
    "openshift-4.14": ({"apps.openshift.io", "route.openshift.io", "oauth.openshift.io",
                        "imageregistry.operator.openshift.io", "config.openshift.io",
                        "coordination.k8s.io"}, set(),
                       {"batch": "batch/v1", "imageregistry.operator.openshift.io":
                        "imageregistry.operator.openshift.io/v1"}),
}


@ALL_PROFILES
def test_each_profile_serves_its_groups_and_versions(api: FakeKubeAPI, kube_profile: str) -> None:
    served, absent, versions = GROUPS[kube_profile]
    groups = {g["name"]: g for g in requests.get(f"{api.url}/apis", timeout=10).json()["groups"]}
    assert served <= set(groups) and not absent & set(groups)
    assert {g: groups[g]["preferredVersion"]["groupVersion"] for g in versions} == versions
    for group in absent:
        assert requests.get(f"{api.url}/apis/{group}/v1", timeout=10).status_code == 404
    version = requests.get(f"{api.url}/version", timeout=10).json()
    assert version == dict(PROFILES[kube_profile].version)


@ALL_PROFILES
def test_dry_run_is_honoured_only_where_the_server_knows_it(api: FakeKubeAPI) -> None:
    """Before Kubernetes 1.12 the handlers never read dryRun: the write is applied. The
    OpenAPI document is where a client can see that first."""
    path = "/api/v1/namespaces/default/configmaps"
    answer = requests.post(f"{api.url}{path}?dryRun=All", json={"metadata": {"name": "d"}},
                           timeout=10)
    assert answer.status_code == 201
    assert (api.get_object("configmaps", "default", "d") is None) is api.profile.dry_run
    openapi = requests.get(f"{api.url}/openapi/v2", timeout=10).json()
    patch = openapi["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"]
    assert ("dryRun" in [p["name"] for p in patch["parameters"]]) is api.profile.dry_run
    bad = requests.post(f"{api.url}{path}?dryRun=Some", json={"metadata": {"name": "e"}},
                        timeout=10)
    assert bad.status_code == (400 if api.profile.dry_run else 201)


def test_objects_of_a_group_the_profile_lacks_are_not_served() -> None:
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "l", "namespace": "default"}}
    cronjob = {"apiVersion": "batch/v1beta1", "kind": "CronJob",
               "metadata": {"name": "c", "namespace": "default"}, "spec": {}}
    old = FakeKubeAPI([lease, cronjob])
    assert old.unserved == [lease] and old.objects("cronjobs")[0]["apiVersion"] == \
        "batch/v1beta1"
    new = FakeKubeAPI([lease, cronjob], api_profile="kubernetes-1.33")
    assert new.unserved == [] and new.objects("cronjobs")[0]["apiVersion"] == "batch/v1"
    with pytest.raises(ValueError, match="unknown API profile 'openshift-2'"):
        FakeKubeAPI(api_profile="openshift-2")


@pytest.mark.parametrize("path", ["/apis/image.openshift.io/v1", "/apis/apps/v1/foos",
                                  "/api/v1/namespaces/default/foos", "/openapi/v3", "/healthz/x"])
def test_unserved_paths_answer_404_page(api: FakeKubeAPI, path: str) -> None:
    response = requests.get(api.url + path, timeout=10)
    assert (response.status_code, response.text) == (404, "404 page not found\n")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_status_object_for_unknown_name(api: FakeKubeAPI) -> None:
    response = requests.get(f"{api.url}/api/v1/namespaces/default/pods/x", timeout=10)
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "x" not found', "reason": "NotFound",
        "details": {"name": "x", "kind": "pods"}, "code": 404}


def test_list_items_carry_kind_only_for_custom_resources(api: FakeKubeAPI) -> None:
    api.put_object({"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
                    "metadata": {"name": "registry", "namespace": "default"}, "spec": {}})
    pods = requests.get(f"{api.url}/api/v1/namespaces/default/pods", timeout=10).json()
    assert (pods["kind"], pods["apiVersion"]) == ("PodList", "v1")
    assert all("kind" not in pod and "apiVersion" not in pod for pod in pods["items"])
    rules = requests.get(f"{api.url}/apis/monitoring.coreos.com/v1/prometheusrules",
                         timeout=10).json()
    assert rules["items"][0]["kind"] == "PrometheusRule"
    pod = requests.get(f"{api.url}/api/v1/namespaces/default/pods/{POD_1}", timeout=10).json()
    assert (pod["kind"], pod["apiVersion"]) == ("Pod", "v1")


def test_concurrent_writes_are_serialised(api: FakeKubeAPI) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    assert requests.post(api.url + path, json={"metadata": {"name": "c"}}, timeout=10).ok
    start = int(api.get_object("configmaps", "default", "c")["metadata"]["resourceVersion"])

    def writer(number: int) -> None:
        with requests.Session() as session:
            for step in range(10):
                session.patch(f"{api.url}{path}/c", data=json.dumps(
                    {"data": {f"w{number}-{step}": "x"}}), timeout=30,
                    headers={"Content-Type": MERGE}).raise_for_status()

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stored = api.get_object("configmaps", "default", "c")
    assert stored is not None and len(stored["data"]) == 80
    assert int(stored["metadata"]["resourceVersion"]) == start + 80


def test_writes_keep_status_and_server_fields(api: FakeKubeAPI) -> None:
    current = dc(api)
    edited = json.loads(json.dumps(current))
    edited["status"]["replicas"] = 0
    edited["metadata"]["uid"] = "forged"
    edited["metadata"]["labels"]["team"] = "infra"
    response = requests.put(api.url + DC_PATH, json=edited, timeout=10)
    assert response.status_code == 200
    stored = dc(api)
    assert stored["status"] == current["status"]  # status is a subresource
    assert stored["metadata"]["uid"] == current["metadata"]["uid"]
    assert stored["metadata"]["generation"] == current["metadata"]["generation"]  # no spec change
    unchanged = requests.put(api.url + DC_PATH, json=stored, timeout=10).json()
    assert unchanged["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]


def test_custom_resources_refuse_strategic_merge_patch(api: FakeKubeAPI) -> None:
    api.put_object({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                    "metadata": {"name": "registry", "namespace": "default"},
                    "spec": {"endpoints": [{"port": "5000-tcp"}]}})
    path = "/apis/monitoring.coreos.com/v1/namespaces/default/servicemonitors/registry"
    response = requests.patch(api.url + path, data="{}", timeout=10,
                              headers={"Content-Type": STRATEGIC})
    assert (response.status_code, response.json()["reason"]) == (415, "UnsupportedMediaType")
    unconditional = requests.put(api.url + path, timeout=10, json={
        "metadata": {"name": "registry"}, "spec": {}})
    assert unconditional.status_code == 422


def test_access_review_needs_an_object(api: FakeKubeAPI) -> None:
    response = requests.post(f"{api.url}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                             json=[], timeout=10)
    assert (response.status_code, response.json()["reason"]) == (400, "BadRequest")


def test_watch_is_not_served(api: FakeKubeAPI) -> None:
    response = requests.get(f"{api.url}/api/v1/pods?watch=true", timeout=10)
    assert (response.status_code, response.json()["reason"]) == (405, "MethodNotAllowed")


def test_deleting_a_namespace_deletes_its_objects(api: FakeKubeAPI) -> None:
    assert requests.delete(f"{api.url}/api/v1/namespaces/default", timeout=10).ok
    assert [o for o in api.objects() if o["metadata"].get("namespace") == "default"] == []
    assert names(api.objects("nodes")) == ["node-1", "node-2"]


def test_legacy_openshift_api_versions_are_served() -> None:
    with FakeKubeAPI(objects=[{"apiVersion": "v1", "kind": "DeploymentConfig",
                               "metadata": {"name": "router", "namespace": "default"}},
                              {"apiVersion": "extensions/v1beta1", "kind": "DaemonSet",
                               "metadata": {"name": "fluentd", "namespace": "logging"}},
                              {"apiVersion": "image.openshift.io/v1", "kind": "ImageStream",
                               "metadata": {"name": "ruby", "namespace": "openshift"}}]) as api:
        assert api.objects("deploymentconfigs")[0]["apiVersion"] == "apps.openshift.io/v1"
        assert api.objects("daemonsets")[0]["apiVersion"] == "apps/v1"
        assert [o["kind"] for o in api.unserved] == ["ImageStream"]
        assert names(api.objects("namespaces")) == ["default", "logging"]


def test_latency_applies_and_expires(api: FakeKubeAPI) -> None:
    api.set_latency(0.01)
    api.inject(0.01, resource="nodes", times=1)
    for _ in range(2):
        assert requests.get(f"{api.url}/api/v1/nodes", timeout=10).ok


def test_stop_releases_hanging_requests_and_the_port() -> None:
    api = FakeKubeAPI().start()
    port = int(api.url.rsplit(":", 1)[1])
    api.inject("hang")
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            requests.get(f"{api.url}/api", timeout=120)
        except requests.RequestException as error:
            outcome.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    while not api.requests:
        time.sleep(0.01)
    api.stop()
    caller.join(timeout=30)
    assert not caller.is_alive()
    assert isinstance(outcome[0], requests.ConnectionError)
    with socket.socket() as rebind:
        rebind.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rebind.bind(("127.0.0.1", port))


# selectors and patches


@pytest.mark.parametrize("selector, matching", [
    ("a=x", ["x"]),
    ("a==x", ["x"]),
    ("a!=x", ["none", "y"]),
    ("a in (x, y)", ["x", "y"]),
    ("a notin (x)", ["none", "y"]),
    ("a", ["x", "y"]),
    ("!a", ["none"]),
    ("a,b=1", ["x"]),
    ("a in (x,y),!c", ["x", "y"]),
])
def test_label_selectors(selector: str, matching: list[str]) -> None:
    labels = {"x": {"a": "x", "b": "1"}, "y": {"a": "y"}, "none": {}}
    requirements = parse_label_selector(selector)
    assert sorted(name for name, found in labels.items()
                  if all(r.matches(found) for r in requirements)) == matching


@pytest.mark.parametrize("selector", ["a in x", "a=b=c", "=x", "a in (x"])
def test_invalid_label_selectors(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_field_selectors() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "node-1"}}
    assert [r.matches(pod) for r in parse_field_selector(
        "spec.nodeName==node-1,metadata.name!=q,status.phase=")] == [True, True, True]
    assert parse_field_selector(r"metadata.name=a\,b")[0].value == "a,b"


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "l": [3]}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "l": [3]}


def test_strategic_merge_patch_uses_kubernetes_merge_keys() -> None:
    spec = {"containers": [{"name": "registry", "image": "a",
                            "volumeMounts": [{"name": "s", "mountPath": "/registry"}],
                            "ports": [{"containerPort": 5000}]}],
            "volumes": [{"name": "s", "emptyDir": {}}, {"name": "old", "emptyDir": {}}],
            "nodeSelector": {"infra": "true"}}
    patch = {"containers": [{"name": "registry", "image": "b",
                             "volumeMounts": [{"name": "c", "mountPath": "/etc/c"}]},
                            {"name": "proxy", "image": "p"}],
             "volumes": [{"name": "s", "$patch": "delete"},
                         {"name": "claim", "persistentVolumeClaim": {"claimName": "c"}}],
             "nodeSelector": {"$patch": "replace", "zone": "a"},
             "$setElementOrder/containers": [{"name": "registry"}, {"name": "proxy"}]}
    result = strategic_merge_patch(spec, patch)
    registry, proxy = result["containers"]
    assert registry["image"] == "b" and registry["ports"] == [{"containerPort": 5000}]
    assert [m["mountPath"] for m in registry["volumeMounts"]] == ["/registry", "/etc/c"]
    assert proxy == {"name": "proxy", "image": "p"}
    assert [v["name"] for v in result["volumes"]] == ["old", "claim"]
    assert result["nodeSelector"] == {"zone": "a"}


def test_json_patch_follows_rfc_6902() -> None:
    document = {"a": {"b": [1, 2]}, "c~/d": True}
    patched = json_patch(document, [
        {"op": "add", "path": "/a/b/-", "value": 3},
        {"op": "add", "path": "/a/b/0", "value": 0},
        {"op": "remove", "path": "/a/b/1"},
        {"op": "copy", "from": "/a/b", "path": "/e"},
        {"op": "move", "from": "/c~0~1d", "path": "/f"},
        {"op": "test", "path": "/f", "value": True},
    ])
    assert patched == {"a": {"b": [0, 2, 3]}, "e": [0, 2, 3], "f": True}
    assert document == {"a": {"b": [1, 2]}, "c~/d": True}


@pytest.mark.parametrize("operation", [
    {"op": "test", "path": "/a", "value": 1},  # true is not 1 in JSON
    {"op": "remove", "path": "/missing"},
    {"op": "replace", "path": "/missing", "value": 1},
    {"op": "add", "path": "/x/y", "value": 1},
    {"op": "explode", "path": "/a"},
])
def test_json_patch_errors(operation: dict[str, Any]) -> None:
    with pytest.raises(PatchError):
        json_patch({"a": True}, [operation])


# finding the tools


def test_find_tool_prefers_the_installed_tools(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    installed = tmp_path / "bin" / "kubectl"
    installed.parent.mkdir()
    installed.write_text("#!/bin/sh\n")
    installed.chmod(0o755)
    monkeypatch.setenv("REGISTRY_DOCTOR_TOOLS", str(tmp_path))
    assert find_tool("kubectl") == str(installed)


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception),
                                         ("", pytest.skip.Exception)])
def test_find_tool_when_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str,
                                outcome: type[BaseException]) -> None:
    monkeypatch.setenv("REGISTRY_DOCTOR_TOOLS", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match=r"scripts/fetch-kube-tools\.sh"):
        find_tool("kubectl")


def restarted_pod(name: str, terminated: dict[str, Any] | None) -> dict[str, Any]:
    """A one-container pod; with `terminated`, its container's last termination."""
    status: dict[str, Any] = {"name": "registry", "ready": True,
                              "restartCount": 1 if terminated else 0,
                              "state": {"running": {"startedAt": "2019-06-03T09:00:00Z"}}}
    if terminated is not None:
        status["lastState"] = {"terminated": terminated}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "registry", "image": "registry:2"}]},
            "status": {"phase": "Running", "containerStatuses": [status]}}


PREVIOUS_PODS = [
    restarted_pod("crashed", {"containerID": "docker://0a1b", "exitCode": 2, "reason": "Error"}),
    # The kubelet wants the terminated instance's containerID: without it, no previous log.
    restarted_pod("no-id", {"exitCode": 137, "reason": "OOMKilled"}),
    restarted_pod("fresh", None),
]


@pytest.fixture
def previous_api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI(PREVIOUS_PODS, logs={("default", "crashed"): "now\n"},
                     previous_logs={("default", "crashed", "registry"):
                                    "one\ntwo\npanic: boom\n"}) as api:
        yield api


def test_kubectl_logs_previous(previous_api: FakeKubeAPI, tmp_path: Path) -> None:
    kubectl = Kubectl(find_tool("kubectl"), previous_api.write_kubeconfig(tmp_path / "kc"),
                      tmp_path / "home")
    assert kubectl("logs", "crashed", "--previous", "--tail", "1").stdout == "panic: boom\n"
    assert kubectl("logs", "crashed").stdout == "now\n"
    for pod in ("fresh", "no-id"):
        result = kubectl("logs", pod, "--previous", check=False)
        assert result.returncode == 1
        assert result.stderr.strip() == ("Error from server (BadRequest): previous terminated "
                                         f'container "registry" in pod "{pod}" not found')


def test_python_client_previous_pod_log(previous_api: FakeKubeAPI, tmp_path: Path) -> None:
    configuration = Configuration()
    kubernetes.config.load_kube_config(
        config_file=str(previous_api.write_kubeconfig(tmp_path / "kc")),
        client_configuration=configuration)
    with ApiClient(configuration) as api_client:
        core = kubernetes.client.CoreV1Api(api_client)
        assert core.read_namespaced_pod_log("crashed", "default", previous=True,
                                            container="registry", limit_bytes=3) == "one"
        with pytest.raises(ApiException) as caught:
            core.read_namespaced_pod_log("fresh", "default", previous=True)
        assert (caught.value.status, status_of(caught.value)["reason"]) == (400, "BadRequest")
    # The API server parses the flag as strconv.ParseBool does.
    path = "/api/v1/namespaces/default/pods/crashed/log"
    assert requests.get(f"{previous_api.url}{path}?previous=yes", timeout=30).status_code == 400
    assert requests.get(f"{previous_api.url}{path}?previous=1", timeout=30).text == \
        "one\ntwo\npanic: boom\n"
