"""The shipped alert rules: valid for the real promtool, timed as promised (promtool's own
rule unit tests), one alert per check generated from its metadata, and each documented."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from registry_doctor.checks import all_checks
from registry_doctor.doctor.model import CheckMeta, Severity
from registry_doctor.exporter import alerts
from tests.tools import find_tool

REPO = Path(__file__).resolve().parent.parent
RULES = alerts.RULES_FILE
RULE_TESTS = REPO / "tests" / "fixtures" / "rules" / "registry-doctor.rules.test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([find_tool("promtool"), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def shipped_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(shipped_rules())} rules found" in done.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    done = promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_alerts_are_generated_from_the_current_checks() -> None:
    metas = [c.meta for c in all_checks().values()]
    assert alerts.synced_text(RULES.read_text(), metas) == RULES.read_text(), \
        "run python -m registry_doctor.exporter.alerts"


def test_every_check_has_a_crit_and_a_warn_alert_with_its_runbook() -> None:
    by_alert: dict[str, list[dict]] = {}
    for rule in shipped_rules():
        by_alert.setdefault(rule["alert"], []).append(rule)
    for check_id, check in all_checks().items():
        rules = by_alert.get(alerts.alert_name(check_id), [])
        assert {r["labels"]["severity"] for r in rules} == {"critical", "warning"}, check_id
        for rule in rules:
            assert f'check="{check_id}"' in rule["expr"]
            assert rule["annotations"]["runbook_url"].endswith(check.meta.docs)
            assert (REPO / check.meta.docs).is_file()
        hold = {r["labels"]["severity"]: _seconds(r["for"]) for r in rules}
        assert hold["critical"] < hold["warning"], f"{check_id}: crit must alert sooner"


def test_a_new_check_gets_its_alerts(tmp_path: Path) -> None:
    new = CheckMeta(id="hostpath-replicas", title="Replicas do not share a hostPath",
                    severity=Severity.WARN, kinds=(), remediation="r", description="d")
    text = alerts.synced_text(RULES.read_text(), [new])
    names = [r["alert"] for g in yaml.safe_load(text)["groups"] for r in g["rules"]]
    assert names.count("RegistryDoctorHostpathReplicas") == 2
    (tmp_path / "rules.yml").write_text(text)
    assert promtool("check", "rules", str(tmp_path / "rules.yml")).returncode == 0


def test_every_rule_links_a_runbook_that_exists() -> None:
    docs = REPO / "docs"
    for rule in shipped_rules():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(alerts.RUNBOOK_BASE), rule["alert"]
        page, _, anchor = url.removeprefix(alerts.RUNBOOK_BASE).partition("#")
        if "{{" in page:  # templated by the series' check label
            continue
        assert (docs / page).is_file(), url
        if anchor:
            headings = {line.lstrip("#").strip().lower()
                        for line in (docs / page).read_text().splitlines() if line.startswith("#")}
            assert anchor in headings, url


def test_docs_list_every_alert() -> None:
    text = (REPO / "docs" / "exporter.md").read_text()
    generated = {alerts.alert_name(check_id) for check_id in all_checks()}
    for name in {r["alert"] for r in shipped_rules()} - generated:
        assert f"### {name}" in text, f"docs/exporter.md does not explain {name}"


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]
