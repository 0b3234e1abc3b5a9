"""Declared reads are enforced: a check or planner that reads a snapshot collection its
metadata does not declare gets an error (its verdict is `unknown`, naming the collection),
never a quietly empty list."""

from __future__ import annotations

import pytest

from registry_doctor.doctor import engine
from registry_doctor.doctor.check import Check, CheckContext
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.fix.model import FixOptions
from registry_doctor.doctor.fix.plan import PlanContext, make_plan, planner
from registry_doctor.doctor.model import CheckMeta, Result, Severity, Status
from registry_doctor.doctor.snapshot import Snapshot, UndeclaredRead
from tests.workloads import registry_dc, snapshot_of


def meta(*kinds: str) -> CheckMeta:
    return CheckMeta("reader", "Reads", Severity.WARN, kinds, "fix it", "reads a collection")


def counts_services(ctx: CheckContext) -> Result:
    return ctx.result(Status.OK, f"{len(ctx.snapshot.items('services'))} services")


def test_a_check_reading_an_undeclared_collection_is_unknown_with_the_cause() -> None:
    snapshot = snapshot_of(registry_dc())
    result = engine.evaluate(Check(meta("deploymentconfigs"), counts_services), snapshot,
                             RunConfig(), {})
    assert result.status is Status.UNKNOWN
    assert "check reader reads snapshot collection services, which it does not declare" \
        in result.summary


def test_a_declared_collection_reads_even_when_empty() -> None:
    result = engine.evaluate(Check(meta("services"), counts_services), snapshot_of(),
                             RunConfig(), {})
    assert (result.status, result.summary) == (Status.OK, "0 services")


def test_what_a_declared_collection_is_scoped_by_is_readable() -> None:
    """Registry pods are selected by the workload's selector: declaring them declares it."""
    view = snapshot_of(registry_dc()).for_reader("check x", ["registry-pods"])
    assert view.items("deploymentconfigs")
    with pytest.raises(UndeclaredRead):
        view.items("routes")


def test_an_unknown_collection_is_an_error_not_an_empty_list() -> None:
    with pytest.raises(ValueError, match=r"unknown snapshot collection: service$"):
        Snapshot(RunConfig(), {}).items("service")


def test_a_planner_reading_beyond_its_check_and_its_reads_fails_its_plan() -> None:
    @planner(reads=("routes",))
    def reads_routes_and_services(ctx: PlanContext) -> list:
        ctx.snapshot.items("routes")
        ctx.snapshot.items("services")
        return []

    check = Check(meta("deploymentconfigs"), counts_services, reads_routes_and_services)
    failing = Result("reader", "Reads", Status.WARN, "bad")
    actions = make_plan([failing], snapshot_of(), RunConfig(), FixOptions(), [check])
    assert len(actions) == 1 and actions[0].state == "failed"
    assert "the planner of reader reads snapshot collection services" in actions[0].summary
