"""The platform layer: detecting OpenShift 3.x and plain Kubernetes, discovering the
registry, and locating one installation the same way for checks, planners and probes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry_doctor.checks import all_checks
from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import Resource, Status
from registry_doctor.doctor.platform import ADAPTERS, NamesNeeded, adapter, choose
from registry_doctor.doctor.snapshot import CollectError
from registry_doctor.doctor.snapshot.kinds import known_collections
from registry_doctor.doctor.snapshot.offline import DumpSource
from registry_doctor.doctor.workload import Workload
from tests.workloads import registry_dc, snapshot_of


def service(name: str, selector: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": selector, "ports": [{"port": 5000}]}}


def route(name: str, to: str) -> dict[str, Any]:
    return {"apiVersion": "route.openshift.io/v1", "kind": "Route",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"host": f"{name}.apps.example.com", "to": {"kind": "Service", "name": to}}}


def as_deployment(dc: dict[str, Any], image: str) -> dict[str, Any]:
    dc["apiVersion"], dc["kind"] = "apps/v1", "Deployment"
    dc["spec"]["selector"] = {"matchLabels": dc["spec"]["selector"]}
    dc["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return dc


class GroupsSource:
    """A source that answers only discovery."""

    def __init__(self, groups: set[str] | None) -> None:
        self.groups = groups

    def api_groups(self, timeout: float) -> frozenset[str]:
        if self.groups is None:
            raise CollectError("connection refused", source_failed=True)
        return frozenset(self.groups)


def test_openshift3_is_recognised_by_the_api_groups_only_openshift_serves() -> None:
    served = GroupsSource({"apps", "apps.openshift.io", "route.openshift.io"})
    assert choose("auto", served, 5) == (
        "openshift3", "the cluster serves apps.openshift.io, route.openshift.io")


def test_without_anything_openshift_auto_judges_plain_kubernetes_and_says_why() -> None:
    assert choose("auto", GroupsSource({"apps", "batch"}), 5) == (
        "kubernetes", "no OpenShift API group served (apps.openshift.io, route.openshift.io, "
        "oauth.openshift.io)")
    platform, why = choose("auto", GroupsSource(None), 5)
    assert (platform, why) == ("openshift3", "API groups unknown (connection refused): "
                                             "judged as openshift3")


def test_a_legacy_dump_of_openshift_kinds_in_v1_is_openshift(tmp_path: Path) -> None:
    dc = registry_dc()
    dc["apiVersion"] = "v1"  # what `oc get -o yaml` of a master before 3.6 writes
    (tmp_path / "objects.yaml").write_text(yaml.safe_dump(dc))
    assert DumpSource(tmp_path).api_groups(5) == {"apps.openshift.io"}
    assert choose("auto", DumpSource(tmp_path), 5)[0] == "openshift3"


def test_a_dump_serves_the_groups_of_the_objects_it_holds(tmp_path: Path) -> None:
    (tmp_path / "objects.yaml").write_text(yaml.safe_dump_all([registry_dc(), *[
        route("registry", "docker-registry"),
        service("docker-registry", {"docker-registry": "default"})]]))
    groups = DumpSource(tmp_path).api_groups(5)
    assert groups == {"apps.openshift.io", "route.openshift.io", ""}
    assert choose("auto", DumpSource(tmp_path), 5)[0] == "openshift3"


def test_a_requested_platform_is_taken_as_is_and_an_unknown_one_is_refused() -> None:
    assert choose("openshift3", GroupsSource(None), 5) == ("openshift3", "--platform openshift3")
    assert choose("kubernetes", GroupsSource(None), 5) == ("kubernetes", "--platform kubernetes")
    with pytest.raises(ValueError, match="unknown platform 'nomad'"):
        choose("nomad", GroupsSource(None), 5)


def test_the_platform_names_what_the_admin_left_unnamed() -> None:
    source = GroupsSource({"apps.openshift.io"})
    settled = engine.settle(RunConfig(namespace="registry", registry_name="placeholder",
                                      names_given=frozenset({"namespace"})), source)
    assert (settled.platform, settled.namespace, settled.registry_name,
            settled.console_name) == ("openshift3", "registry", "docker-registry",
                                      "registry-console")
    assert settled.platform_evidence == "the cluster serves apps.openshift.io"
    assert engine.settle(settled, GroupsSource(None)) is settled  # settled once
    as_given = engine.settle(RunConfig(registry_name="mine"), source)
    assert as_given.registry_name == "mine"


def test_the_installation_finds_the_service_by_name_else_by_its_selector() -> None:
    by_selector = snapshot_of(registry_dc(), service("registry", {"docker-registry": "default"}),
                              service("other", {"app": "other"}),
                              route("registry", "registry"), route("other", "other"))
    installation = by_selector.installation()
    assert installation.service_name == "registry"
    assert [r["metadata"]["name"] for r in installation.routes()] == ["registry"]
    named = snapshot_of(registry_dc(), service("docker-registry", {"app": "x"}),
                        service("registry", {"docker-registry": "default"}))
    assert named.installation().service_name == "docker-registry"


def test_fix_texts_name_the_installation_as_oc_does() -> None:
    names = snapshot_of(as_deployment(registry_dc(), "registry:2")).installation().names()
    assert {k: names[k] for k in ("cli", "namespace", "registry", "console", "service",
                                  "rollout", "owner")} == {
        "cli": "oc", "namespace": "default", "registry": "deployment/docker-registry",
        "console": "dc/registry-console", "service": "svc/docker-registry",
        "rollout": "rollout restart", "owner": "deployment/docker-registry"}
    assert names["use_claim"].startswith("oc set volume deployment/docker-registry -n default")


def test_a_check_skips_on_a_platform_its_metadata_excludes_with_the_declared_reason() -> None:
    check = all_checks()["cockpit-port-conflict"]
    elsewhere = replace(snapshot_of(registry_dc()), platform="kubernetes")
    result = engine.evaluate(check, elsewhere, RunConfig(), {})
    assert (result.status, result.summary) == (
        Status.SKIP, "does not apply to platform kubernetes: the registry console (Cockpit) is "
        "part of OpenShift 3.x only")


def test_every_check_names_only_known_platforms_and_says_why_it_excludes_others() -> None:
    for check in all_checks().values():
        assert set(check.meta.platforms) <= set(ADAPTERS), check.meta.id
        assert bool(check.meta.platforms) == bool(check.meta.platform_note), check.meta.id


def test_fix_texts_in_a_report_name_the_installation_found_not_the_3x_defaults() -> None:
    deployment = as_deployment(registry_dc(), "registry:2")
    deployment["metadata"].update(name="registry", namespace="infra")
    config = RunConfig(namespace="infra", registry_name="registry")
    snapshot = replace(snapshot_of(deployment), config=config)
    result = engine.evaluate(all_checks()["besteffort-qos"], snapshot, config, {})
    assert result.status is Status.CRIT, result.summary
    assert result.remediation is not None
    assert "`oc set resources deployment/registry -n infra --requests=cpu=100m,memory=256Mi`" \
        in result.remediation.summary


def test_every_remediation_names_objects_only_through_the_installation() -> None:
    names = {"cli": "CLI", "namespace": "NS", "registry": "REG", "console": "CON",
             "service": "SVC", "rollout": "ROLLOUT", "use_claim": "USE-CLAIM",
             "owner": "OWNER"}
    for check in all_checks().values():
        text = check.meta.remediation_for(names)  # an unknown $name or a lone $ raises
        for default in ("-n default", "dc/docker-registry", "dc/registry-console",
                        "svc/docker-registry"):
            assert default not in text, f"{check.meta.id}: {default} is hard-coded"


def test_each_adapter_declares_collections_the_catalogue_knows() -> None:
    for platform_id in ADAPTERS:
        collections = set(adapter(platform_id).collections)
        assert collections and collections <= known_collections(), platform_id


@pytest.mark.parametrize(("name", "kind"), [
    ("nfs.csi.k8s.io", "file"), ("example.com/nfs-client", "file"), ("kubernetes.io/nfs", "file"),
    ("ebs.csi.aws.com", "block"), ("kubernetes.io/aws-ebs", "block"),
    # Not NFS because the letters appear in another word; not block by name: a static PV
    # (no-provisioner) or a vSphere CNS volume may be a file share.
    ("vendor.io/confnfsx", "unknown"), ("kubernetes.io/no-provisioner", "unknown"),
    ("csi.vsphere.vmware.com", "unknown"),
])
def test_volume_plugins_are_classified_by_their_driver_name(name: str, kind: str) -> None:
    from registry_doctor.doctor.platform.store import plugin_kind

    assert plugin_kind(name) == kind


@pytest.mark.parametrize(("kind", "strategy", "replicas", "rolling"), [
    ("DeploymentConfig", {}, 1, "Rolling"),  # the API's default: Rolling, maxSurge 25%
    ("DeploymentConfig", {"type": "Rolling", "rollingParams": {"maxSurge": 0}}, 1, None),
    ("DeploymentConfig", {"type": "Recreate"}, 1, None),
    ("Deployment", {"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 1}}, 1, None),
    ("Deployment", {"rollingUpdate": {"maxSurge": "10%"}}, 1, "RollingUpdate"),  # rounds up
    ("Deployment", {"rollingUpdate": {"maxSurge": "10%"}}, 0, "RollingUpdate"),
    ("Deployment", {"rollingUpdate": {"maxSurge": 1}}, 1, "RollingUpdate"),
    ("Deployment", {"rollingUpdate": {"maxSurge": "x"}}, 1, "RollingUpdate"),  # default 25%
])
def test_a_rolling_strategy_counts_only_when_it_starts_new_pods_before_old_ones_stop(
        kind: str, strategy: dict[str, Any], replicas: int, rolling: str | None) -> None:
    spec = {"replicas": replicas, **({"strategy": strategy} if strategy else {})}
    workload = Workload(kind, "dc", {"metadata": {"name": "docker-registry"}, "spec": spec})
    assert workload.rolling == rolling


def claimed_volume_plugin(volume_spec: dict[str, Any],
                          provisioner: str = "kubernetes.io/no-provisioner") -> tuple[str, str]:
    """(kind, name) of the plugin found for a claim bound to a PV of `volume_spec`."""
    from registry_doctor.doctor.platform.store import StoreVolume
    from registry_doctor.doctor.registryconfig.sources import Mount

    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "registry-claim", "namespace": "default"},
             "spec": {"volumeName": "pv-1", "storageClassName": "standard"}}
    volume = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-1"},
              "spec": volume_spec}
    storage_class = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                     "metadata": {"name": "standard"}, "provisioner": provisioner}
    mount = Mount("registry-storage", {"name": "registry-storage", "persistentVolumeClaim": {
        "claimName": "registry-claim"}}, "/registry", "", "volumeMounts[registry-storage]")
    plugin = StoreVolume(mount, "registry-claim", claim).plugin(
        snapshot_of(claim, volume, storage_class))
    return plugin.kind, plugin.name


# Fields of a PersistentVolume's spec that are not its source, some newer than this code
# (volumeAttributesClassName: Kubernetes 1.29), in the alphabetical order `kubectl get -o
# yaml` writes them: before a source such as vsphereVolume, or with no source at all.
NOT_SOURCES = {"accessModes": ["ReadWriteMany"], "capacity": {"storage": "20Gi"},
               "claimRef": {"name": "registry-claim"}, "mountOptions": ["hard"],
               "nodeAffinity": {"required": {}}, "persistentVolumeReclaimPolicy": "Retain",
               "storageClassName": "standard", "volumeAttributesClassName": "gold",
               "volumeMode": "Filesystem", "x-vendorSetting": True}


@pytest.mark.parametrize("field", sorted(NOT_SOURCES))
def test_a_persistent_volume_field_that_is_not_a_source_is_never_taken_for_its_plugin(
        field: str) -> None:
    spec = {field: NOT_SOURCES[field], "vsphereVolume": {"volumePath": "[ds] registry.vmdk"}}
    assert claimed_volume_plugin(spec) == ("block", "vsphereVolume")
    assert claimed_volume_plugin({field: NOT_SOURCES[field]}, "kubernetes.io/aws-ebs") == (
        "block", "kubernetes.io/aws-ebs")  # no source: the class's provisioner decides
    assert claimed_volume_plugin({field: NOT_SOURCES[field]})[0] == "unknown"


# plain Kubernetes: discovery of the distribution registry

KUBERNETES_BROKEN = Path(__file__).parent / "fixtures" / "clusters" / "kubernetes-broken"


def chart_deployment(name: str, namespace: str, **container: Any) -> dict[str, Any]:
    """A Deployment labelled as the twuni chart labels it, running `container`."""
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app": "docker-registry", "release": name}},
            "spec": {"selector": {"matchLabels": {"app": "docker-registry", "release": name}},
                     "template": {"metadata": {"labels": {"app": "docker-registry",
                                                          "release": name}},
                                  "spec": {"containers": [{"name": "registry", **container}]}}}}


def settled(tmp_path: Path, objects: list[dict[str, Any]], **given: str) -> RunConfig:
    (tmp_path / "objects.yaml").write_text(yaml.safe_dump_all(objects))
    config = RunConfig(from_dir=tmp_path, names_given=frozenset(given), **given)
    return engine.settle(config, DumpSource(tmp_path))


def test_the_chart_registry_is_found_without_a_name() -> None:
    config = engine.settle(RunConfig(from_dir=KUBERNETES_BROKEN, names_given=frozenset()),
                           DumpSource(KUBERNETES_BROKEN))
    assert (config.platform, config.namespace, config.registry_name, config.registry_search) \
        == ("kubernetes", "registry", "docker-registry", "")
    assert config.platform_evidence == (
        "no OpenShift API group served (apps.openshift.io, route.openshift.io, "
        "oauth.openshift.io); registry found in any namespace: deployment/docker-registry -n "
        "registry, labelled app=docker-registry (image registry:3.0.0, serve ... config.yml, "
        "containerPort 5000, REGISTRY_* env)")


@pytest.mark.parametrize("container", [
    {"image": "ghcr.io/distribution/distribution:3.0.0"},
    {"image": "mirror.example.com/library/registry:2.8.3@sha256:" + "0" * 64},
    {"image": "example.com/own-build", "args": ["serve", "/etc/docker/registry/config.yml"]},
    {"image": "example.com/own-build", "ports": [{"containerPort": 5000}]},
    {"image": "example.com/own-build", "env": [{"name": "REGISTRY_HTTP_ADDR", "value": ":80"}]},
], ids=["distribution-image", "library-registry-image", "serve-config", "port", "env"])
def test_a_labelled_workload_is_a_registry_by_any_sign(tmp_path: Path,
                                                       container: dict[str, Any]) -> None:
    config = settled(tmp_path, [chart_deployment("mirror", "cache", **container)])
    assert (config.namespace, config.registry_name) == ("cache", "mirror")


def test_the_openshift_operand_and_unrelated_workloads_are_not_registries(tmp_path: Path) -> None:
    operand = chart_deployment("docker-registry", "default", image="registry:2",
                               command=["/usr/bin/dockerregistry"])
    openshift_env = chart_deployment("image-registry", "registry", image="registry:2",
                                     env=[{"name": "REGISTRY_OPENSHIFT_SERVER_ADDR"}])
    web = chart_deployment("web", "shop", image="nginx:1.27", ports=[{"containerPort": 80}])
    config = settled(tmp_path, [operand, openshift_env, web])
    assert (config.namespace, config.registry_name) == ("default", "docker-registry")
    assert config.registry_search == ("no Deployment or StatefulSet labelled "
                                      "app=docker-registry runs a distribution registry in "
                                      "any namespace")
    result = engine.evaluate(all_checks()["besteffort-qos"], replace(
        snapshot_of(), config=config, platform="kubernetes"), config, {})
    assert (result.status, result.summary) == (Status.UNKNOWN, "registry not found: "
                                               + config.registry_search
                                               + "; name it with --registry NAME -n NAMESPACE")


def test_several_registries_are_a_usage_error_naming_each(tmp_path: Path) -> None:
    objects = [chart_deployment("a", "team-a", image="registry:3"),
               chart_deployment("b", "team-b", image="registry:3")]
    with pytest.raises(NamesNeeded, match=r"2 distribution registries found in any namespace "
                       r"\(deployment/a -n team-a, deployment/b -n team-b\): name one with "
                       r"--registry NAME -n NAMESPACE"):
        settled(tmp_path, objects)
    assert settled(tmp_path, objects, namespace="team-b").registry_name == "b"
    assert settled(tmp_path, objects, registry_name="a").namespace == "team-a"


def test_a_statefulset_registry_is_found_and_judged(tmp_path: Path) -> None:
    statefulset = chart_deployment("registry", "infra", image="registry:3", resources={})
    statefulset["kind"] = "StatefulSet"
    config = settled(tmp_path, [statefulset])
    assert (config.namespace, config.registry_name, config.registry_search) == \
        ("infra", "registry", "")
    assert "registry found in any namespace: statefulset/registry -n infra" \
        in config.platform_evidence
    checks = engine.select_checks(["besteffort-qos"], config=config)
    report, _ = engine.inspect(config, checks)
    result = report.results[0]
    assert (result.status, result.resources[0]) == \
        (Status.CRIT, Resource("StatefulSet", "registry", "infra"))
    assert "statefulset/registry spec.template.spec.containers[registry].resources: requests " \
        "none, limits none" in result.details


def plan_on(dump: Path, check_id: str, **options: Any) -> list[Any]:
    from registry_doctor.doctor.fix.model import FixOptions
    from registry_doctor.doctor.fix.plan import make_plan, planner_reads

    config = RunConfig(from_dir=dump, names_given=frozenset())
    checks = engine.select_checks([check_id], config=config)
    report, snapshot = engine.inspect(config, checks, also=planner_reads(checks))
    return make_plan(report.results, snapshot, snapshot.config, FixOptions(**options), checks)


@pytest.mark.parametrize(("check_id", "options", "values"), [
    ("ephemeral-storage", {"claim_size": "20Gi", "storage_class": "efs-sc"},
     "persistence.enabled: true; persistence.size: 20Gi; persistence.accessMode: "
     "ReadWriteMany; persistence.storageClass: efs-sc"),
    ("ephemeral-storage", {"claim_name": "images"},
     "persistence.enabled: true; persistence.existingClaim: images"),
    ("nfs-scaling", {}, "replicaCount: 1"),
    ("besteffort-qos", {"limits_memory": "1Gi"},
     "resources: {requests: {cpu: 100m, memory: 256Mi}, limits: {memory: 1Gi}}"),
])
def test_a_helm_managed_registry_is_fixed_through_the_charts_values(
        check_id: str, options: dict[str, str], values: str, tmp_path: Path) -> None:
    objects = list(yaml.safe_load_all((KUBERNETES_BROKEN / "registry.yaml").read_text()))
    if "claim_name" in options:  # an existing ReadWriteMany claim
        objects.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": "images", "namespace": "registry"},
                        "spec": {"accessModes": ["ReadWriteMany"]}})
    (tmp_path / "objects.yaml").write_text(yaml.safe_dump_all(objects))
    [action] = plan_on(tmp_path, check_id, **options)
    assert (action.name, action.operation, str(action.target)) == (
        "helm-values", "manual", "deployment/docker-registry in registry")
    assert action.steps[0] == ("change the values of Helm release docker-registry (namespace "
                               f"registry): {values}")
    assert "helm upgrade docker-registry <chart> -n registry" in action.steps[1]
