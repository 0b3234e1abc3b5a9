"""Acknowledged findings (docs/acknowledge.md): the config file, the annotation, expiry,
malformed entries, and what an acknowledged finding does to every output and the exit code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml

from registry_doctor.doctor.acknowledge import (
    ANNOTATION,
    Acknowledgement,
    ConfigError,
    annotated,
    apply,
    load_config,
)
from registry_doctor.doctor.model import Resource, Result, Status
from tests.conftest import CLUSTERS, REPO

SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())
FUTURE = (date.today() + timedelta(days=30)).isoformat()
PAST = (date.today() - timedelta(days=1)).isoformat()
CHECKS = ("besteffort-qos", "ephemeral-storage")
DC = Resource("DeploymentConfig", "docker-registry", "default")


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_doctor.doctor.cli",
                           *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def broken(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return cli("check", "--from-dir", str(CLUSTERS / "broken"), "-c", "besteffort-qos",
               "-c", "registry-config", *args, cwd=cwd)


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "registry-doctor.yaml"
    path.write_text(text)
    return path


def test_acknowledged_crit_is_reported_but_exits_zero(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"""\
acknowledge:
  - check: besteffort-qos
    object: {{kind: DeploymentConfig, namespace: default, name: docker-registry}}
    reason: requests come with the node migration in January
    until: {FUTURE}
    by: alice
""")
    run = broken("--config", str(config), "-o", "json")
    report = json.loads(run.stdout)
    jsonschema.validate(report, SCHEMA)
    result = report["results"][0]
    assert result["status"] == "acknowledged"
    assert result["acknowledgement"] == {
        "status": "crit", "reason": "requests come with the node migration in January",
        "until": FUTURE, "by": "alice", "source": "registry-doctor.yaml line 2"}
    assert result["details"]  # the evidence is still there
    assert (run.returncode, report["exit_code"], report["counts"]["acknowledged"]) == (0, 0, 1)
    table = broken("--config", str(config)).stdout
    assert "ACKED   besteffort-qos" in table
    assert f"acknowledged crit until {FUTURE} by alice" in table


def test_default_config_file_is_read_from_the_working_directory(tmp_path: Path) -> None:
    write_config(tmp_path, f"acknowledge:\n- {{check: besteffort-qos, reason: known, "
                           f"until: {FUTURE}}}\n")
    assert broken(cwd=tmp_path).returncode == 0
    assert broken().returncode == 2  # no registry-doctor.yaml in the repository root


def test_an_entry_for_another_object_acknowledges_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"""\
acknowledge:
  - check: besteffort-qos
    object: {{name: some-other-registry}}
    reason: not this one
    until: {FUTURE}
""")
    run = broken("--config", str(config), "-o", "json")
    assert json.loads(run.stdout)["results"][0]["status"] == "crit"
    assert run.returncode == 2


def test_expired_entry_is_a_warn_finding_and_the_crit_counts_again(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"""\
acknowledge:
  - check: besteffort-qos
    reason: was to be fixed last quarter
    until: {PAST}
""")
    run = broken("--config", str(config), "-o", "json")
    report = json.loads(run.stdout)
    jsonschema.validate(report, SCHEMA)
    statuses = {r["check"]: r["status"] for r in report["results"]}
    assert statuses == {"besteffort-qos": "crit", "registry-config": "ok",
                        "acknowledgements": "warn"}
    [stale] = [r for r in report["results"] if r["check"] == "acknowledgements"]
    assert stale["details"] == [f"expired: registry-doctor.yaml line 2: besteffort-qos until "
                                f"{PAST}: was to be fixed last quarter"]
    assert run.returncode == 2


@pytest.mark.parametrize(("text", "message"), [
    ("acknowledge:\n  - check: besteffort-qos\n    until: 2030-01-01\n",
     "line 2: reason: missing"),
    ("acknowledge:\n  - check: besteffort-qos\n    reason: r\n    until: next week\n",
     "line 4: until: 'next week' is not a date YYYY-MM-DD"),
    ("acknowledge:\n  - check: besteffort-qos\n    reason: r\n    until: 2030-02-30\n",
     "line 4: until: '2030-02-30' is not a date YYYY-MM-DD"),
    ("acknowledge:\n  - check: no-such-check\n    reason: r\n    until: 2030-01-01\n",
     "line 2: check: unknown check id 'no-such-check'"),
    ("acknowledge:\n  - check: besteffort-qos\n    reason: r\n    until: 2030-01-01\n"
     "    objcet: {name: x}\n", "line 5: unknown field 'objcet'"),
    ("acknowledge:\n  - check: besteffort-qos\n    reason: r\n    until: 2030-01-01\n"
     "    object: {nmae: x}\n", "line 5: object: unknown field 'nmae'"),
    ("acknowledge:\n  - check: besteffort-qos\n    reason: ''\n    until: 2030-01-01\n",
     "line 3: reason: must be a non-empty string"),
    ("acknowledge: besteffort-qos\n", "line 1: acknowledge: must be a list"),
    ("acknowlege: []\n", "line 1: unknown field 'acknowlege'"),
    ("acknowledge: [\n", "line 2: not YAML"),
])
def test_malformed_entry_is_a_usage_error_naming_file_line_and_field(
        tmp_path: Path, text: str, message: str) -> None:
    config = write_config(tmp_path, text)
    run = broken("--config", str(config))
    assert run.returncode == 64
    assert f"registry-doctor: {config} {message}" in run.stderr
    assert "Traceback" not in run.stderr


def test_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    run = broken("--config", str(tmp_path / "nope.yaml"))
    assert run.returncode == 64
    assert f"{tmp_path / 'nope.yaml'}: cannot read" in run.stderr


def test_empty_config_file_acknowledges_nothing(tmp_path: Path) -> None:
    assert load_config(write_config(tmp_path, ""), CHECKS) == ()
    with pytest.raises(ConfigError, match="line 1: the file must be a mapping"):
        load_config(write_config(tmp_path, "- a\n"), CHECKS)


# --- the annotation ----------------------------------------------------------------------

def annotated_dump(tmp_path: Path, value: str, managed_by: str | None = None) -> Path:
    dump = tmp_path / "dump"
    shutil.copytree(CLUSTERS / "broken", dump)
    path = dump / "registry.yaml"
    document = yaml.safe_load(path.read_text())
    [dc] = [o for o in document["items"] if o["kind"] == "DeploymentConfig"
            and o["metadata"]["name"] == "docker-registry"]
    dc["metadata"].setdefault("annotations", {})[ANNOTATION] = value
    if managed_by:
        dc["metadata"]["managedFields"] = [{
            "manager": managed_by, "operation": "Update", "time": "2026-11-01T10:00:00Z",
            "fieldsV1": {"f:metadata": {"f:annotations": {f"f:{ANNOTATION}": {}}}}}]
    path.write_text(yaml.safe_dump(document))
    return dump


def test_annotation_on_the_object_acknowledges_with_who_set_it(tmp_path: Path) -> None:
    dump = annotated_dump(tmp_path, f"besteffort-qos={FUTURE}: waiting for quota",
                          managed_by="kubectl-annotate")
    run = cli("check", "--from-dir", str(dump), "-c", "besteffort-qos", "-o", "json")
    [result] = json.loads(run.stdout)["results"]
    assert result["acknowledgement"] == {
        "status": "crit", "reason": "waiting for quota", "until": FUTURE,
        "by": "kubectl-annotate",
        "source": f"annotation {ANNOTATION} on DeploymentConfig/default/docker-registry"}
    assert run.returncode == 0


def test_annotation_for_another_check_or_expired_does_not_acknowledge(tmp_path: Path) -> None:
    dump = annotated_dump(tmp_path, f"ephemeral-storage={FUTURE}: lab cluster\n"
                                    f"besteffort-qos={PAST}: old")
    run = cli("check", "--from-dir", str(dump), "-c", "besteffort-qos", "-c",
              "ephemeral-storage", "-o", "json")
    statuses = {r["check"]: r["status"] for r in json.loads(run.stdout)["results"]}
    assert statuses == {"besteffort-qos": "crit", "ephemeral-storage": "acknowledged",
                        "acknowledgements": "warn"}


def test_unreadable_annotation_is_a_warn_naming_the_object() -> None:
    obj = {"metadata": {"annotations": {ANNOTATION: "besteffort-qos until friday"}}}
    found, problems = annotated(obj, DC)
    assert found == []
    assert problems == [f"annotation {ANNOTATION} on DeploymentConfig/default/docker-registry:"
                        " 'besteffort-qos until friday' is not <check>=<YYYY-MM-DD>: <reason>"]
    crit = Result("besteffort-qos", "t", Status.CRIT, "s", resources=(DC,))
    results = apply([crit], [], lambda resource: obj)
    assert [r.status for r in results] == [Status.CRIT, Status.WARN]


def test_an_annotation_naming_no_check_is_a_warn_and_is_said_once() -> None:
    obj = {"metadata": {"annotations": {ANNOTATION: f"bogus-check={FUTURE}: typo"}}}
    crits = [Result(check, "t", Status.CRIT, "s", resources=(DC,))
             for check in ("besteffort-qos", "ephemeral-storage")]  # both name the DC
    *_, stale = apply(crits, [], lambda resource: obj,
                      known_checks=("besteffort-qos", "ephemeral-storage"))
    assert stale.check == "acknowledgements" and stale.status is Status.WARN
    assert [d for d in stale.details if "bogus-check" in d] == [
        f"annotation {ANNOTATION} on DeploymentConfig/default/docker-registry: 'bogus-check' "
        "is not a check id (known: besteffort-qos, ephemeral-storage)"]


# --- the rules, without the CLI --------------------------------------------------------------

def test_only_warn_and_crit_are_acknowledged_and_until_is_inclusive() -> None:
    today = date(2027, 1, 31)
    ack = Acknowledgement("besteffort-qos", "r", date(2027, 1, 31), "f line 1")
    results = [Result("besteffort-qos", "t", status, "s") for status in Status
               if status is not Status.ACKNOWLEDGED]
    marked = apply(results, [ack], lambda resource: None, today)
    assert [r.status for r in marked] == [Status.OK, Status.ACKNOWLEDGED, Status.ACKNOWLEDGED,
                                          Status.UNKNOWN, Status.SKIP]
    later = apply(results[1:2], [ack], lambda resource: None, today + timedelta(days=1))
    assert [r.status for r in later] == [Status.WARN, Status.WARN]
    assert later[1].check == "acknowledgements"


@pytest.mark.parametrize("metadata", [
    {"annotations": 7},
    {"annotations": {ANNOTATION: ["besteffort-qos=2999-01-01: r"]}},
    {"annotations": {ANNOTATION: f"besteffort-qos={FUTURE}: r"}, "managedFields": "x"},
    {"annotations": {ANNOTATION: f"besteffort-qos={FUTURE}: r"},
     "managedFields": [{"manager": 3, "fieldsV1": []}, "x"]},
    "not a mapping",
])
def test_malformed_objects_never_crash_the_run(metadata: object) -> None:
    from registry_doctor.doctor.acknowledge import object_finder

    odd = {"kind": "DeploymentConfig", "metadata": metadata}
    weird_name = {"kind": "Pod", "metadata": {"name": ["a"], "namespace": {"x": 1}}}
    find_object = object_finder({"deploymentconfigs": [odd, weird_name]})
    crit = Result("besteffort-qos", "t", Status.CRIT, "s", resources=(DC,))
    [result, *_] = apply([crit], [], lambda resource: odd)
    assert result.status in (Status.CRIT, Status.ACKNOWLEDGED)
    assert result.acknowledgement is None or result.acknowledgement.by is None
    assert find_object(Resource("Pod", "a", None)) is None


# --- the exporter and the alerts -----------------------------------------------------------

def test_acknowledged_crit_does_not_alert_but_stays_in_a_metric(tmp_path: Path) -> None:
    """The real Prometheus with the shipped rules (`for: 0s`) scrapes `serve --config`: the
    unacknowledged crit alerts, the acknowledged one does not, and its metric is there."""
    from tests.exporting import http_get, poll
    from tests.test_exporter_prometheus import (
        ENV,
        PrometheusAPI,
        prometheus_config,
        rules_without_hold,
    )
    from tests.tools import find_tool, free_port, server

    config = write_config(tmp_path, f"acknowledge:\n- {{check: besteffort-qos, reason: r, "
                                    f"until: {FUTURE}}}\n")
    exporter_port, prometheus_port = free_port(), free_port()
    exporter = [sys.executable, "-m", "registry_doctor.doctor.cli", "serve", "--listen",
                f"127.0.0.1:{exporter_port}", "--interval", "2s", "-c", "besteffort-qos",
                "-c", "ephemeral-storage", "--from-dir", str(CLUSTERS / "broken"),
                "--config", str(config)]
    scrape = prometheus_config(tmp_path / "prometheus.yml", exporter_port,
                               rules_without_hold(tmp_path / "rules.yml"))
    prometheus = [find_tool("prometheus"), f"--config.file={scrape}",
                  f"--storage.tsdb.path={tmp_path / 'data'}",
                  f"--web.listen-address=127.0.0.1:{prometheus_port}"]
    with server(exporter, exporter_port, tmp_path / "exporter.log", env=ENV), \
            server(prometheus, prometheus_port, tmp_path / "prometheus.log"):
        poll(lambda: http_get(f"http://127.0.0.1:{prometheus_port}/-/ready")[0] == 200,
             "Prometheus ready")
        api = PrometheusAPI(prometheus_port)
        poll(lambda: "RegistryDoctorEphemeralStorage" in {a for a, _ in api.firing()},
             "the unacknowledged crit firing")
        firing = {alert for alert, _ in api.firing()}
        assert "RegistryDoctorBesteffortQos" not in firing, firing
        assert api.query('registry_doctor_check_status{check="besteffort-qos"} == 1') == {
            (("check", "besteffort-qos"), ("instance", f"127.0.0.1:{exporter_port}"),
             ("job", "registry-doctor"), ("registry", "docker-registry"),
             ("registry_namespace", "default"), ("status", "acknowledged")): 1.0}
        [(labels, _)] = api.query(
            "registry_doctor_acknowledged_until_timestamp_seconds").items()
        assert ("status", "crit") in labels
