"""Live mode through the real kubernetes client against the fake API server: the same verdicts
as offline, scoped requests, and API failures that cost only the checks that depend on them."""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from registry_doctor.doctor import __version__, engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.fix.plan import planner_reads
from registry_doctor.doctor.model import Report, Status
from registry_doctor.doctor.snapshot.kinds import LOG_TAIL_BYTES
from tests.casedump import Case, discover_cases, materialize
from tests.conftest import CLUSTERS
from tests.kubefake import FakeKubeAPI
from tests.test_check_cases import assert_plan, assert_verdict, case_config

LIVE_CASES = [c for c in discover_cases() if c.spec.get("live", True)]
FakeFactory = Callable[[Path], FakeKubeAPI]


def live_report(api: FakeKubeAPI, tmp_path: Path, checks: list[str] | None = None,
                **overrides: object) -> Report:
    config = RunConfig(kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"), probes=False,
                       **overrides)
    return engine.run(config, engine.select_checks(checks or [], config=config))


@pytest.mark.parametrize(("case", "kube_profile"), [(c, c.api) for c in LIVE_CASES],
                         ids=[c.id for c in LIVE_CASES])
def test_case_live(case: Case, fake_api: FakeFactory, tmp_path: Path) -> None:
    api = fake_api(materialize(case, tmp_path / "dump"))
    probes = case.spec.get("config", {}).get("probes", False)  # probes only where a case asks
    config = case_config(case, kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"),
                         probes=probes)
    checks = engine.select_checks([case.check], config=config)
    report, snapshot = engine.inspect(config, checks, also=planner_reads(checks))
    assert_verdict(report, case)
    assert_plan(report, snapshot, config, checks[0], case)


def test_forbidden_pods_make_only_dependent_checks_unknown(fake_api: FakeFactory,
                                                           tmp_path: Path) -> None:
    api = fake_api(CLUSTERS / "broken")
    api.forbid("pods", "list")
    report = live_report(api, tmp_path, ["besteffort-qos"])
    result = report.result("besteffort-qos")
    assert result.status is Status.UNKNOWN
    assert "forbidden: list pods in default" in result.summary
    assert report.exit_code == 3


def test_requests_are_scoped(fake_api: FakeFactory, tmp_path: Path) -> None:
    api = fake_api(CLUSTERS / "healthy")
    live_report(api, tmp_path)
    for record in api.requests:
        if record.verb == "list" and record.resource not in ("namespaces", "nodes"):
            scoped = record.namespace or record.query.get("fieldSelector") \
                or record.query.get("labelSelector")
            assert scoped, f"cluster-wide list: {record.method} {record.path}"
    pod_lists = [r for r in api.requests if r.resource == "pods" and r.verb == "list"]
    assert all(r.query.get("labelSelector") or r.query.get("fieldSelector")
               for r in pod_lists), pod_lists
    fetched = [(r.resource, r.namespace, r.name, r.verb, r.query.get("labelSelector"),
                r.query.get("fieldSelector")) for r in api.requests if r.resource]
    assert len(fetched) == len(set(fetched)), "a collection was fetched twice"


def test_every_request_names_registry_doctor_and_its_version(fake_api: FakeFactory,
                                                             tmp_path: Path) -> None:
    """API audit logs show the User-Agent: who read the secrets, which version."""
    api = fake_api(CLUSTERS / "broken")
    live_report(api, tmp_path)
    agents = {r.user_agent for r in api.requests}
    assert agents == {f"registry-doctor/{__version__} ({sys.platform}; "
                      f"python {platform.python_version()})"}


def test_events_a_check_only_quotes_do_not_cost_it_its_verdict(fake_api: FakeFactory,
                                                                tmp_path: Path) -> None:
    """ephemeral-storage judges the claim from the claim; its events only explain it."""
    [case] = [c for c in LIVE_CASES if c.id == "ephemeral-storage/claim-pending"]
    api = fake_api(materialize(case, tmp_path / "dump"))
    api.forbid("events", "list")
    result = live_report(api, tmp_path, ["ephemeral-storage"]).result("ephemeral-storage")
    assert result.status is Status.CRIT, result.summary
    assert any(d.startswith("events not read (") and "forbidden" in d and
               d.endswith("no claim event quoted") for d in result.details), result.details


@pytest.mark.parametrize("fault", ["500", "reset"])
def test_api_faults_become_unknown_with_the_cause(fault: str, fake_api: FakeFactory,
                                                  tmp_path: Path) -> None:
    api = fake_api(CLUSTERS / "broken")
    api.inject(fault, resource="limitranges")
    result = live_report(api, tmp_path, ["besteffort-qos"]).result("besteffort-qos")
    assert result.status is Status.UNKNOWN
    assert "limitranges" in result.summary


def test_throttling_is_retried_after_the_servers_delay(fake_api: FakeFactory,
                                                       tmp_path: Path) -> None:
    api = fake_api(CLUSTERS / "broken")
    api.inject("429", resource="limitranges", times=1)
    result = live_report(api, tmp_path, ["besteffort-qos"]).result("besteffort-qos")
    assert result.status is Status.CRIT
    statuses = [r.status for r in api.requests if r.resource == "limitranges"]
    assert statuses == [429, 200]


@pytest.mark.parametrize(("fault", "seen"), [("503", [503, 200]), ("500", [500, 200]),
                                             ("reset", [None, 200])])
def test_one_transient_read_failure_is_retried(fault: str, seen: list[int | None],
                                               fake_api: FakeFactory, tmp_path: Path) -> None:
    """One 503 from a busy master, or a dropped connection, must not turn a check unknown."""
    api = fake_api(CLUSTERS / "broken")
    api.inject(fault, resource="limitranges", times=1)
    result = live_report(api, tmp_path, ["besteffort-qos"]).result("besteffort-qos")
    assert result.status is Status.CRIT, result.summary
    assert [r.status for r in api.requests if r.resource == "limitranges"] == seen


def test_a_never_ending_answer_is_cut_off(fake_api: FakeFactory, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from registry_doctor.doctor.kube import KubeClient

    monkeypatch.setattr(KubeClient, "max_response_bytes", 4 * 2**20)
    api = fake_api(CLUSTERS / "broken")
    api.inject("endless", resource="limitranges")
    result = live_report(api, tmp_path, ["besteffort-qos"]).result("besteffort-qos")
    assert result.status is Status.UNKNOWN
    assert "the answer to list limitranges in default is larger than 4 MiB" in result.summary


def test_a_hanging_api_server_cannot_hold_the_run(fake_api: FakeFactory,
                                                  tmp_path: Path) -> None:
    api = fake_api(CLUSTERS / "broken")
    api.inject("hang", resource="pods")
    result = live_report(api, tmp_path, ["besteffort-qos"], timeout=2.0) \
        .result("besteffort-qos")
    assert result.status is Status.UNKNOWN
    assert "timed out" in result.summary and "pods" in result.summary


def test_missing_openshift_api_groups_mean_no_deploymentconfigs(tmp_path: Path) -> None:
    """A plain Kubernetes cluster: the registry is a Deployment; no DC API group is served."""
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "docker-registry", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "registry"}},
                 "template": {"metadata": {"labels": {"app": "registry"}},
                              "spec": {"containers": [{"name": "registry", "image": "registry:2",
                                                       "resources": {}}]}}},
    }
    with FakeKubeAPI(objects=[deployment]) as api:
        for group in ("apps.openshift.io", "route.openshift.io", "oauth.openshift.io"):
            api.unserve_group(group)
        report = live_report(api, tmp_path, ["besteffort-qos"])
    assert any(r.path.startswith("/apis/apps.openshift.io/") and r.status == 404
               for r in api.requests)
    result = report.result("besteffort-qos")
    assert result.status is Status.CRIT
    assert "deployment/docker-registry" in result.summary


def test_previous_logs_are_read_for_restarted_containers_only(fake_api: FakeFactory,
                                                              tmp_path: Path) -> None:
    case = next(c for c in LIVE_CASES if c.id == "registry-running/restarts-previous-log-s3")
    api = fake_api(materialize(case, tmp_path / "dump"))
    config = RunConfig(kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"), probes=False)
    checks = engine.select_checks(["registry-running", "console-running"], config=config)
    _, snapshot = engine.inspect(config, checks)
    previous = [r for r in api.requests if r.resource == "pods/log"
                and r.query.get("previous") == "true"]
    # The restarted registry pod's container only: the console pod never restarted.
    assert [(r.name, r.query) for r in previous] == [
        ("docker-registry-3-7kq2x", {"container": "registry", "previous": "true",
                                     "tailLines": str(config.log_tail_lines),
                                     "limitBytes": str(LOG_TAIL_BYTES)})]
    assert [r.status for r in previous] == [200]
    [(key, text)] = snapshot.previous_logs.items()
    assert key == ("default", "docker-registry-3-7kq2x", "registry")
    assert text.splitlines()[2].startswith('time="2019-06-03T09:38:31.204Z" level=error')


def test_a_restarted_container_without_a_previous_log_is_no_error(fake_api: FakeFactory,
                                                                   tmp_path: Path) -> None:
    """The kubelet's 400 for a previous instance it did not keep is a fact, not lost evidence."""
    case = next(c for c in LIVE_CASES if c.id == "console-running/oom-restarts")
    api = fake_api(materialize(case, tmp_path / "dump"))
    config = RunConfig(kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"), probes=False)
    pod = next(o for o in api.objects("pods") if o["metadata"]["name"] ==
               "registry-console-2-q8xvd")
    del pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["containerID"]
    api.put_object(pod)
    _, snapshot = engine.inspect(config, engine.select_checks(["console-running"],
                                                              config=config))
    assert [r.status for r in api.requests if r.query.get("previous") == "true"] == [400]
    assert snapshot.previous_logs == {} and "console-logs" not in snapshot.errors
