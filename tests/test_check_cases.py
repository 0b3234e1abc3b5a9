"""One runner for every check: each fixture case under fixtures/checks/<id>/<case>/ must get
its expected verdict offline (--from-dir) and, when the check has a planner and fails, the
plan it expects, so a check and its planner cannot disagree unnoticed. The live twin of this
runner, through the fake API server, is in test_live.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from registry_doctor.checks import all_checks
from registry_doctor.doctor import engine
from registry_doctor.doctor.check import Check
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.fix.model import DENIED, Action, FixOptions
from registry_doctor.doctor.fix.plan import make_plan, planner_reads
from registry_doctor.doctor.model import Report, Status
from registry_doctor.doctor.platform import NAME_FIELDS
from registry_doctor.doctor.snapshot import Snapshot
from tests.casedump import Case, discover_cases, materialize

CASES = discover_cases()


def case_config(case: Case, **overrides: object) -> RunConfig:
    """The case's settings; the names it does not give, the platform gives (as with the CLI)."""
    settings = case.spec.get("config", {})
    return RunConfig(**{**settings, **overrides},
                     names_given=frozenset(k for k in settings if k in NAME_FIELDS))


def assert_verdict(report: Report, case: Case) -> None:
    result = report.result(case.check)
    assert result is not None, f"{case.id}: check did not run"
    expect = case.expect
    shown = f"{result.status.value}: {result.summary}\n  " + "\n  ".join(result.details)
    assert result.status is Status(expect["status"]), f"{case.id}: got {shown}"
    if "summary" in expect:
        assert re.search(expect["summary"], result.summary), f"{case.id}: got {shown}"
    for wanted in expect.get("details", []):
        assert any(wanted in d for d in result.details), f"{case.id}: no '{wanted}' in {shown}"
    refs = [r.ref() for r in result.resources]
    for wanted in expect.get("resources", []):
        assert wanted in refs, f"{case.id}: no resource {wanted} in {refs}"


def planned(action: Action) -> str:
    """An action as a case states it: its name and, when it writes, its target; `(denied)`
    when the plan refuses it (a target outside the configured objects, doctor.fix.scope)."""
    stated = f"{action.name} {action.target}" if action.target else action.name
    return f"{stated} (denied)" if action.state == DENIED else stated


def assert_plan(report: Report, snapshot: Snapshot, config: RunConfig, check: Check,
                case: Case) -> None:
    result = report.result(case.check)
    assert result is not None
    if check.plan is None or result.status not in (Status.WARN, Status.CRIT):
        assert "plan" not in case.expect, f"{case.id}: states a plan, but nothing is planned " \
            "for a check without a planner or one that does not fail"
        return
    assert "plan" in case.expect, f"{case.id}: a failing case of a check with a planner " \
        "states the plan it expects (expect.plan: [] when it plans nothing)"
    options = FixOptions(**case.spec.get("fix", {}))
    got = [planned(a) for a in make_plan(report.results, snapshot, config, options, [check])]
    assert got == case.expect["plan"], f"{case.id}: planned {got}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_offline(case: Case, tmp_path: Path) -> None:
    config = case_config(case, from_dir=materialize(case, tmp_path / "dump"))
    checks = engine.select_checks([case.check], config=config)
    report, snapshot = engine.inspect(config, checks, also=planner_reads(checks))
    assert_verdict(report, case)
    assert_plan(report, snapshot, config, checks[0], case)


# Checks judged only on a live probe: a dump cannot make them ok or failing, so their cases
# cover what a dump can show (skip, unknown) and the named test module proves the other
# verdicts against the real component.
PROBE_ONLY = {"push-pull-canary": "tests/test_canary_cluster.py"}


def test_every_check_has_cases_for_each_status_it_can_fail_with() -> None:
    for check_id, check in all_checks().items():
        statuses = {c.expect["status"] for c in CASES if c.check == check_id}
        if check_id in PROBE_ONLY:
            assert statuses and (Path(__file__).parent.parent / PROBE_ONLY[check_id]).is_file()
            continue
        assert {"ok", check.meta.severity.value} <= statuses, \
            f"{check_id}: fixture cases cover only {sorted(statuses)}"
