"""Report formats for other tools (`-o junit|sarif|nagios|prometheus`, `--textfile`), `list`
and `explain -o json`, and the table on narrow terminals and odd evidence."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from registry_doctor.checks import all_checks
from registry_doctor.doctor.model import Report, Resource, Result, Status
from registry_doctor.doctor.render import render
from tests.conftest import CLUSTERS, REPO
from tests.tools import find_tool

SARIF_SCHEMA = json.loads((REPO / "tests/fixtures/sarif/sarif-2.1.0.json").read_text())


def cli(*args: str, env: dict[str, str] | None = None,
        cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_doctor.doctor.cli",
                           *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": os.environ["PATH"],
                               **(env or {})})


# The checks a run selects without opt-ins.
DEFAULT_CHECKS = sum(not check.meta.opt_in for check in all_checks().values())


def broken(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return cli("check", "--from-dir", str(CLUSTERS / "broken"), *args, **kwargs)


def test_junit_has_one_testcase_per_check() -> None:
    run = broken("-o", "junit")
    assert run.returncode == 2
    suites = ET.fromstring(run.stdout)
    [suite] = suites.findall("testsuite")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert len(cases) == int(suite.get("tests")) == DEFAULT_CHECKS
    # 6 crit and the warn of registry-running fail; s3-reachability, storage-capacity (an
    # emptyDir), ingress-body-size and registry-operator (other platforms') skip
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("7", "0", "4")
    failure = cases["besteffort-qos"].find("failure")
    assert failure.get("type") == "crit"
    assert failure.get("message").startswith("2 of 2 registry pods run BestEffort")
    assert "docs: docs/checks/besteffort-qos.md" in failure.text
    assert cases["s3-reachability"].find("skipped") is not None
    assert list(cases["registry-config"]) == []  # passed


def test_sarif_is_valid_sarif_2_1_0_with_rules_and_logical_locations() -> None:
    run = broken("-o", "sarif")
    document = json.loads(run.stdout)
    jsonschema.validate(document, SARIF_SCHEMA)
    [sarif_run] = document["runs"]
    rules = sarif_run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [c["id"] for c in json.loads(
        cli("list", "-o", "json").stdout)]
    by_rule = {r["ruleId"]: r for r in sarif_run["results"]}
    crit = by_rule["besteffort-qos"]
    assert (crit["kind"], crit["level"]) == ("fail", "error")
    assert rules[crit["ruleIndex"]]["id"] == "besteffort-qos"
    assert {"name": "docker-registry", "kind": "DeploymentConfig",
            "fullyQualifiedName": "DeploymentConfig/default/docker-registry"} in [
        loc["logicalLocations"][0] for loc in crit["locations"]]
    assert rules[crit["ruleIndex"]]["helpUri"].endswith("docs/checks/besteffort-qos.md")
    assert by_rule["registry-config"]["kind"] == "pass"
    assert sarif_run["invocations"][0]["exitCode"] == run.returncode == 2


def test_sarif_help_uri_follows_the_configured_docs_base() -> None:
    run = broken("-c", "besteffort-qos", "-o", "sarif",
                 env={"REGISTRY_DOCTOR_DOCS_URL": "https://docs.example.com/registry-doctor/"})
    rules = json.loads(run.stdout)["runs"][0]["tool"]["driver"]["rules"]
    assert rules[0]["helpUri"] == \
        "https://docs.example.com/registry-doctor/checks/besteffort-qos.md"


def test_sarif_marks_an_acknowledged_finding_as_suppressed(tmp_path: Path) -> None:
    (tmp_path / "registry-doctor.yaml").write_text(
        "acknowledge:\n- {check: besteffort-qos, reason: known, until: 2999-01-01}\n")
    run = broken("-c", "besteffort-qos", "-o", "sarif", cwd=tmp_path)
    document = json.loads(run.stdout)
    jsonschema.validate(document, SARIF_SCHEMA)
    [result] = document["runs"][0]["results"]
    assert result["level"] == "error"
    assert result["suppressions"][0]["status"] == "accepted"
    assert run.returncode == 0


def test_nagios_status_line_and_performance_data() -> None:
    run = broken("-o", "nagios")
    first, *rest = run.stdout.splitlines()
    assert run.returncode == 2
    text, perfdata = first.split(" | ")
    assert text == "REGISTRY-DOCTOR CRITICAL - 6 crit, 1 warn"
    # 'label'=value[UOM];[warn];[crit];[min];[max], space separated (plugin guidelines)
    for item in perfdata.split(" "):
        assert re.fullmatch(r"[a-z_]+=[0-9.]+s?;;;0;[0-9]*", item), item
    # ok: cockpit-port-conflict, console-running, http-secret, registry-config,
    # storage-permissions
    assert f"crit=6;;;0;{DEFAULT_CHECKS}" in perfdata and f"ok=5;;;0;{DEFAULT_CHECKS}" in perfdata
    assert rest[0].startswith("CRIT: besteffort-qos: 2 of 2 registry pods")
    assert all("|" not in line for line in rest)  # a | would start perfdata there


def test_nagios_ok_and_all_skipped_states() -> None:
    healthy = cli("check", "--from-dir", str(CLUSTERS / "healthy"), "-c", "besteffort-qos",
                  "-o", "nagios")
    assert healthy.stdout.startswith("REGISTRY-DOCTOR OK - 1 ok | ")
    assert healthy.returncode == 0
    skipped = broken("-c", "s3-reachability", "-o", "nagios")
    assert skipped.stdout.startswith("REGISTRY-DOCTOR UNKNOWN - ")
    assert skipped.returncode == 3  # nothing evaluated is not healthy


def test_prometheus_output_passes_promtool(tmp_path: Path) -> None:
    run = broken("-o", "prometheus")
    assert ('registry_doctor_check_status{check="besteffort-qos",registry="docker-registry",'
            'registry_namespace="default",status="crit"} 1.0') in run.stdout
    assert "registry_doctor_build_info{" in run.stdout
    assert "registry_doctor_runs_total" not in run.stdout  # no exporter loop here
    done = subprocess.run([find_tool("promtool"), "check", "metrics"], input=run.stdout,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_textfile_is_written_atomically_beside_any_output(tmp_path: Path) -> None:
    target = tmp_path / "registry-doctor.prom"
    target.write_text("old\n")
    run = broken("-o", "json", "--textfile", str(target))
    assert json.loads(run.stdout)["exit_code"] == run.returncode == 2
    text = target.read_text()
    # Every series names its file, so two cron jobs' files never collide in node_exporter.
    assert ('registry_doctor_check_status{check="besteffort-qos",registry="docker-registry",'
            'registry_namespace="default",status="crit",textfile="registry-doctor"} 1.0') in text
    assert all('textfile="registry-doctor"' in line for line in text.splitlines()
               if not line.startswith("#"))
    assert [p.name for p in tmp_path.iterdir()] == ["registry-doctor.prom"]  # no temp left
    assert target.stat().st_mode & 0o777 == 0o644


def test_textfile_in_a_missing_folder_is_reported_not_a_traceback(tmp_path: Path) -> None:
    run = broken("--textfile", str(tmp_path / "nope" / "x.prom"))
    assert run.returncode == 3
    assert f"cannot write --textfile {tmp_path / 'nope' / 'x.prom'}" in run.stderr
    assert "Traceback" not in run.stderr


def test_list_and_explain_as_json() -> None:
    listed = json.loads(cli("list", "-o", "json").stdout)
    assert {"id", "title", "severity", "reads", "probes", "optIn", "platforms", "options",
            "description", "remediation", "docs"} == set(listed[0])
    explained = json.loads(cli("explain", "besteffort-qos", "-o", "json").stdout)
    assert explained == next(c for c in listed if c["id"] == "besteffort-qos")
    bad = cli("list", "-o", "xml")
    assert bad.returncode == 64 and "choose from table, json" in bad.stderr
    not_a_report = cli("permissions", "-o", "sarif")
    assert not_a_report.returncode == 64
    assert "choose from table, json, yaml" in not_a_report.stderr


ODD = ("\x1b[2J\x1b[31mred\rback\u202eevil\ttab " + "x" * 454 + " caf\u00e9 \u6f22\u5b57")


def test_table_wraps_to_the_terminal_and_escapes_control_characters(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    result = Result("besteffort-qos", "t", Status.CRIT, "summary " + ODD, details=(ODD,),
                    resources=(Resource("Pod", "p", "default"),))
    report = Report("2026-01-01T00:00:00+00:00", {"type": "dump", "path": "/d",
                                                  "namespace": "default", "registry": "r"},
                    (result,))
    table = render(report, "table")
    assert all(len(line) <= 60 for line in table.splitlines()), table
    assert "\x1b" not in table and "\r" not in table and "\u202e" not in table
    assert "\\x1b[31mred\\rback\\u202eevil" in table.replace("\n", "").replace(" ", "")
    for fmt in ("junit", "nagios", "sarif", "json"):
        assert "\x1b" not in render(report, fmt).replace("\\u001b", "")


def test_odd_evidence_reaches_an_ascii_terminal_without_a_traceback(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    shutil.copytree(CLUSTERS / "broken", dump)
    console = dump / "console.yaml"
    console.write_text(console.read_text().replace(
        "  - https://registry-console-default.apps.example.com",
        '  - "https://caf\u00e9.example.com/\\e[31m\u6f22' + "x" * 300 + '"'))
    run = cli("check", "--from-dir", str(dump), "-c", "oauth-redirect",
              env={"PYTHONIOENCODING": "ascii", "COLUMNS": "70"})
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "caf\\xe9.example.com/\\x1b[31m\\u6f22" in run.stdout.replace("\n", "")
    assert "\x1b" not in run.stdout
    utf8 = cli("check", "--from-dir", str(dump), "-c", "oauth-redirect",
               env={"PYTHONIOENCODING": "utf-8", "COLUMNS": "70"})
    assert "caf\u00e9.example.com/\\x1b[31m\u6f22" in utf8.stdout.replace("\n", "")
    assert all(len(line) <= 70 for line in utf8.stdout.splitlines()), utf8.stdout
    explained = cli("explain", "besteffort-qos", env={"COLUMNS": "50"})
    assert all(len(line) <= 50 for line in explained.stdout.splitlines())


# Files of a --from-dir dump that could not be read: the verdicts were reached without them.
PROBLEMS = ("bad.yaml: not valid YAML at line 2 (cannot parse)",
            "odd\nname|x.json: cannot read: Permission denied")


def report_with_problems(*results: Result) -> Report:
    return Report("2026-01-01T00:00:00+00:00",
                  {"type": "dump", "path": "/d", "namespace": "default", "registry": "r",
                   "problems": list(PROBLEMS)}, results)


def test_every_tool_format_carries_the_input_problems_in_its_own_idiom(tmp_path: Path) -> None:
    judged = report_with_problems(Result("besteffort-qos", "t", Status.CRIT, "crit"))
    shown = ["bad.yaml: not valid YAML at line 2 (cannot parse)",
             "odd\\nname/x.json: cannot read: Permission denied"]  # one line, no perfdata `|`

    nagios = render(judged, "nagios").splitlines()
    assert nagios[0].startswith("REGISTRY-DOCTOR CRITICAL - 1 crit, 2 input problems | ")
    assert [f"INPUT PROBLEM: {p}" for p in shown] == nagios[1:3]
    blind = report_with_problems(Result("besteffort-qos", "t", Status.UNKNOWN, "not read"))
    assert render(blind, "nagios").startswith("REGISTRY-DOCTOR UNKNOWN - 1 unknown, 2 input ")

    suite = ET.fromstring(render(judged, "junit")).find("testsuite")
    assert suite.find("system-err").text.splitlines() == [
        f"input problem: {p}" for p in ("bad.yaml: not valid YAML at line 2 (cannot parse)",
                                        "odd\\nname|x.json: cannot read: Permission denied")]

    document = json.loads(render(judged, "sarif"))
    jsonschema.validate(document, SARIF_SCHEMA)
    [invocation] = document["runs"][0]["invocations"]
    assert [(n["level"], n["message"]["text"]) for n in
            invocation["toolExecutionNotifications"]] == [("warning", p) for p in PROBLEMS]

    textfile = render(judged, "prometheus")
    assert [line for line in textfile.splitlines() if "input problem" in line] == [
        f"# registry-doctor input problem: {p}" for p in
        ("bad.yaml: not valid YAML at line 2 (cannot parse)",
         "odd\\nname|x.json: cannot read: Permission denied")]
    done = subprocess.run([find_tool("promtool"), "check", "metrics"], input=textfile,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
