"""Resolving the registry's configuration from its workload: which file, from which volume,
with which environment, under which image's rules; and secret values never shown."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from registry_doctor.doctor.registryconfig import RegistryConfig, resolve
from registry_doctor.doctor.registryconfig.rules import OPENSHIFT_RULES, UPSTREAM_RULES, rules_for
from registry_doctor.doctor.snapshot.dump import redact_secret
from tests.workloads import (
    OPENSHIFT_IMAGE,
    UPSTREAM_IMAGE,
    configmap,
    registry_dc,
    secret,
    snapshot_of,
)

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
S3_CONFIG = f"""version: 0.1
storage:
  delete:
    enabled: true
  s3:
    accesskey: {ACCESS_KEY}
    secretkey: {SECRET_KEY}
    region: us-east-1
    bucket: images
    rootdirectory: /registry
"""


def resolved(*objects: dict[str, Any]) -> RegistryConfig:
    snapshot = snapshot_of(*objects)
    return resolve(snapshot, snapshot.registry())


def everything_said(config: RegistryConfig) -> str:
    fields = ["storage", *(f"storage.{d}" for d in config.storage or {}),
              *(f"storage.{config.driver}.{k}" for k in config.params)]
    return "\n".join([config.source_line, config.credentials().source, repr(config.credentials()),
                      str(config.unresolved), *map(str, config.problems),
                      *map(config.describe, fields)])


def test_openshift_image_without_a_mounted_file_uses_its_own() -> None:
    config = resolved(registry_dc(config_from=None))
    assert config.driver == "filesystem" and config.params == {"rootdirectory": "/registry"}
    assert config.problems == []
    assert "built into image" in config.source_line and "/config.yml" in config.source_line


def test_upstream_image_default_has_pruning_disabled() -> None:
    config = resolved(registry_dc(UPSTREAM_IMAGE, config_from=None))
    assert config.params == {"rootdirectory": "/var/lib/registry"}
    assert [p.field for p in config.warnings] == ["storage.delete.enabled"]


def test_unknown_image_without_a_mounted_file_cannot_be_resolved() -> None:
    config = resolved(registry_dc("quay.io/acme/registry-custom:1", config_from=None,
                                  args=["/srv/registry.yml"]))
    assert config.unresolved and "/srv/registry.yml" in config.unresolved
    assert config.driver is None


def test_config_in_a_secret_is_read_and_its_keys_are_never_shown() -> None:
    config = resolved(registry_dc(), secret("registry-config", {"config.yml": S3_CONFIG}))
    assert config.driver == "s3" and config.params["bucket"] == "images"
    assert config.problems == []
    assert config.describe("storage.s3.secretkey") == (
        "storage.s3.secretkey set (secret registry-config key config.yml)")
    assert config.settings() == [
        "from secret registry-config key config.yml: storage.s3.accesskey set, "
        "storage.s3.bucket=images, storage.s3.region=us-east-1, "
        "storage.s3.rootdirectory=/registry, storage.s3.secretkey set"]
    assert config.describe("storage.s3.bucket").startswith("storage.s3.bucket=images (")
    credentials = config.credentials()
    assert (credentials.access_key, credentials.secret_key) == (ACCESS_KEY, SECRET_KEY)
    said = everything_said(config)
    assert ACCESS_KEY not in said and SECRET_KEY not in said


def test_path_from_args_and_configmap_items() -> None:
    dc = registry_dc(config_from=None, args=["/usr/bin/dockerregistry", "/etc/registry/r.yaml"],
                     volumeMounts=[{"name": "cfg", "mountPath": "/etc/registry"}])
    dc["spec"]["template"]["spec"]["volumes"] = [{"name": "cfg", "configMap": {
        "name": "registry", "items": [{"key": "registry-3.11.yml", "path": "r.yaml"}]}}]
    config = resolved(dc, configmap("registry", {"registry-3.11.yml": S3_CONFIG}))
    assert config.path == "/etc/registry/r.yaml"
    assert "configmap registry key registry-3.11.yml" in config.source_line
    assert config.driver == "s3"


def test_sub_path_mount_over_the_default_file() -> None:
    dc = registry_dc(config_from=None, volumeMounts=[
        {"name": "cfg", "mountPath": "/config.yml", "subPath": "config.yml"}])
    dc["spec"]["template"]["spec"]["volumes"] = [{"name": "cfg",
                                                  "secret": {"secretName": "registry-config"}}]
    config = resolved(dc, secret("registry-config", {"config.yml": S3_CONFIG}))
    assert config.driver == "s3" and config.path == "/config.yml"


def test_shell_command_and_kubernetes_variable_references() -> None:
    shell = registry_dc(command=["/bin/sh", "-c",
                                 "exec /usr/bin/dockerregistry ${REGISTRY_CONFIGURATION_PATH}"])
    kube = registry_dc(args=["/usr/bin/dockerregistry", "$(REGISTRY_CONFIGURATION_PATH)"])
    for dc in (shell, kube):
        config = resolved(dc, secret("registry-config", {"config.yml": S3_CONFIG}))
        assert config.path == "/etc/docker/registry/config.yml"
        assert config.path_origin == "the container's command and args"


def test_missing_secret_and_missing_key_stop_the_pod() -> None:
    absent = resolved(registry_dc())
    assert [p.field for p in absent.fatal] == ["volume registry-config"]
    assert "secret registry-config not found in namespace default" in str(absent.fatal[0])
    no_key = resolved(registry_dc(), secret("registry-config", {"other.yml": S3_CONFIG}))
    assert "has no such file" in str(no_key.fatal[0])


def test_a_redacted_config_is_judged_as_the_original_without_its_keys() -> None:
    original = resolved(registry_dc(), secret("registry-config", {"config.yml": S3_CONFIG}))
    config = resolved(registry_dc(),
                      redact_secret(secret("registry-config", {"config.yml": S3_CONFIG})))
    assert config.unresolved is None and config.problems == original.problems
    assert config.params["bucket"] == "images" and config.value("storage.s3.region") == \
        "us-east-1"
    assert config.credentials().source.endswith("not readable here")
    assert ACCESS_KEY not in everything_said(config) and SECRET_KEY not in everything_said(config)


def test_a_masked_config_file_cannot_be_judged() -> None:
    masked = redact_secret(secret("registry-config", {"config.yml": "storage: [not, a, config"}))
    config = resolved(registry_dc(), masked)
    assert config.unresolved is not None and "redacted in this dump" in config.unresolved


def test_config_on_a_persistent_volume_cannot_be_read() -> None:
    dc = registry_dc(config_from=None, volumeMounts=[{"name": "data", "mountPath": "/"}])
    dc["spec"]["template"]["spec"]["volumes"] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "registry"}}]
    config = resolved(dc)
    assert config.unresolved and "persistentVolumeClaim volume" in config.unresolved


def test_env_from_secret_refs_is_used_and_hidden() -> None:
    env = {"REGISTRY_STORAGE": "s3", "REGISTRY_STORAGE_S3_REGION": "us-east-1",
           "REGISTRY_STORAGE_S3_BUCKET": {"valueFrom": {"configMapKeyRef": {
               "name": "registry-s3", "key": "bucket"}}},
           "REGISTRY_STORAGE_S3_ACCESSKEY": {"valueFrom": {"secretKeyRef": {
               "name": "registry-s3", "key": "id"}}},
           "REGISTRY_STORAGE_S3_SECRETKEY": {"valueFrom": {"secretKeyRef": {
               "name": "registry-s3", "key": "key"}}}}
    config = resolved(registry_dc(env=env, config_from=None),
                      secret("registry-s3", {"id": ACCESS_KEY, "key": SECRET_KEY}),
                      configmap("registry-s3", {"bucket": "images"}))
    assert config.driver == "s3" and config.fatal == []
    assert config.describe("storage.s3.secretkey") == (
        "storage.s3.secretkey set (env REGISTRY_STORAGE_S3_SECRETKEY of dc/docker-registry "
        "from secret registry-s3 key key)")
    assert config.describe("storage.s3.bucket") == (
        "storage.s3.bucket=images (env REGISTRY_STORAGE_S3_BUCKET of dc/docker-registry from "
        "configmap registry-s3 key bucket)")
    assert "storage.delete.enabled not set (after env REGISTRY_STORAGE" in str(config.warnings[0])
    said = everything_said(config)
    assert ACCESS_KEY not in said and SECRET_KEY not in said


def test_a_value_from_a_secret_is_hidden_even_in_the_registrys_own_message() -> None:
    env = {"REGISTRY_STORAGE_S3_REGION": {"valueFrom": {"secretKeyRef": {
        "name": "s3", "key": "region"}}}}
    config = resolved(registry_dc(env=env),
                      secret("registry-config", {"config.yml": S3_CONFIG}),
                      secret("s3", {"region": "xx-private-region-1"}))
    assert len(config.fatal) == 1 and "Invalid region provided: <hidden>" in str(config.fatal[0])
    assert "xx-private-region-1" not in everything_said(config)


def test_missing_env_refs_stop_the_pod_unless_optional() -> None:
    ref = {"secretKeyRef": {"name": "absent", "key": "k"}}
    config = resolved(registry_dc(env={"REGISTRY_STORAGE_S3_SECRETKEY": {"valueFrom": ref}}),
                      secret("registry-config", {"config.yml": S3_CONFIG}))
    assert "secret absent not found" in str(config.fatal[0])
    assert "CreateContainerConfigError" in str(config.fatal[0])
    optional = {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}
    config = resolved(registry_dc(env={"REGISTRY_STORAGE_S3_SECRETKEY": {"valueFrom": optional}}),
                      secret("registry-config", {"config.yml": S3_CONFIG}))
    assert config.fatal == [] and config.credentials().secret_key == SECRET_KEY


def test_env_from_with_prefix() -> None:
    dc = registry_dc(config_from=None, envFrom=[
        {"prefix": "REGISTRY_STORAGE_", "configMapRef": {"name": "storage-env"}}])
    config = resolved(dc, configmap("storage-env", {"DELETE_ENABLED": "false"}))
    assert config.value("storage.delete.enabled") is False
    assert "envFrom configmap storage-env key DELETE_ENABLED" in \
        config.describe("storage.delete.enabled")


def test_credentials_from_the_container_environment() -> None:
    env = {"AWS_ACCESS_KEY_ID": {"valueFrom": {"secretKeyRef": {"name": "aws", "key": "id"}}},
           "AWS_SECRET_ACCESS_KEY": {"valueFrom": {"secretKeyRef": {"name": "aws", "key": "k"}}}}
    config = resolved(registry_dc(env=env), secret("aws", {"id": ACCESS_KEY, "k": SECRET_KEY}),
                      secret("registry-config", {"config.yml": "version: 0.1\nstorage:\n  s3: "
                                                 "{region: us-east-1, bucket: images}\n"}))
    credentials = config.credentials()
    assert credentials.usable and credentials.secret_key == SECRET_KEY
    assert credentials.source.startswith("env AWS_ACCESS_KEY_ID of dc/docker-registry from "
                                         "secret aws key id")
    none = resolved(registry_dc(), secret("registry-config", {"config.yml": "version: 0.1\n"
                                          "storage:\n  s3: {region: us-east-1, bucket: b}\n"}))
    assert not none.credentials().usable and "instance role" in none.credentials().source


def test_openshift_fork_rules_differ_from_upstream() -> None:
    """The 3.11 fork lists 17 regions, has no skipverify and capitalises its messages; 2.8
    knows the 18 regions of its vendored AWS SDK, cn-northwest-1 among them."""
    text = ("version: 0.1\nstorage:\n  delete: {enabled: true}\n  s3:\n    region: cn-northwest-1\n"
            "    bucket: images\n    skipverify: maybe\n")
    fork = resolved(registry_dc(OPENSHIFT_IMAGE), secret("registry-config", {"config.yml": text}))
    upstream = resolved(registry_dc(UPSTREAM_IMAGE),
                        secret("registry-config", {"config.yml": text}))
    assert [p.field for p in fork.fatal] == ["storage.s3.region"]
    assert '"Invalid region provided: cn-northwest-1"' in str(fork.fatal[0])
    assert [p.field for p in fork.warnings] == ["storage.s3.skipverify"]
    assert [p.field for p in upstream.fatal] == ["storage.s3.skipverify"]
    assert '"the skipVerify parameter should be a boolean"' in str(upstream.fatal[0])


@pytest.mark.parametrize(("image", "rules", "says"), [
    ("registry.access.redhat.com/openshift3/ose-docker-registry:v3.11.272",
     "the OpenShift 3.11 registry", "applied (image"),
    ("docker.io/openshift/origin-docker-registry:v3.10", "the OpenShift 3.10 registry",
     "applied (image"),
    ("docker.io/openshift/origin-docker-registry:v1.5.1", "the OpenShift 3.8 registry",
     "runs 1.5, which has no rules of its own modelled here"),
    ("docker.io/openshift/origin-docker-registry@sha256:" + "0" * 64,
     "the OpenShift 3.11 registry", "(a digest) does not say which version it runs"),
    ("docker.io/openshift/origin-docker-registry", "the OpenShift 3.11 registry", "(no tag)"),
    ("registry:2.7.1", "the distribution 2.7 registry", "applied (image"),
    ("registry:2.5.2", "the distribution 2.6 registry", "runs 2.5"),
    ("registry:3.0.0-rc.1", "the distribution 3.0 registry", "applied (image"),
    ("localhost:5000/library/registry:3.1", "the distribution 3.1 registry", "applied (image"),
    ("registry:latest", "the distribution 3 registry", "(tag latest) does not say"),
])
def test_the_tag_picks_the_rules_of_its_release(image: str, rules: str, says: str) -> None:
    family = OPENSHIFT_RULES if "docker-registry" in image else UPSTREAM_RULES
    flavour, line = rules_for(image, family)
    assert flavour.name == rules and line.startswith(f"start-up rules of {rules}") \
        and says in line, line


def test_a_custom_image_gets_the_newest_rules_whatever_its_tag() -> None:
    config = resolved(registry_dc("quay.example.com/ops/my-registry:2.6"),
                      secret("registry-config", {"config.yml": "version: 0.1\nstorage:\n"
                                                 "  delete: {enabled: true}\n  swift: {}\n"}))
    assert config.flavour.name == "the distribution 3 registry"
    assert "is not a known registry image" in config.rules_line
    assert [p.field for p in config.fatal] == ["storage.swift"]


@settings(max_examples=200, deadline=None)
# A secret that parses as a YAML mapping (`zzSECRET:`): its keys are its text (found once).
@example(text=":", region="", chunksize=0)
@given(text=st.text(), region=st.text(max_size=20),
       chunksize=st.one_of(st.integers(), st.text(max_size=12)))
def test_secret_values_never_appear_whatever_the_input(text: str, region: str,
                                                       chunksize: Any) -> None:
    secret_value = f"zzSECRET{text}"  # any text, marked so it cannot occur by chance
    env = {"REGISTRY_STORAGE_S3_SECRETKEY": {"valueFrom": {"secretKeyRef": {
               "name": "s3", "key": "secretkey"}}},
           "REGISTRY_STORAGE_S3_ACCESSKEY": {"valueFrom": {"secretKeyRef": {
               "name": "s3", "key": "secretkey"}}},
           "REGISTRY_STORAGE_S3_REGION": region, "REGISTRY_STORAGE_S3_CHUNKSIZE": str(chunksize)}
    config = resolved(registry_dc(env=env),
                      secret("s3", {"secretkey": secret_value}),
                      secret("registry-config", {"config.yml": S3_CONFIG}))
    assert secret_value not in everything_said(config)
