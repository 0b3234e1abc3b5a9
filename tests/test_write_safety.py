"""Remediation when the API server fails mid-run (issue 12, section 3), through the real client
against the fake API's fault injection: writes whose outcome is unknown, errors between the
writes and the verdict, a rollback cut short, the run's deadline, per-finding verification,
the cooldown of every change and an admin's rollback that cron must respect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from registry_doctor.checks import all_checks
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.fix import flow
from registry_doctor.doctor.fix.journal import SECRET_NAME, UNFINISHED, RunRecord
from registry_doctor.doctor.fix.model import FixOptions
from registry_doctor.doctor.model import Report, Status
from registry_doctor.doctor.snapshot.dump import parse_documents
from tests import test_remediation
from tests.fixcluster import broken, expire_lock, lock_record, on_nfs
from tests.kubefake import FakeKubeAPI
from tests.test_remediation import (
    actions,
    journal,
    template_resources,
    unfinished_run,
    with_journal,
)

CHECKS = all_checks()
QOS = CHECKS["besteffort-qos"]
FIXED = {"requests": {"cpu": "100m", "memory": "256Mi"}}
Obj = dict[str, Any]
Start = Callable[[list[Obj]], tuple[FakeKubeAPI, RunConfig]]
Printer = Callable[[Obj], None]


cluster = test_remediation.cluster  # the fixture: start(objects) -> (fake, RunConfig)


def run_fix(config: RunConfig, checks: list[Any] | None = None, printer: Printer | None = None,
            **options: Any) -> tuple[Report, list[Obj]]:
    lines: list[Obj] = []

    def record(line: Obj) -> None:
        lines.append(line)
        if printer is not None:
            printer(line)

    settings = {"apply": True, "poll_seconds": 0.05, **options}
    return flow.fix(config, FixOptions(**settings), checks or [QOS], record), lines


def unit_states(api: FakeKubeAPI) -> list[str]:
    return [u.state for r in journal(api) for u in r.units]


def events_of(lines: list[Obj], event: str) -> list[Obj]:
    return [line for line in lines if line["event"] == event]


# A write whose outcome is unknown

@pytest.mark.parametrize("fault", ["commit-then-500", "commit-then-reset"])
def test_a_patch_committed_before_an_error_counts_as_applied(cluster: Start,
                                                             fault: str) -> None:
    api, config = cluster(broken())
    api.inject(fault, resource="deploymentconfigs", verb="patch", times=1)
    report, lines = run_fix(config)
    assert template_resources(api) == FIXED
    assert report.result("besteffort-qos").status is Status.OK
    [unit] = journal(api)[0].units
    assert unit.state == "verified", unit.message
    [noted] = events_of(lines, "write")
    assert noted["result"] == "applied" and "the server applied it, then answered" in \
        noted["message"]
    assert actions(report)[0]["state"] == "applied"


@pytest.mark.parametrize("fault", ["500", "reset"])
def test_a_patch_the_server_did_not_apply_is_not_applied(cluster: Start, fault: str) -> None:
    api, config = cluster(broken())
    api.inject(fault, resource="deploymentconfigs", verb="patch", times=1)
    report, _ = run_fix(config)
    assert template_resources(api) == {} and api.deployment_requests == []
    [unit] = journal(api)[0].units
    assert unit.state == "aborted" and unit.message.startswith("not applied: dc/docker-registry")
    assert actions(report)[0]["state"] == "failed"


def test_a_create_committed_before_an_error_is_kept_and_used(cluster: Start) -> None:
    api, config = cluster(broken())
    api.inject("commit-then-500", resource="persistentvolumeclaims", verb="create", times=1)
    report, _ = run_fix(config, [CHECKS["ephemeral-storage"]], allow_disruptive=True,
                        claim_size="5Gi")
    assert report.result("ephemeral-storage").status is Status.OK
    assert [c["metadata"]["name"] for c in api.objects("persistentvolumeclaims")] == [
        "docker-registry-claim"]
    assert unit_states(api) == ["verified"]


def test_a_second_write_that_fails_undoes_the_first(cluster: Start) -> None:
    """The claim swap creates a claim, then patches the DC: the patch fails without
    committing, the claim is kept (it may hold data) and the unit is aborted, saying so."""
    api, config = cluster(broken())
    api.inject("500", resource="deploymentconfigs", verb="patch", times=1)
    run_fix(config, [CHECKS["ephemeral-storage"]], allow_disruptive=True, claim_size="5Gi")
    [unit] = journal(api)[0].units
    assert unit.state == "aborted" and "what it had written was undone" in unit.message
    assert "(kept: pvc/docker-registry-claim in default, which it created)" in unit.message
    assert api.get_object("deploymentconfigs", "default", "docker-registry")["spec"][
        "template"]["spec"]["volumes"] == [{"name": "registry-storage", "emptyDir": {}}]


def test_a_rollback_patch_committed_before_an_error_counts_as_restored(cluster: Start) -> None:
    api, config = cluster(broken())
    api.deployer.outcomes = ["Failed"]

    def fail_the_reverse_patch(line: Obj) -> None:
        if line["event"] == "rollout" and line["result"] == "Failed":
            api.inject("commit-then-500", resource="deploymentconfigs", verb="patch", times=1)

    report, lines = run_fix(config, printer=fail_the_reverse_patch)
    assert template_resources(api) == {}
    [unit] = journal(api)[0].units
    assert unit.state == "rolled-back" and unit.undoing is None, unit.message
    assert [line["result"] for line in events_of(lines, "rollback")] == ["restored"]
    assert report.result("besteffort-qos").summary.startswith("fix rolled-back: ")


# Errors between the writes and the verdict

def test_an_event_that_cannot_be_recorded_does_not_stop_the_unit(cluster: Start) -> None:
    api, config = cluster(broken())
    api.inject("500", resource="events", verb="create")
    report, lines = run_fix(config)
    assert report.result("besteffort-qos").status is Status.OK
    assert unit_states(api) == ["verified"]
    assert {line["result"] for line in events_of(lines, "event")} == {"not recorded"}


def test_a_rollout_that_cannot_be_followed_is_rolled_back_now(cluster: Start) -> None:
    """Reads of the rollout keep failing (every retry too): the unit does not stay
    `redeploying` until tomorrow's run; it is rolled back in this run."""
    api, config = cluster(broken())

    def fail_reads_of_the_rollout(line: Obj) -> None:
        if line["event"] == "action":  # the patch is applied: from now on
            api.inject("500", resource="replicationcontrollers", verb="get")

    report, _ = run_fix(config, printer=fail_reads_of_the_rollout)
    [unit] = journal(api)[0].units
    assert unit.state in ("rolled-back", "failed") and unit.state not in UNFINISHED
    assert "could not be followed: API error 500" in unit.message
    assert template_resources(api) == {}
    assert report.result("besteffort-qos").status is Status.CRIT


def test_a_run_that_died_after_its_rollback_patch_finishes_the_rollback(cluster: Start) -> None:
    """The dead run restored the template (the objects read `old`) but had not redeployed
    the rollback: not `interrupted before any change`, the rollback is finished."""
    dead = unfinished_run("redeploying")
    dead.units[0].undoing = "rc/docker-registry-3 failed"
    api, config = cluster(with_journal(broken(), dead))
    dc = api.get_object("deploymentconfigs", "default", "docker-registry")
    dc["status"]["latestVersion"] = 3  # the fix's rollout had happened
    api.put_object(dc)
    report, _ = run_fix(config, cooldown_seconds=0)
    [recovered] = report.fix["recovered"]
    assert "rolled-back: rc/docker-registry-3 failed (finished after run" in recovered
    assert [r.name for r in api.deployment_requests][:1] == ["docker-registry"]
    old = next(r for r in journal(api) if r.run == dead.run).units[0]
    assert old.state == "rolled-back" and old.undoing is None


# The run's deadline

def test_a_hanging_write_is_bounded_by_the_run_timeout(cluster: Start) -> None:
    api, config = cluster(broken())
    api.inject("hang", resource="deploymentconfigs", verb="patch", times=1)
    config = RunConfig(kubeconfig=config.kubeconfig, probes=False, timeout=3)
    report, _ = run_fix(config)
    [unit] = journal(api)[0].units
    assert unit.state == "aborted" and "timed out" in unit.message, unit.message
    assert template_resources(api) == {}
    assert report.result("besteffort-qos").status is Status.CRIT
    assert not lock_record(api).get("holderIdentity")


def test_a_server_that_hangs_on_every_post_costs_one_timeout_not_one_per_request(
        cluster: Start) -> None:
    """Access reviews, lease and events are POSTs: the first one waits out what is left of
    --timeout, every later one is refused at once, so the run ends instead of waiting
    --timeout per request."""
    api, config = cluster(broken())
    api.inject("hang", verb="create")
    config = RunConfig(kubeconfig=config.kubeconfig, probes=False, timeout=3)
    report, _ = run_fix(config)
    [action] = actions(report)
    assert action["state"] == "denied" and "the run's deadline passed" in action["message"]
    hung = [r for r in api.requests if r.status is None]
    assert len(hung) == 1 and hung[0].resource == "selfsubjectaccessreviews"
    assert template_resources(api) == {}


def test_no_unit_starts_after_the_deadline(cluster: Start) -> None:
    from registry_doctor.doctor.fix.cluster import DEADLINE

    api, config = cluster(broken())
    session = flow.Session(config, FixOptions(apply=True, poll_seconds=0.05), [QOS],
                           flow.KubeClient(config.kubeconfig))
    found = session.inspect()

    def time_is_up(line: Obj) -> None:
        if line["event"] == "lock":  # the run's time is up right after taking the lease
            session.cluster.deadline._end = 0.0

    report = flow.apply_plan(session, found, time_is_up)
    assert "deadline passed" in report.fix["interrupted"] and DEADLINE == "Deadline"
    assert "verdicts are from before the fix" not in report.fix["interrupted"]
    assert template_resources(api) == {}
    assert not lock_record(api).get("holderIdentity")


# Verification per finding

def test_a_fix_holds_when_its_finding_is_gone_though_another_remains() -> None:
    from registry_doctor.doctor.fix.executor import held
    from registry_doctor.doctor.fix.journal import UnitRecord
    from registry_doctor.doctor.model import Result

    order, san = "secret x: is not first", "secret x: does not cover host"
    unit = UnitRecord(["cert-chain-order"], {"cert-chain-order": "crit"}, [], [],
                      targets={"cert-chain-order": [order]}, problems={"cert-chain-order": 2})

    def after(status: Status, *problems: str) -> Result:
        return Result("cert-chain-order", "t", status, "s", problems=problems)

    assert held(unit, after(Status.CRIT, san)) == "targeted finding fixed"
    assert held(unit, after(Status.OK)) == "improved"
    assert held(unit, after(Status.CRIT, order, san)) is None  # the target remains
    assert held(unit, after(Status.CRIT, san, "a new problem")) is None  # made it worse
    assert held(unit, after(Status.UNKNOWN)) is None
    untargeted = UnitRecord(["cert-chain-order"], {"cert-chain-order": "crit"}, [], [])
    assert held(untargeted, after(Status.CRIT, san)) is None


# The cooldown and an admin's rollback

def test_the_cooldown_covers_a_fix_without_a_redeploy(cluster: Start) -> None:
    api, config = cluster(on_nfs(broken()))
    nfs = CHECKS["nfs-scaling"]
    run_fix(config, [nfs])
    service = api.get_object("services", "default", "docker-registry")
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    service["spec"]["sessionAffinity"] = "None"  # someone reverts it by hand
    api.put_object(service)
    report, _ = run_fix(config, [nfs])
    [action] = actions(report, "nfs-scaling")
    assert action["state"] == "blocked" and action["message"].startswith("cooldown: run ")
    assert "changed svc/docker-registry at" in action["message"]
    assert api.get_object("services", "default", "docker-registry")["spec"][
        "sessionAffinity"] == "None"


def test_an_admins_rollback_is_not_undone_by_the_next_run(cluster: Start) -> None:
    api, config = cluster(broken())
    run_fix(config)
    done = flow.rollback(config, FixOptions(apply=True, poll_seconds=0.05), [QOS], None,
                         lambda line: None)
    assert done.code == 0 and template_resources(api) == {}
    [fixed_run] = journal(api)
    assert fixed_run.units[0].reverted is not None

    again, _ = run_fix(config, cooldown_seconds=0)
    [action] = actions(again)
    assert action["state"] == "blocked" and action["message"].startswith(
        f"rolled back by an admin (run {fixed_run.run}")
    assert f"registry-doctor rollback --clear {fixed_run.run}" in action["message"]
    assert again.result("besteffort-qos").status is Status.CRIT and template_resources(api) == {}

    preview = flow.rollback(config, FixOptions(), [QOS], fixed_run.run, print, clear=True)
    assert preview.code == 0 and preview.lines[-1] == "(add --yes to clear)"
    cleared = flow.rollback(config, FixOptions(apply=True), [QOS], fixed_run.run, print,
                            clear=True)
    assert cleared.code == 0, cleared.lines
    final, _ = run_fix(config, cooldown_seconds=0)
    assert final.result("besteffort-qos").status is Status.OK and template_resources(api) == FIXED


def test_an_admins_rollback_holds_until_the_object_changes(cluster: Start) -> None:
    api, config = cluster(broken())
    run_fix(config)
    flow.rollback(config, FixOptions(apply=True, poll_seconds=0.05), [QOS], None,
                  lambda line: None)
    dc = api.get_object("deploymentconfigs", "default", "docker-registry")
    dc["spec"]["template"]["metadata"]["labels"]["edited"] = "by-hand"
    dc["metadata"]["generation"] += 1  # as the API server counts a change of the spec
    api.put_object(dc)
    report, _ = run_fix(config, cooldown_seconds=0)
    assert report.result("besteffort-qos").status is Status.OK
    assert [u["state"] for u in report.fix["units"]] == ["verified"]


def test_clearing_a_run_without_an_admins_rollback_is_refused(cluster: Start) -> None:
    _, config = cluster(broken())
    result = flow.rollback(config, FixOptions(apply=True), [QOS], "no-such-run", print,
                           clear=True)
    assert result.code == 64 and result.lines[0].startswith("nothing to clear: run no-such-run")


# Dumps

def test_yaml_aliases_cannot_expand_without_bound() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    bomb = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n" + "\n".join(
        f"  {line}" for line in levels) + "\n"
    objects, problems = parse_documents(bomb, "configmaps/bomb.yaml")
    assert objects == []
    assert problems == ["configmaps/bomb.yaml: refused: its YAML aliases (*name) expand to "
                        "more values than the file has characters (an alias bomb?)"]
    cycle, problems = parse_documents("kind: ConfigMap\nmetadata: &m {name: c, x: *m}\n",
                                      "cycle.yaml")
    assert cycle == [] and "refused" in problems[0]
    fine = "kind: ConfigMap\nmetadata: {name: ok}\ndata: &d {k: v}\nextra: *d\n"
    assert [o["metadata"]["name"] for o in parse_documents(fine, "ok.yaml")[0]] == ["ok"]


def test_the_journal_rereads_after_a_committed_write_that_failed(cluster: Start) -> None:
    from registry_doctor.doctor.fix.cluster import Cluster
    from registry_doctor.doctor.fix.journal import Journal

    api, config = cluster(broken())
    store = Journal(Cluster(flow.KubeClient(config.kubeconfig), 10), "default")
    store.save(RunRecord("20240101T000000Z-aaaaaa", "h", "t"))
    api.inject("commit-then-500", resource="secrets", verb="update", times=1)
    store.save(RunRecord("20240101T000100Z-bbbbbb", "h", "t"))
    assert [r.run for r in store.runs()] == ["20240101T000000Z-aaaaaa",
                                             "20240101T000100Z-bbbbbb"]


def test_killed_after_any_write_of_a_failing_fix_the_next_run_ends_rolled_back(
        fake_cluster: Callable[[list[Obj]], tuple[FakeKubeAPI, Path]]) -> None:
    """The rollout fails, so the run rolls the fix back; killed after each of its writes,
    including right after the rollback's reverse patch, the next run settles the unit: the
    template ends as it was and nothing stays unfinished."""
    from registry_doctor.doctor.fix.cluster import CRASH_EXIT_CODE
    from tests.test_remediation_cli import documents, qos_fix, run

    api, kubeconfig = fake_cluster(broken())
    api.deployer.outcomes = ["Failed"]
    total = documents(run(*qos_fix(kubeconfig)).stdout)[-1]["fix"]["writes"]
    assert [u.state for r in journal(api) for u in r.units] == ["rolled-back"]
    killed_while_undoing = 0
    for step in range(1, total + 1):
        api, kubeconfig = fake_cluster(broken())
        api.deployer.outcomes = ["Failed"]
        killed = run(*qos_fix(kubeconfig), crash_after=step)
        assert killed.returncode == CRASH_EXIT_CODE, (step, killed.stderr)
        written = api.get_object("secrets", "default", SECRET_NAME) is not None
        undoing = [u for r in (journal(api) if written else []) for u in r.units
                   if u.state in UNFINISHED and u.undoing]
        killed_while_undoing += bool(undoing)
        expire_lock(api)
        rerun = run(*qos_fix(kubeconfig))
        assert "Traceback" not in rerun.stderr, (step, rerun.stderr)
        assert template_resources(api) == {}, step
        states = [u.state for r in journal(api) for u in r.units]
        assert not [s for s in states if s in UNFINISHED], (step, states)
        if undoing:  # read as a rollback to finish, not as "interrupted before any change"
            [recovered] = documents(rerun.stdout)[-1]["fix"]["recovered"]
            assert ": rolled-back: " in recovered and "finished after run" in recovered, (
                step, recovered)
    assert killed_while_undoing >= 2  # after saving `undoing`, after the reverse patch


def test_rollback_clear_from_the_command_line(
        fake_cluster: Callable[[list[Obj]], tuple[FakeKubeAPI, Path]]) -> None:
    from tests.test_remediation_cli import fix, run

    api, kubeconfig = fake_cluster(broken())
    rollback = ("-m", "registry_doctor.doctor.cli", "rollback", "--kubeconfig", str(kubeconfig))
    unnamed = run(*rollback, "--clear")
    assert unnamed.returncode == 64 and "--clear needs --run RUN" in unnamed.stderr
    assert fix(kubeconfig, "--yes").returncode == 0
    assert run(*rollback, "--yes").returncode == 0
    [done] = journal(api)
    held = fix(kubeconfig, "--yes", "--cooldown", "0", "-o", "json")
    assert "rolled back by an admin" in held.stdout and template_resources(api) == {}
    cleared = run(*rollback, "--run", done.run, "--clear", "--yes")
    assert cleared.returncode == 0 and "cron may apply again: besteffort-qos" in cleared.stdout
    assert fix(kubeconfig, "--yes", "--cooldown", "0").returncode == 0
    assert template_resources(api) == FIXED
