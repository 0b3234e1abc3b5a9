"""The real Prometheus (Debian's) scrapes `registry-doctor serve` over a fixture dump and
evaluates the shipped alert rules. Only `for:` is shortened here, to 0s: the rules' timing is
proven by `promtool test rules` (test_alert_rules.py); this proves the series, their values and
the expressions against a live scrape."""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path

import yaml

from exporter.alerts import RULES_FILE, RUNBOOK_BASE
from tests.exporting import CLUSTERS, REPO, http_get, poll, serve_command
from tests.tools import find_tool, free_port, server

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def rules_without_hold(path: Path) -> Path:
    rules = yaml.safe_load(RULES_FILE.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = "0s"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


def prometheus_config(path: Path, target_port: int, rules: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": "registry-doctor",
                            "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}],
    }))
    return path


class PrometheusAPI:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}/api/v1/"

    def get(self, path: str, **params: str) -> object:
        status, body, _ = http_get(self.base + path + "?" + urllib.parse.urlencode(params))
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", body
        return answer["data"]

    def query(self, promql: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Instant query -> {labels without __name__: value}."""
        return {tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__")):
                float(r["value"][1]) for r in self.get("query", query=promql)["result"]}

    def firing(self) -> set[tuple[str, str]]:
        return {(a["labels"]["alertname"], a["labels"].get("severity", ""))
                for a in self.get("alerts")["alerts"] if a["state"] == "firing"}


def test_prometheus_gets_the_series_and_fires_the_check_alert(tmp_path: Path) -> None:
    prometheus = find_tool("prometheus")
    exporter_port, prometheus_port = free_port(), free_port()
    config = prometheus_config(tmp_path / "prometheus.yml", exporter_port,
                               rules_without_hold(tmp_path / "rules.yml"))
    exporter_args = serve_command("--listen", f"127.0.0.1:{exporter_port}", "--interval", "2s",
                                  "--check", "besteffort-qos",
                                  "--from-dir", str(CLUSTERS / "broken"))
    prometheus_args = [prometheus, f"--config.file={config}",
                       f"--storage.tsdb.path={tmp_path / 'data'}",
                       f"--web.listen-address=127.0.0.1:{prometheus_port}"]
    with server(prometheus_args, prometheus_port, tmp_path / "prometheus.log"):
        api = PrometheusAPI(prometheus_port)
        with server(exporter_args, exporter_port, tmp_path / "exporter.log", env=ENV):
            _assert_series_and_check_alert(api, f"127.0.0.1:{exporter_port}")
        # The exporter is gone: its series go stale at the next failed scrape, the check's
        # alert resolves and absence alerts instead.
        poll(lambda: api.firing() == {("RegistryDoctorAbsent", "warning")},
             "only RegistryDoctorAbsent firing after the exporter stopped")


def series(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _assert_series_and_check_alert(api: PrometheusAPI, instance: str) -> None:
    target = {"instance": instance, "job": "registry-doctor"}
    statuses = poll(lambda: api.query('registry_doctor_check_status{check="besteffort-qos"}'),
                    "the check status series in Prometheus")
    assert statuses == {series(check="besteffort-qos", status=s, **target):
                        1.0 if s == "crit" else 0.0
                        for s in ("ok", "warn", "crit", "unknown", "skip", "acknowledged")}
    assert api.query("registry_doctor_check_info") == {series(
        check="besteffort-qos", severity="crit",
        title="Registry pods have compute resource requests", **target): 1.0}
    assert api.query("registry_doctor_up") == {series(**target): 1.0}
    assert api.query('up{job="registry-doctor"}') == {series(**target): 1.0}
    assert api.query("registry_doctor_run_interval_seconds") == {series(**target): 2.0}
    assert poll(lambda: api.query("registry_doctor_runs_total >= 2"), "a second run")

    # Only the crit check's alert fires once the series are in: not the warn rule of the same
    # check, not absent, not stale, not failing runs.
    poll(lambda: api.firing() == {("RegistryDoctorBesteffortQos", "critical")},
         "exactly the besteffort-qos critical alert firing")
    alert = next(a for a in api.get("alerts")["alerts"]
                 if a["labels"]["alertname"] == "RegistryDoctorBesteffortQos")
    assert alert["labels"]["instance"] == instance
    assert alert["annotations"]["runbook_url"] == f"{RUNBOOK_BASE}checks/besteffort-qos.md"
    assert alert["annotations"]["description"].startswith(
        f"registry-doctor (instance {instance}) has reported besteffort-qos as crit")
