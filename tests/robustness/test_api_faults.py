"""API faults through the fake, on each resource a full default run reads, in turn: 403, 500,
connection reset, a hang past --timeout, throttling that never ends. Only the collections read
from the resource, and those scoped from them, fail; only the checks reading those turn
unknown, naming the resource; every other check keeps its fault-free verdict; the exit code
still says crit or warn where an evaluated check found one. (tests/test_live.py holds
single-check versions of some of these.)"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import pytest

from registry_doctor.checks import all_checks
from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import Report, Status
from registry_doctor.doctor.snapshot.kinds import CATALOGUE, LOG_COLLECTIONS, closure
from tests.conftest import CLUSTERS
from tests.kubefake import FakeKubeAPI

RUN_TIMEOUT = 3.0  # the hang fault holds a request longer than this


def run(api: FakeKubeAPI, tmp_path: Path) -> Report:
    config = RunConfig(kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"), probes=False,
                       timeout=RUN_TIMEOUT)
    return engine.run(config, engine.select_checks(config=config))


Baseline = tuple[dict[str, Status], list[str]]


@cache
def baseline(cluster: str) -> Baseline:
    """Fault-free verdicts, and the resources the run read."""
    with tempfile.TemporaryDirectory() as folder, \
            FakeKubeAPI.from_dump(CLUSTERS / cluster) as api:
        report = run(api, Path(folder))
        resources = sorted({r.resource for r in api.requests if r.resource})
    return {r.check: r.status for r in report.results}, resources


def _resources() -> list[str]:
    """Computed like `baseline` (parametrize needs them at collection time)."""
    return sorted({CATALOGUE[k].resource for c in engine.select_checks()
                   for k in closure(set(c.meta.kinds)) if k in CATALOGUE})


def assert_only_dependents_unknown(report: Report, resource: str, cluster: str,
                                   cause: str) -> None:
    """The collections that failed are those read from `resource` (when the fault-free run
    read it at all) and those scoped from them; the checks reading a failed collection are
    unknown with the cause, every other check keeps its fault-free verdict."""
    verdicts, read = baseline(cluster)
    failed = set(report.collection_errors) - set(LOG_COLLECTIONS)
    assert bool(failed) == (resource in read), (resource, report.collection_errors)
    for name in failed:
        assert CATALOGUE[name].resource == resource or failed & set(CATALOGUE[name].needs), \
            f"{name} failed: {report.collection_errors[name]}"
    for result in report.results:
        meta = all_checks()[result.check].meta
        # A collection read only to quote evidence costs the check its quote, not its verdict.
        if failed & (set(meta.kinds) - set(meta.quotes_only)):
            assert result.status is Status.UNKNOWN, f"{result.check}: {result.summary}"
            assert resource in result.summary and cause in result.summary, result.summary
        else:
            assert result.status is verdicts[result.check], f"{result.check}: {result.summary}"
    # docs/output.md: 2 if any crit, else 1 if any warn, else 3 if any unknown, else 0: a
    # fault never hides a crit or warn that could still be judged.
    statuses = {r.status for r in report.results}
    assert report.exit_code == (2 if Status.CRIT in statuses else 1 if Status.WARN in statuses
                                else 3 if Status.UNKNOWN in statuses else 0)


@pytest.mark.parametrize("cluster", ["healthy", "broken"])
def test_every_resource_read_is_faulted(cluster: str) -> None:
    """Every resource read is in the fault matrix; one not read in a cluster (no claim: no
    PersistentVolume) is faulted too, and must change nothing."""
    _, read = baseline(cluster)
    assert set(read) - set(_resources()) <= {"pods/log"}


FAULTS = {"403": "forbidden", "500": "API error 500", "reset": "connection", "hang": "timed out"}
# The broken cluster has crit and warn verdicts a fault must not hide; hanging (seconds per
# case) runs there only.
CASES = [(cluster, fault, resource) for cluster in ("healthy", "broken") for fault in FAULTS
         for resource in _resources() if fault != "hang" or cluster == "broken"]


@pytest.mark.parametrize(("cluster", "fault", "resource"), CASES,
                         ids=["-".join(c) for c in CASES])
def test_a_fault_costs_only_the_dependent_checks(cluster: str, fault: str, resource: str,
                                                 tmp_path: Path) -> None:
    with FakeKubeAPI.from_dump(CLUSTERS / cluster) as api:
        if fault == "403":
            api.forbid(resource)
        else:
            api.inject(fault, resource=resource)
        report = run(api, tmp_path)
    assert_only_dependents_unknown(report, resource, cluster, FAULTS[fault])


def test_endless_throttling_ends_at_the_deadline(tmp_path: Path) -> None:
    """429 with Retry-After: 1 on every try: retried while the deadline allows, then the cause
    is the throttling, not a generic error."""
    with FakeKubeAPI.from_dump(CLUSTERS / "broken") as api:
        api.inject("429", resource="limitranges")
        report = run(api, tmp_path)
        tries = [r for r in api.requests if r.resource == "limitranges"]
    assert len(tries) > 1
    assert_only_dependents_unknown(report, "limitranges", "broken", "throttled")


def test_a_forbidden_log_costs_evidence_not_verdicts(tmp_path: Path) -> None:
    with FakeKubeAPI.from_dump(CLUSTERS / "broken") as api:
        api.forbid("pods/log")
        report = run(api, tmp_path)
    assert {r.check: r.status for r in report.results} == baseline("broken")[0]
    assert "forbidden" in report.collection_errors["console-logs"]


def test_nothing_readable_is_exit_3(tmp_path: Path) -> None:
    with FakeKubeAPI.from_dump(CLUSTERS / "healthy") as api:
        api.forbid("*")
        report = run(api, tmp_path)
    assert {r.status for r in report.results} == {Status.UNKNOWN}
    assert report.exit_code == 3
