"""The Helm chart with the real helm, kubectl and promtool: lint, renders with default values and
with every optional part on, for OpenShift 3.11 and plain Kubernetes, Kubernetes schemas, the
fake API server, the alert rules' single source, bad values, and flags the CLI accepts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from setuptools.config.pyprojecttoml import read_configuration
from typer.main import get_command

from registry_doctor import doctor
from registry_doctor.checks import all_checks
from registry_doctor.checks.besteffort_qos import BEST_EFFORT, qos_class
from registry_doctor.doctor import engine, rbac
from registry_doctor.doctor.cli import app
from registry_doctor.doctor.config import RunConfig
from registry_doctor.exporter import alerts, daemon
from tests.conftest import CLUSTERS, REPO
from tests.helmchart import (
    CHART,
    EVERYTHING,
    KUBERNETES,
    ON_KUBERNETES,
    OPENSHIFT_3_11,
    RELEASE_NAMESPACE,
    container_args,
    find,
    helm,
    render,
    template,
)
from tests.kubefake import FakeKubeAPI
from tests.packaging import package_data, package_folders
from tests.tools import find_tool

PLAIN_KUBERNETES = {**EVERYTHING, **ON_KUBERNETES}
RENDERS = {  # name -> (values, Kubernetes version)
    "default": ({}, KUBERNETES),
    "everything-openshift-3.11": (EVERYTHING, OPENSHIFT_3_11),
    "everything-kubernetes": (PLAIN_KUBERNETES, KUBERNETES),
}
CUSTOM_RESOURCES = {"ServiceMonitor", "PrometheusRule"}  # no Kubernetes schema: tested below


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm-home")


@pytest.fixture(scope="module")
def renders(home: Path) -> dict[str, list[dict[str, Any]]]:
    return {name: render(home, values, version) for name, (values, version) in RENDERS.items()}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


# lint and renders

@pytest.mark.parametrize("values", [{}, EVERYTHING, PLAIN_KUBERNETES],
                         ids=["default", "everything", "kubernetes"])
def test_helm_lint_is_clean(values: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
    done = helm("lint", "--strict", str(CHART), "-f", str(tmp_path / "values.yaml"),
                home=tmp_path)
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout
    assert not re.search(r"\[(WARNING|ERROR)\]", done.stdout), done.stdout


def test_default_render_is_the_exporter_alone(renders: dict[str, list[dict[str, Any]]]) -> None:
    kinds = sorted(m["kind"] for m in renders["default"])
    assert "Deployment" in kinds and "Service" in kinds and "ServiceAccount" in kinds
    assert not {"CronJob", "ServiceMonitor", "PrometheusRule"} & set(kinds)
    assert kinds.count("ServiceAccount") == 1


def test_every_optional_part_renders(renders: dict[str, list[dict[str, Any]]]) -> None:
    for name in ("everything-openshift-3.11", "everything-kubernetes"):
        kinds = {m["kind"] for m in renders[name]}
        assert {"Deployment", "Service", "ServiceMonitor", "PrometheusRule", "CronJob",
                "Role", "RoleBinding"} <= kinds, name
    openshift = renders["everything-openshift-3.11"]
    push = find(openshift, "RoleBinding", "-canary-push")
    assert push["metadata"]["namespace"] == "registry-doctor"  # the canary repository's project
    assert push["roleRef"]["name"] == "system:image-builder"
    prune = find(openshift, "ClusterRole", "-canary-prune")
    assert prune["rules"] == [{"apiGroups": ["", "image.openshift.io"], "resources": ["images"],
                               "verbs": ["delete"]}]
    # The OpenShift registry's own authorization means nothing on plain Kubernetes.
    assert not [m for m in renders["everything-kubernetes"] if "-canary-" in m["metadata"]["name"]]


def test_cronjob_api_version_follows_the_cluster(renders: dict[str, list[dict[str, Any]]]) -> None:
    assert find(renders["everything-openshift-3.11"], "CronJob")["apiVersion"] == "batch/v1beta1"
    assert find(renders["everything-kubernetes"], "CronJob")["apiVersion"] == "batch/v1"


def test_remediation_cronjob(renders: dict[str, list[dict[str, Any]]]) -> None:
    manifests = renders["everything-kubernetes"]
    cron = find(manifests, "CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["schedule"] == EVERYTHING["remediation"]["schedule"]
    assert cron["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    args = container_args(manifests, "CronJob")
    assert args[:4] == ["check", "--fix", "--yes", "--allow-disruptive"]
    # Its own identity: the exporter's account is never the one that writes.
    account = pod_spec(cron)["serviceAccountName"]
    assert account == "rd-registry-doctor-remediation"
    assert account != pod_spec(find(manifests, "Deployment"))["serviceAccountName"]
    assert find(manifests, "ServiceAccount", "-remediation")["metadata"]["name"] == account


# what the pods run as

@pytest.mark.parametrize("name", ["everything-openshift-3.11", "everything-kubernetes"])
def test_pods_are_restricted_and_never_best_effort(name: str,
                                                   renders: dict[str, list[dict[str, Any]]]
                                                   ) -> None:
    for kind in ("Deployment", "CronJob"):
        spec = pod_spec(find(renders[name], kind))
        assert spec["securityContext"]["runAsNonRoot"] is True
        # A fixed UID would be refused by OpenShift's restricted SCC (it assigns one).
        assert "runAsUser" not in json.dumps(spec)
        seccomp = spec["securityContext"].get("seccompProfile")
        assert seccomp == (None if name.endswith("3.11") else {"type": "RuntimeDefault"})
        containers = spec["containers"]
        for container in containers:
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
        classes = qos_class([(c["name"], c) for c in containers], None)
        assert classes[0] != BEST_EFFORT, kind


def test_exporter_probes_and_ports(renders: dict[str, list[dict[str, Any]]]) -> None:
    manifests = renders["default"]
    container = pod_spec(find(manifests, "Deployment"))["containers"][0]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9709, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert "--listen=0.0.0.0:9709" in container["args"]
    service = find(manifests, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    labels = find(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_service_monitor_scrapes_the_exporter_service(
        renders: dict[str, list[dict[str, Any]]]) -> None:
    manifests = renders["everything-kubernetes"]
    monitor, service = find(manifests, "ServiceMonitor"), find(manifests, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= \
        service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["metadata"]["labels"]["prometheus"] == "k8s"


# validation against schemas and an API server

def validate(manifest: dict[str, Any]) -> None:
    if manifest["apiVersion"] == "batch/v1beta1":
        # No schema of a Kubernetes that served batch/v1beta1 is packaged; batch/v1 only adds
        # optional fields to it, so a v1beta1 CronJob valid as v1 is valid as v1beta1.
        manifest = {**manifest, "apiVersion": "batch/v1"}
    kubernetes_validate.validate(manifest, KUBERNETES.removeprefix("v"), strict=True)


@pytest.mark.parametrize("name", RENDERS)
def test_manifests_match_the_kubernetes_schemas(name: str,
                                                renders: dict[str, list[dict[str, Any]]]
                                                ) -> None:
    for manifest in renders[name]:
        if manifest["kind"] not in CUSTOM_RESOURCES:
            validate(manifest)


def test_schema_validation_catches_a_misplaced_field(
        renders: dict[str, list[dict[str, Any]]]) -> None:
    deployment = json.loads(json.dumps(find(renders["default"], "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFilesystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)


@pytest.mark.parametrize(("values", "version", "kube_profile"), [
    (EVERYTHING, OPENSHIFT_3_11, "openshift-3.11"), (PLAIN_KUBERNETES, KUBERNETES,
                                                     "kubernetes-1.33")],
    ids=["openshift-3.11", "kubernetes-1.33"])
def test_the_render_applies_to_the_api_server_it_targets(
        home: Path, tmp_path: Path, values: dict[str, Any], version: str,
        kube_profile: str) -> None:
    """Each render against the server it is for (its kinds, versions and namespaces): with
    server dry run where the server has it; an OpenShift 3.11 master has none (it would apply
    the writes anyway), so there the chart is applied for real."""
    manifest = tmp_path / "chart.yaml"
    manifest.write_text(template(home, values, version).stdout)
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                  for n in ("default", RELEASE_NAMESPACE)]
    with FakeKubeAPI(objects=namespaces, api_profile=kube_profile) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        dry_run = ["--dry-run=server"] if api.profile.dry_run else []
        done = subprocess.run(
            [find_tool("kubectl"), "--kubeconfig", str(kubeconfig), "apply", *dry_run,
             "-f", str(manifest)], capture_output=True, text=True, timeout=120,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr
        stored = api.objects("cronjobs")
    suffix = " (server dry run)" if dry_run else ""
    applied = [line for line in done.stdout.splitlines() if line.endswith(f"created{suffix}")]
    rendered = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    assert len(applied) == len(rendered)
    assert f"cronjob.batch/rd-registry-doctor-remediation created{suffix}" in done.stdout
    assert [c["apiVersion"] for c in stored] == ([] if dry_run else ["batch/v1beta1"])


# the alert rules: one source

def test_prometheus_rule_carries_the_exporter_rules_unchanged(
        renders: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    rule = find(renders["everything-kubernetes"], "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(alerts.RULES_FILE.read_text())
    assert rule["metadata"]["labels"]["role"] == "alert-rules"
    rules_file = tmp_path / "rendered.rules.yml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    done = subprocess.run([find_tool("promtool"), "check", "rules", str(rules_file)],
                          capture_output=True, text=True, timeout=60)
    count = sum(len(g["rules"]) for g in rule["spec"]["groups"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {count} rules found" in done.stdout


def test_the_chart_links_the_rules_rather_than_copying_them() -> None:
    link = CHART / "files" / "registry-doctor.rules.yml"
    assert link.is_symlink() and link.resolve() == alerts.RULES_FILE


def test_packaged_chart_holds_the_rules_and_renders_the_same(home: Path, tmp_path: Path) -> None:
    helm("package", str(CHART), "--destination", str(tmp_path), home=home)
    package = tmp_path / f"registry-doctor-{doctor.__version__}.tgz"
    with tarfile.open(package) as archive:
        member = archive.getmember("registry-doctor/files/registry-doctor.rules.yml")
        assert member.isfile()  # the link's content, not a link out of the archive
        assert archive.extractfile(member).read() == alerts.RULES_FILE.read_bytes()
    assert template(home, EVERYTHING, chart=package).stdout == \
        template(home, EVERYTHING).stdout


# values

@pytest.mark.parametrize("values, message", [
    ({"bogus": 1}, "additional properties 'bogus' not allowed"),
    ({"registry": {"namespace": "Not_A_Namespace"}}, "/registry/namespace"),
    # null deletes a default: BestEffort (no requests at all) or half-set requests.
    ({"exporter": {"resources": {"requests": None}}}, "missing property 'requests'"),
    ({"remediation": {"resources": {"requests": {"memory": None}}}},
     "missing property 'memory'"),
    ({"remediation": {"schedule": "daily"}}, "/remediation/schedule"),
    ({"canary": {"repository": "Registry-Doctor/Canary"}}, "/canary/repository"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"checks": {"optIn": {"canary": "yes"}}}, "/checks/optIn/canary"),
    ({"exporter": {"interval": "soon"}}, "/exporter/interval"),
    ({"checks": {"only": ["no-such-check"]}}, 'unknown check id "no-such-check"'),
    ({"checks": {"optIn": {"s3_write_probe": True}}}, 'unknown opt-in "s3_write_probe"'),
    ({"serviceAccount": {"create": False}}, "serviceAccount.name: name an existing"),
    ({"platform": "openshift5"}, "/platform"),
    ({"platform": "kubernetes"}, "registry.namespace: name the registry's namespace "
     "(platform kubernetes has no default)"),
], ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_bad_values_fail_with_a_message_naming_the_field(values: dict[str, Any], message: str,
                                                         tmp_path: Path) -> None:
    done = template(tmp_path, values, check=False)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_chart_app_version_is_the_tool_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == doctor.__version__


# the rendered flags, as the CLI parses them

def parse(args: list[str]) -> dict[str, Any]:
    """The options a registry-doctor subcommand gets from `args` (raises on a bad flag)."""
    group = get_command(app)
    command = group.get_command(None, args[0])  # type: ignore[arg-type]
    return command.make_context(args[0], list(args[1:])).params


@pytest.mark.parametrize("name", RENDERS)
def test_the_cli_accepts_the_rendered_exporter_flags(
        name: str, renders: dict[str, list[dict[str, Any]]]) -> None:
    args = container_args(renders[name], "Deployment")
    params = parse(args)
    assert daemon.parse_listen(params["listen"]) == ("0.0.0.0", 9709)
    assert daemon.parse_interval(params["interval"]) == 60
    values = RENDERS[name][0]
    assert params["canary"] is values.get("checks", {}).get("optIn", {}).get("canary", False)
    assert (params["namespace"], params["registry"], params["console"]) == (
        "default", "docker-registry", "registry-console")


@pytest.mark.parametrize("allow_disruptive", [False, True])
def test_the_cli_accepts_the_rendered_cronjob_flags(allow_disruptive: bool, home: Path) -> None:
    manifests = render(home, {**EVERYTHING, "remediation": {
        "enabled": True, "allowDisruptive": allow_disruptive, "extraArgs": ["--cooldown=2h"]}})
    params = parse(container_args(manifests, "CronJob"))
    assert (params["fix"], params["yes"], params["allow_disruptive"]) == (
        True, True, allow_disruptive)
    assert params["output"] == "json" and params["dry_run"] == "none"
    assert params["exit_policy"] == "fix"  # docs/cron.md: a crit alone does not fail the job
    assert (params["namespace"], params["registry"], params["console"]) == (
        "default", "docker-registry", "registry-console")
    assert params["canary"] is True and params["cooldown"] == "2h"


def test_the_rendered_check_flags_run_the_selected_checks(home: Path) -> None:
    """The flags `serve` and the CronJob share, given to `check` against a dump: the checks
    that run are the ones the chart granted reads for."""
    manifests = render(home, {"checks": {"skip": ["besteffort-qos"],
                                         "optIn": {"canary": True}}})
    shared = container_args(manifests, "Deployment")[3:]  # after serve --listen --interval
    done = subprocess.run([sys.executable, "-m", "registry_doctor.doctor.cli", "check", *shared,
                           "--from-dir", str(CLUSTERS / "healthy"), "--no-probes", "-o", "json"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode in (0, 1, 2, 3), done.stderr
    expected = engine.select_checks(exclude=["besteffort-qos"], config=RunConfig(canary=True))
    assert [r["check"] for r in json.loads(done.stdout)["results"]] == [
        c.meta.id for c in expected]


def test_notes_say_how_to_see_results(home: Path, tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(
        {**EVERYTHING, "rbac": {"readSecrets": False}, "canary": {"pruneRole": False}}))
    done = helm("install", "rd", str(CHART), "--dry-run=client", "-n", RELEASE_NAMESPACE,
                "-f", str(tmp_path / "values.yaml"), home=home)
    notes = done.stdout.partition("NOTES:")[2]
    assert "port-forward service/rd-registry-doctor 9709" in notes
    readers = sorted({i for g, ids in rbac.grants_by_check(
        c.meta for c in all_checks().values()).items() if g.resource == "secrets" for i in ids})
    running = [c.meta.id for c in engine.select_checks(exclude=readers,
                                                       config=RunConfig(canary=True))
               if not c.meta.platforms or "openshift3" in c.meta.platforms]  # the default
    assert f"Checks: {', '.join(running)}\n" in notes
    if readers:
        assert f"Skipped: {', '.join(readers)} (rbac.readSecrets=false skips" in notes
    assert "create job --from=cronjob/rd-registry-doctor-remediation" in notes
    assert "oc new-project registry-doctor" in notes
    assert "oc adm prune images" in notes


# the image

@pytest.mark.filterwarnings("ignore:Support for `\\[tool.setuptools\\]`")
def test_dockerfile_copies_everything_the_package_is_built_from(tmp_path: Path) -> None:
    """No Docker engine here: lay out the build context as the Dockerfile's COPY lines do, and
    check that setuptools finds the same packages, package data and readme there."""
    dockerfile = (REPO / "Dockerfile").read_text()
    context = tmp_path / "context"
    context.mkdir()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            *sources, destination = line.split()[1:]
            for source in sources:
                target = context / destination
                if destination.endswith("/"):
                    target = target / Path(source).name
                if (REPO / source).is_dir():
                    shutil.copytree(REPO / source, target,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(REPO / source, target)
    folders = package_folders()
    for folder in folders.values():
        wanted = sorted(p.relative_to(REPO) for p in (REPO / folder).glob("*.py"))
        assert sorted(p.relative_to(context) for p in (context / folder).glob("*.py")) == wanted
    project = read_configuration(REPO / "pyproject.toml", expand=False)
    assert (context / project["project"]["readme"]).is_file()
    for package, patterns in package_data().items():
        for pattern in patterns:
            copied = sorted((context / folders[package]).glob(pattern))
            assert copied != [], f"{folders[package]}/{pattern}"
            assert len(copied) == len(list((REPO / folders[package]).glob(pattern)))
    assert "registry-doctor" in project["project"]["scripts"]
    assert re.search(r'^ENTRYPOINT \["registry-doctor"\]$', dockerfile, re.M)
    user = re.search(r"^USER (\S+)$", dockerfile, re.M)
    # Numeric and not root: the kubelet can verify runAsNonRoot without /etc/passwd.
    assert user and user.group(1).isdigit() and int(user.group(1)) > 0


def test_platform_openshift4_renders_the_operators_registry_for_the_cli(tmp_path: Path) -> None:
    """The chart's `platform` becomes --platform with the platform's names, which the CLI
    accepts; the remediation CronJob may patch the operator's Config by name only."""
    manifests = render(tmp_path, {"platform": "openshift4", "remediation": {"enabled": True}})
    args = container_args(manifests, "Deployment")
    options = parse(args)
    assert (options["platform"], options["namespace"], options["registry"],
            options["console"]) == ("openshift4", "openshift-image-registry", "image-registry",
                                    None)
    write = find(manifests, "ClusterRole", "-write")
    assert {"apiGroups": ["imageregistry.operator.openshift.io"], "resources": ["configs"],
            "resourceNames": ["cluster"], "verbs": ["get", "patch"]} in write["rules"]
    secrets = [a for a in container_args(manifests, "CronJob") if a.startswith("--registry-")]
    assert secrets == ["--registry-secret=image-registry-private-configuration",
                       "--registry-secret=image-registry-tls"]
    # Only there: on OpenShift 3.x the Config does not exist and nothing may patch it.
    elsewhere = find(render(tmp_path, {"remediation": {"enabled": True}}), "ClusterRole", "-write")
    assert not [r for r in elsewhere["rules"]
                if r["apiGroups"] == ["imageregistry.operator.openshift.io"]]
