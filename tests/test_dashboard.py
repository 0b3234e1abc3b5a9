"""The Grafana dashboard: its JSON, the chart's ConfigMaps (Grafana sidecar, OpenShift 4
console), and every PromQL expression in it answered by the real Prometheus scraping the
exporter, node_exporter's textfile collector (the textfiles of `check --fix`, `canary` and a
check of a registry on a claim) and a kubelet's volume stats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import yaml
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily

from tests.exporting import http_get, poll
from tests.helmchart import CHART, find, render
from tests.registry_harness import filesystem, registry
from tests.test_exporter_prometheus import PrometheusAPI
from tests.tools import find_tool, free_port, server

DASHBOARD_FILE = CHART / "files" / "dashboards" / "registry-doctor.json"
DASHBOARD = json.loads(DASHBOARD_FILE.read_text())
REPO = CHART.parent.parent
CLUSTERS = REPO / "tests" / "fixtures" / "clusters"
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def expressions() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in DASHBOARD["panels"]
            for target in panel["targets"]]


# --- the JSON ----------------------------------------------------------------------------

def test_dashboard_uses_a_datasource_variable_not_inputs() -> None:
    """Sidecar and file provisioning do not resolve __inputs (grafana/grafana#10786)."""
    assert "__inputs" not in DASHBOARD
    [variable] = DASHBOARD["templating"]["list"]
    assert (variable["type"], variable["query"], variable["name"]) == (
        "datasource", "prometheus", "datasource")
    for panel in DASHBOARD["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert all(t["datasource"] == panel["datasource"] for t in panel["targets"])
    assert 8 <= len(DASHBOARD["uid"]) <= 40
    assert len({p["id"] for p in DASHBOARD["panels"]}) == len(DASHBOARD["panels"])


def test_dashboard_has_the_panels_admins_asked_for() -> None:
    shown = " ".join(expr for _, expr in expressions())
    for metric in ("registry_doctor_check_status", "registry_doctor_last_run_timestamp_seconds",
                   "registry_doctor_run_duration_seconds",
                   "registry_doctor_certificate_not_after_timestamp_seconds",
                   "registry_doctor_canary_phase_duration_seconds",
                   "registry_doctor_fix_actions",
                   "registry_doctor_acknowledged_until_timestamp_seconds",
                   "registry_doctor_registry_volume_info", "kubelet_volume_stats_used_bytes",
                   "kubelet_volume_stats_capacity_bytes"):
        assert metric in shown, metric


# --- the chart ---------------------------------------------------------------------------

def test_dashboard_configmaps_are_off_by_default(tmp_path: Path) -> None:
    manifests = render(tmp_path)
    assert not [m for m in manifests if m["kind"] == "ConfigMap"
                and m["metadata"]["name"].endswith("-dashboard")]


def test_grafana_sidecar_configmap(tmp_path: Path) -> None:
    manifests = render(tmp_path, {"dashboard": {"grafana": {
        "enabled": True, "labelValue": "yes", "namespace": "monitoring",
        "annotations": {"grafana_folder": "Registry"}}}})
    configmap = find(manifests, "ConfigMap", "-dashboard")
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "yes"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Registry"}
    assert json.loads(configmap["data"]["registry-doctor.json"]) == DASHBOARD


def test_openshift_console_configmap(tmp_path: Path) -> None:
    manifests = render(tmp_path, {"dashboard": {"openshiftConsole": {"enabled": True}}})
    configmap = find(manifests, "ConfigMap", "-dashboard")
    assert configmap["metadata"]["namespace"] == "openshift-config-managed"
    assert configmap["metadata"]["labels"]["console.openshift.io/dashboard"] == "true"
    assert json.loads(configmap["data"]["registry-doctor.json"]) == DASHBOARD


def test_acknowledgements_reach_the_exporter_and_the_cronjob(tmp_path: Path) -> None:
    from registry_doctor.checks import all_checks
    from registry_doctor.doctor.acknowledge import load_config

    entry = {"check": "besteffort-qos", "reason": "requests: yes", "until": "2999-01-31",
             "object": {"kind": "DeploymentConfig", "name": "docker-registry"}, "by": "ops"}
    manifests = render(tmp_path, {"acknowledge": [entry], "remediation": {"enabled": True}})
    config_file = tmp_path / "registry-doctor.yaml"
    config_file.write_text(find(manifests, "ConfigMap", "-config")["data"]
                           ["registry-doctor.yaml"])
    [ack] = load_config(config_file, all_checks())
    assert (ack.check, ack.reason, ack.until.isoformat(), ack.by, ack.kind, ack.name) == (
        "besteffort-qos", "requests: yes", "2999-01-31", "ops", "DeploymentConfig",
        "docker-registry")
    for kind in ("Deployment", "CronJob"):
        workload = find(manifests, kind)
        spec = workload["spec"]
        if kind == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        pod = spec["template"]["spec"]
        [container] = pod["containers"]
        assert "--config=/etc/registry-doctor/registry-doctor.yaml" in container["args"]
        assert {"name": "config", "mountPath": "/etc/registry-doctor", "readOnly": True} in \
            container["volumeMounts"]
        assert {"name": "config", "configMap": {"name": "rd-registry-doctor-config"}} in \
            pod["volumes"]
    assert find(manifests, "Deployment")["spec"]["template"]["metadata"]["annotations"][
        "checksum/config"]


@pytest.mark.parametrize(("entry", "message"), [
    ({"check": "besteffort-qos", "until": "2999-01-01"}, "reason"),
    ({"check": "besteffort-qos", "reason": "r", "until": "soon"}, "until"),
])
def test_malformed_acknowledgement_values_fail_the_install(tmp_path: Path, entry: dict,
                                                           message: str) -> None:
    from tests.helmchart import template

    done = template(tmp_path, {"acknowledge": [entry]}, check=False)
    assert done.returncode != 0 and message in done.stderr, done.stderr


def test_runbook_base_url_rewrites_the_rule_links(tmp_path: Path) -> None:
    manifests = render(tmp_path, {"prometheusRule": {
        "enabled": True, "runbookBaseUrl": "https://wiki.example.com/rd/"}})
    rules = [r for g in find(manifests, "PrometheusRule")["spec"]["groups"] for r in g["rules"]
             if "alert" in r]
    assert rules and all(r["annotations"]["runbook_url"].startswith(
        "https://wiki.example.com/rd/") for r in rules)
    assert "https://wiki.example.com/rd/checks/besteffort-qos.md" in {
        r["annotations"]["runbook_url"] for r in rules}


# --- every expression against the real Prometheus ----------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_doctor.doctor.cli",
                           *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO, env=ENV)


def write_textfiles(folder: Path, tmp_path: Path) -> None:
    """What cron jobs leave for node_exporter: a fix plan, a canary through a real registry,
    and a check of a registry whose images are on a claim (its volume info)."""
    fix = cli("check", "--from-dir", str(CLUSTERS / "broken"), "--fix", "-o", "json",
              "--textfile", str(folder / "registry-doctor-fix.prom"))
    assert fix.returncode == 2, fix.stderr
    storage = cli("check", "--from-dir", str(CLUSTERS / "healthy"), "-c", "ephemeral-storage",
                  "-o", "json", "--textfile", str(folder / "registry-doctor-storage.prom"))
    assert storage.returncode == 0, storage.stdout + storage.stderr
    with registry(tmp_path / "registry", filesystem(tmp_path / "store")) as reg:
        canary = cli("canary", "--url", reg.url, "--textfile",
                     str(folder / "registry-doctor-canary.prom"))
    assert canary.returncode == 0, canary.stdout + canary.stderr


# The healthy fixture's registry stores images on claim default/registry-claim. What the
# kubelet of its node reports for it (and for a claim of another application, which the
# storage panel must leave out), served in the exposition format like the kubelet's /metrics.
REGISTRY_CLAIM = (("namespace", "default"), ("persistentvolumeclaim", "registry-claim"))
USED_BYTES, CAPACITY_BYTES = 32_212_254_720, 107_374_182_400  # 30 GiB of 100 GiB
CLAIMS = {"registry-claim": (USED_BYTES, CAPACITY_BYTES), "database": (1000, 2000)}
VOLUME_STATS = (("used_bytes", "Number of used bytes in the volume"),
                ("capacity_bytes", "Capacity in bytes of the volume"))


class _KubeletVolumeStats:
    """The kubelet's volume stats families, written by prometheus_client's exposition."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for index, (stat, help_text) in enumerate(VOLUME_STATS):
            family = GaugeMetricFamily(f"kubelet_volume_stats_{stat}", help_text,
                                       labels=["namespace", "persistentvolumeclaim"])
            for claim, values in CLAIMS.items():
                family.add_metric(["default", claim], values[index])
            yield family


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def kubelet() -> Iterator[int]:
    """A kubelet's volume stats on 127.0.0.1:<free port>/metrics: the port."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_KubeletVolumeStats())
    httpd = make_server("127.0.0.1", 0, make_wsgi_app(registry), handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def prometheus_config(path: Path, targets: dict[str, int]) -> Path:
    path.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": job, "static_configs": [
            {"targets": [f"127.0.0.1:{port}"]}]} for job, port in targets.items()],
    }))
    return path


def test_every_dashboard_expression_returns_data_from_real_prometheus(tmp_path: Path,
                                                                       kubelet: int) -> None:
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    write_textfiles(textfiles, tmp_path)
    acknowledgements = tmp_path / "registry-doctor.yaml"
    until = (date.today() + timedelta(days=30)).isoformat()
    acknowledgements.write_text(f"acknowledge:\n- {{check: besteffort-qos, reason: "
                                f"known, until: {until}}}\n")
    ports = {"registry-doctor": free_port(), "node": free_port(), "kubelet": kubelet}
    prometheus_port = free_port()
    exporter = [sys.executable, "-m", "registry_doctor.doctor.cli", "serve", "--listen",
                f"127.0.0.1:{ports['registry-doctor']}", "--interval", "2s", "--from-dir",
                str(CLUSTERS / "broken"), "--config", str(acknowledgements)]
    node_exporter = [find_tool("prometheus-node-exporter"), "--collector.disable-defaults",
                     "--collector.textfile", f"--collector.textfile.directory={textfiles}",
                     f"--web.listen-address=127.0.0.1:{ports['node']}"]
    prometheus = [find_tool("prometheus"),
                  f"--config.file={prometheus_config(tmp_path / 'prometheus.yml', ports)}",
                  f"--storage.tsdb.path={tmp_path / 'data'}",
                  f"--web.listen-address=127.0.0.1:{prometheus_port}"]
    with server(exporter, ports["registry-doctor"], tmp_path / "exporter.log", env=ENV), \
            server(node_exporter, ports["node"], tmp_path / "node.log"), \
            server(prometheus, prometheus_port, tmp_path / "prometheus.log"):
        exposed = "".join(http_get(f"http://127.0.0.1:{port}/metrics")[1]
                          for port in ports.values())
        assert "textfile_scrape_error 0" in exposed  # node_exporter read every file
        poll(lambda: http_get(f"http://127.0.0.1:{prometheus_port}/-/ready")[0] == 200,
             "Prometheus ready")
        api = PrometheusAPI(prometheus_port)
        answers = {title: poll(lambda expr=expr: api.query(expr),
                               f"data for panel {title!r}: {expr}")
                   for title, expr in expressions()}
    # Only the registry's claim, joined through the exporter's volume info.
    assert answers["Storage usage"] == {REGISTRY_CLAIM: USED_BYTES / CAPACITY_BYTES}
