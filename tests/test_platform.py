"""The platform layer: detecting OpenShift 3.x and locating one installation, the same way
for checks, planners and probes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry_doctor.checks import all_checks
from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import Status
from registry_doctor.doctor.platform import ADAPTERS, adapter, choose
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


def test_without_anything_openshift_auto_falls_back_to_the_only_platform_and_says_so() -> None:
    assert choose("auto", GroupsSource({"apps", "batch"}), 5) == (
        "openshift3", "nothing platform-specific found: judged as openshift3")
    platform, why = choose("auto", GroupsSource(None), 5)
    assert (platform, why) == ("openshift3", "API groups unknown (connection refused): "
                                             "judged as openshift3")


def test_a_dump_serves_the_groups_of_the_objects_it_holds(tmp_path: Path) -> None:
    (tmp_path / "objects.yaml").write_text(yaml.safe_dump_all([registry_dc(), *[
        route("registry", "docker-registry"),
        service("docker-registry", {"docker-registry": "default"})]]))
    groups = DumpSource(tmp_path).api_groups(5)
    assert groups == {"apps.openshift.io", "route.openshift.io", ""}
    assert choose("auto", DumpSource(tmp_path), 5)[0] == "openshift3"


def test_a_requested_platform_is_taken_as_is_and_an_unknown_one_is_refused() -> None:
    assert choose("openshift3", GroupsSource(None), 5) == ("openshift3", "--platform openshift3")
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
    assert dict(names) == {"cli": "oc", "namespace": "default",
                           "registry": "deployment/docker-registry",
                           "console": "dc/registry-console", "service": "svc/docker-registry",
                           "owner": "deployment/docker-registry"}


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
             "service": "SVC", "owner": "OWNER"}
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
