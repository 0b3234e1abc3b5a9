"""`Result.metrics`: the numeric facts a check hands to the exporter (docs/exporter.md)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from registry_doctor.doctor import engine
from registry_doctor.doctor.check import Check, CheckContext
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import CheckMeta, Report, Result, Severity, Status
from tests.certs import CONSOLE_HOST, DAY, NOW, issue
from tests.consoledump import console_dump
from tests.exporting import CLUSTERS

META = CheckMeta(id="cert-fixture", title="A fixture check reporting a fact",
                 severity=Severity.WARN, kinds=(), remediation="r", description="d")


def run_fixture_check(metrics: dict) -> Result:
    def evaluate(ctx: CheckContext) -> Result:
        return ctx.failed("certificate expires soon", metrics=metrics)

    report = engine.run(RunConfig(from_dir=CLUSTERS / "broken"), [Check(META, evaluate)])
    return report.results[0]


def test_a_check_reports_facts_through_its_context() -> None:
    result = run_fixture_check({"certificate_not_after_timestamp_seconds": 1_800_000_000})
    assert result.status is Status.WARN
    assert dict(result.metrics) == {"certificate_not_after_timestamp_seconds": 1.8e9}
    assert "metrics" not in result.to_dict()  # not part of registry-doctor/v1


@pytest.mark.parametrize(("metrics", "problem"), [
    ({"Cert-Expiry": 1.0}, "metric key 'Cert-Expiry' is not a lower_snake_case name"),
    ({"s3_probe_duration_seconds": math.nan}, "is not a finite number"),
    ({"s3_probe_duration_seconds": True}, "is not a finite number"),
    ({"s3_probe_duration_seconds": "0.2"}, "is not a finite number"),
])
def test_a_bad_fact_makes_the_check_unknown_not_the_scrape_fail(metrics: dict,
                                                                 problem: str) -> None:
    result = run_fixture_check(metrics)
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith("internal error in check cert-fixture: ValueError")
    assert problem in result.summary
    assert not result.metrics


def test_facts_are_immutable_and_default_to_none() -> None:
    result = Result("x", "t", Status.OK, "s", metrics={"a_seconds": 2})
    with pytest.raises(TypeError):
        result.metrics["a_seconds"] = 3.0  # type: ignore[index]
    assert result.metrics["a_seconds"] == 2.0 and isinstance(result.metrics["a_seconds"], float)
    assert dict(Result("x", "t", Status.OK, "s").metrics) == {}


def test_labelled_facts_become_one_family_with_their_labels() -> None:
    from registry_doctor.exporter.collector import _fact_families, _Target

    push = ("canary_phase_duration_seconds", (("target", "service"), ("phase", "push")))
    pull = ("canary_phase_duration_seconds", (("target", "route"), ("phase", "pull")))
    result = Result("push-pull-canary", "t", Status.OK, "s", metrics={push: 0.5, pull: 0.25})
    report = Report(generated="2026-11-26T00:00:00+00:00", source={}, results=(result,))
    target = _Target(("registry_namespace", "registry"), ("default", "docker-registry"))
    (family,) = _fact_families(report, "(cached)", target)
    samples = {tuple(sorted(s.labels.items())): s.value for s in family.samples}
    registry = (("registry", "docker-registry"), ("registry_namespace", "default"))
    assert samples == {
        (("check", "push-pull-canary"), ("phase", "push"), *registry, ("target", "service")): 0.5,
        (("check", "push-pull-canary"), ("phase", "pull"), *registry, ("target", "route")): 0.25,
    }


@pytest.mark.parametrize("key", [("x_seconds", (("check", "other"),)),
                                 ("x_seconds", (("registry", "other"),)),
                                 ("x_seconds", (("Target", "a"),)),
                                 ("x_seconds", (("target", 3),)),
                                 ("x_seconds", "target")])
def test_bad_label_sets_are_refused(key: object) -> None:
    with pytest.raises(ValueError, match="is not a lower_snake_case name"):
        Result("x", "t", Status.OK, "s", metrics={key: 1.0})


def test_cert_chain_order_reports_when_the_console_chain_stops_verifying(tmp_path: Path) -> None:
    """The earliest notAfter of the chain Cockpit serves: here the intermediate's, before the
    server certificate's own."""
    root = issue("Root CA", ca=True, validity=(NOW - DAY, NOW + 900 * DAY))
    intermediate = issue("Issuing CA", root, ca=True, validity=(NOW - DAY, NOW + 5 * DAY))
    leaf = issue(CONSOLE_HOST, intermediate, hosts=(CONSOLE_HOST,),
                 validity=(NOW - DAY, NOW + 60 * DAY))
    merged = leaf.cert_pem() + intermediate.cert_pem() + leaf.key_pem()
    dump = console_dump(tmp_path / "dump", secret_files={"console.cert": merged})
    report = engine.run(RunConfig(from_dir=dump), engine.select_checks(["cert-chain-order"]))
    [result] = report.results
    assert result.status is Status.WARN  # expires within 30 days
    assert dict(result.metrics) == {
        ("certificate_not_after_timestamp_seconds", (("role", "console"),)):
            intermediate.cert.not_valid_after_utc.timestamp()}


def test_the_storage_check_names_the_registry_claim_for_the_kubelet_join() -> None:
    """ephemeral-storage reports the claim under the filesystem root as an info fact; a
    registry on emptyDir reports none (the dashboard's storage panel then has no data)."""
    from registry_doctor.checks import all_checks

    check = all_checks()["ephemeral-storage"]
    on_claim = engine.run(RunConfig(from_dir=CLUSTERS / "healthy"), [check]).results[0]
    assert dict(on_claim.metrics) == {("registry_volume_info", (
        ("claim_namespace", "default"), ("persistentvolumeclaim", "registry-claim"))): 1.0}
    on_empty_dir = engine.run(RunConfig(from_dir=CLUSTERS / "broken"), [check]).results[0]
    assert on_empty_dir.status is Status.CRIT and not on_empty_dir.metrics
