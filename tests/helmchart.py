"""Rendering the Helm chart with the real helm binary, for tests/test_helm.py and test_rbac.py."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from registry_doctor.doctor.rbac import CLUSTER, NAMESPACE, Rule
from tests.conftest import REPO
from tests.tools import find_tool

CHART = REPO / "helm" / "registry-doctor"
RELEASE, RELEASE_NAMESPACE = "rd", "registry-doctor"
# Every optional part on: monitoring objects, the remediation CronJob, the canary and its roles.
EVERYTHING: dict[str, Any] = {
    "serviceMonitor": {"enabled": True, "labels": {"prometheus": "k8s"}},
    "prometheusRule": {"enabled": True, "labels": {"role": "alert-rules"}},
    "remediation": {"enabled": True, "schedule": "*/30 * * * *", "allowDisruptive": True},
    "checks": {"optIn": {"canary": True}},
    "canary": {"pruneRole": True},
    "dashboard": {"grafana": {"enabled": True}},  # openshiftConsole: OpenShift 4 only
    "acknowledge": [{"check": "besteffort-qos", "reason": "requests come in January",
                     "until": "2999-01-31", "object": {"name": "docker-registry"}}],
}
# Plain Kubernetes, with the 3.x names (that platform has none of its own to default to).
ON_KUBERNETES: dict[str, Any] = {
    "platform": "kubernetes",
    "registry": {"namespace": "default", "name": "docker-registry", "console": "registry-console",
                 "secrets": ["registry-certificates", "registry-certs", "registry-config"],
                 "consoleSecrets": ["console-secret"]}}
OPENSHIFT_3_11 = "v1.11.0"  # the Kubernetes of OpenShift 3.11
KUBERNETES = "v1.35.0"


def helm(*args: str, home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real helm, with its caches and config under `home`."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "HELM_CACHE_HOME": str(home / "cache"),
           "HELM_CONFIG_HOME": str(home / "config"), "HELM_DATA_HOME": str(home / "data")}
    done = subprocess.run([find_tool("helm"), *args], capture_output=True, text=True,
                          timeout=120, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


def template(home: Path, values: dict[str, Any] | None = None, kube_version: str = KUBERNETES,
             chart: Path = CHART, check: bool = True) -> subprocess.CompletedProcess[str]:
    values_file = home / "values.yaml"
    values_file.write_text(yaml.safe_dump(values or {}))
    return helm("template", RELEASE, str(chart), "--namespace", RELEASE_NAMESPACE,
                "--kube-version", kube_version, "-f", str(values_file), home=home, check=check)


def render(home: Path, values: dict[str, Any] | None = None, kube_version: str = KUBERNETES,
           chart: Path = CHART) -> list[dict[str, Any]]:
    """The manifests `helm template` renders."""
    text = template(home, values, kube_version, chart).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(manifests: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [m for m in manifests if m["kind"] == kind
             and m["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"{len(found)} {kind} named *{name_suffix}"
    return found[0]


def rendered_rules(manifests: list[dict[str, Any]], access: str = "read") -> list[Rule]:
    """The rules of the chart's Role and ClusterRole named `*-<access>` (read: the checks'
    reads; write: the remediation CronJob's writes), as doctor.rbac.Rule."""
    rules = []
    for scope, kind in ((NAMESPACE, "Role"), (CLUSTER, "ClusterRole")):
        for role in manifests:
            if role["kind"] != kind or not role["metadata"]["name"].endswith(f"-{access}"):
                continue
            for rule in role["rules"]:
                assert len(rule["apiGroups"]) == len(rule["resources"]) == 1, rule
                rules.append(Rule(scope, rule["apiGroups"][0], rule["resources"][0],
                                  tuple(rule["verbs"]), tuple(rule.get("resourceNames", ()))))
    return sorted(rules)


def container_args(manifests: list[dict[str, Any]], kind: str) -> list[str]:
    workload = find(manifests, kind)
    spec = workload["spec"]
    if kind == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]["containers"][0]["args"]
