"""The real Prometheus (Debian's) scrapes `registry-doctor serve` (over a fixture dump, or the
fake API server through an outage) and evaluates the shipped alert rules. Only `for:` is
shortened here, to 0s: the rules' timing is proven by `promtool test rules`
(test_alert_rules.py); this proves the series, their values and the expressions against a live
scrape."""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from registry_doctor.exporter.alerts import RULES_FILE, RUNBOOK_BASE
from tests.certs import DAY, NOW, make_pki
from tests.consoledump import console_dump
from tests.exporting import CLUSTERS, REPO, TARGET, http_get, poll, serve_command
from tests.kubefake import FakeKubeAPI
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

    def alert(self, name: str) -> dict:
        """The firing alert `name` (the critical one when both severities fire)."""
        found = sorted((a for a in self.get("alerts")["alerts"]
                        if a["labels"]["alertname"] == name and a["state"] == "firing"),
                       key=lambda a: a["labels"].get("severity") != "critical")
        assert found, f"{name} is not firing"
        return found[0]


@contextmanager
def prometheus(tmp_path: Path, exporter_port: int) -> Iterator[PrometheusAPI]:
    """The real Prometheus scraping 127.0.0.1:`exporter_port` every second, with the shipped
    rules (`for:` 0s) evaluated every second."""
    port = free_port()
    config = prometheus_config(tmp_path / "prometheus.yml", exporter_port,
                               rules_without_hold(tmp_path / "rules.yml"))
    args = [find_tool("prometheus"), f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"]
    with server(args, port, tmp_path / "prometheus.log"):
        yield PrometheusAPI(port)


def test_prometheus_gets_the_series_and_fires_the_check_alert(tmp_path: Path) -> None:
    exporter_port = free_port()
    exporter_args = serve_command("--listen", f"127.0.0.1:{exporter_port}", "--interval", "2s",
                                  "--check", "besteffort-qos",
                                  "--from-dir", str(CLUSTERS / "broken"))
    with prometheus(tmp_path, exporter_port) as api:
        with server(exporter_args, exporter_port, tmp_path / "exporter.log", env=ENV):
            _assert_series_and_check_alert(api, f"127.0.0.1:{exporter_port}")
        # The exporter is gone: its series go stale at the next failed scrape. The check's
        # alert holds its last known state (no exporter of the registry is up), and absence
        # alerts too.
        poll(lambda: api.firing() == {("RegistryDoctorAbsent", "warning"),
                                      ("RegistryDoctorBesteffortQos", "critical")},
             "RegistryDoctorAbsent firing after the exporter stopped, the crit held")


def series(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _assert_series_and_check_alert(api: PrometheusAPI, instance: str) -> None:
    target = {"instance": instance, "job": "registry-doctor", **TARGET}
    statuses = poll(lambda: api.query('registry_doctor_check_status{check="besteffort-qos"}'),
                    "the check status series in Prometheus")
    assert statuses == {series(check="besteffort-qos", status=s, **target):
                        1.0 if s == "crit" else 0.0
                        for s in ("ok", "warn", "crit", "unknown", "skip", "acknowledged")}
    assert api.query("registry_doctor_check_info") == {series(
        check="besteffort-qos", severity="crit",
        title="Registry pods have compute resource requests", **target): 1.0}
    assert api.query("registry_doctor_up") == {series(**target): 1.0}
    assert api.query('up{job="registry-doctor"}') == {series(instance=instance,
                                                             job="registry-doctor"): 1.0}
    assert api.query("registry_doctor_run_interval_seconds") == {series(**target): 2.0}
    assert poll(lambda: api.query("registry_doctor_runs_total >= 2"), "a second run")

    # Only the crit check's alert fires once the series are in: not the warn rule of the same
    # check, not absent, not stale, not failing runs.
    poll(lambda: api.firing() == {("RegistryDoctorBesteffortQos", "critical")},
         "exactly the besteffort-qos critical alert firing")
    alert = api.alert("RegistryDoctorBesteffortQos")
    assert {k: alert["labels"][k] for k in ("registry_namespace", "registry")} == TARGET
    assert "instance" not in alert["labels"]  # about the registry, whichever pod saw it
    assert alert["annotations"]["runbook_url"] == f"{RUNBOOK_BASE}checks/besteffort-qos.md"
    assert alert["annotations"]["description"].startswith(
        "registry-doctor has reported besteffort-qos as crit for 5m for the registry "
        "default/docker-registry")


def test_alerts_hold_through_an_api_outage_and_the_blind_alert_fires(
        tmp_path: Path, fake_api: Callable[[Path], FakeKubeAPI]) -> None:
    """The crit alert fires from the fake API server's broken cluster; the API server goes
    away; the exporter, blind, keeps the crit and says up 0; then it restarts, still blind.
    The crit alert never resolves (its activeAt stands) and RegistryDoctorRunsFailing fires."""
    api = fake_api(CLUSTERS / "broken")
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    exporter_port = free_port()
    exporter_args = serve_command("--listen", f"127.0.0.1:{exporter_port}", "--interval", "1s",
                                  "--timeout", "5", "--check", "besteffort-qos",
                                  "--kubeconfig", str(kubeconfig))
    crit = ("RegistryDoctorBesteffortQos", "critical")
    with prometheus(tmp_path, exporter_port) as prom:
        with server(exporter_args, exporter_port, tmp_path / "exporter-1.log", env=ENV):
            poll(lambda: prom.firing() == {crit}, "the crit alert from the live cluster")
            since = prom.alert(crit[0])["activeAt"]
            api.stop()  # connections refused from now on
            poll(lambda: _holding(prom, crit, since) and ("RegistryDoctorRunsFailing",
                                                          "warning") in prom.firing(),
                 "RegistryDoctorRunsFailing firing, the crit alert still firing")
            assert prom.query("registry_doctor_up") == {series(
                instance=f"127.0.0.1:{exporter_port}", job="registry-doctor", **TARGET): 0.0}
            runs_before = max(prom.query("registry_doctor_runs_total").values())
        # A new exporter process that has never read the cluster: no check series at all.
        with server(exporter_args, exporter_port, tmp_path / "exporter-2.log", env=ENV):
            poll(lambda: _holding(prom, crit, since) and max(
                prom.query("registry_doctor_runs_total").values(), default=runs_before)
                < runs_before and not prom.query("registry_doctor_check_status"),
                "the new exporter scraped, serving no check series")
            poll(lambda: _holding(prom, crit, since) and ("RegistryDoctorRunsFailing",
                                                          "warning") in prom.firing(),
                 "the new, blind exporter: the crit held, RegistryDoctorRunsFailing firing")
    errors = [json.loads(line).get("error", "") for line in
              (tmp_path / "exporter-2.log").read_text().splitlines()]
    assert any("cannot read the cluster" in e and "connection refused" in e for e in errors)


def _holding(prom: PrometheusAPI, alert: tuple[str, str], since: str) -> bool:
    """`alert` is firing, continuously since `since` (a resolved one fires anew later)."""
    assert alert in prom.firing(), f"{alert[0]} resolved"
    assert prom.alert(alert[0])["activeAt"] == since, f"{alert[0]} fired anew"
    return True


def test_a_certificate_five_days_from_expiry_alerts(tmp_path: Path) -> None:
    """cert-chain-order reads the console's certificate, the exporter publishes its expiry,
    Prometheus pages for it."""
    pki = make_pki(validity=(NOW - 300 * DAY, NOW + 5 * DAY))
    dump = console_dump(tmp_path / "dump", secret_files={"console.cert": pki.merged_pem()})
    exporter_port = free_port()
    exporter_args = [*serve_command("--listen", f"127.0.0.1:{exporter_port}", "--interval", "2s",
                                    "--from-dir", str(dump)), "--check", "cert-chain-order"]
    with prometheus(tmp_path, exporter_port) as prom, \
            server(exporter_args, exporter_port, tmp_path / "exporter.log", env=ENV):
        expiring = {("RegistryDoctorCertificateExpiring", "critical"),
                    ("RegistryDoctorCertificateExpiring", "warning")}
        poll(lambda: expiring <= prom.firing(), "both expiry alerts firing")
        alert = prom.alert("RegistryDoctorCertificateExpiring")
        assert {k: alert["labels"][k] for k in ("check", "role", "registry_namespace",
                                                 "registry")} == {
            "check": "cert-chain-order", "role": "console", **TARGET}
        assert "expires in 4d 23h" in alert["annotations"]["description"]
        assert prom.query("registry_doctor_certificate_not_after_timestamp_seconds") == {
            series(check="cert-chain-order", role="console", instance=f"127.0.0.1:{exporter_port}",
                   job="registry-doctor", **TARGET): pki.leaf.cert.not_valid_after_utc.timestamp()}
