"""The pure side of remediation: patches and their reversal, redaction, PEM reordering, how
actions are selected and grouped, and the planner API."""

from __future__ import annotations

import ast
import base64
import copy
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry_doctor.checks import all_checks
from registry_doctor.doctor.check import Check
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.fix.executor import select as select_actions
from registry_doctor.doctor.fix.executor import together, units
from registry_doctor.doctor.fix.model import (
    DENIED,
    DISRUPTIVE,
    MANUAL,
    PATCH,
    Action,
    FixOptions,
    ObjectRef,
)
from registry_doctor.doctor.fix.patch import (
    REDACTED,
    changes,
    forward,
    reverse,
    shown,
    version_of,
    yaml_diff,
)
from registry_doctor.doctor.fix.pemtext import outline, segments
from registry_doctor.doctor.fix.plan import make_plan, planner
from registry_doctor.doctor.fix.planners.console import ordered_chain
from registry_doctor.doctor.model import CheckMeta, Result, Severity, Status
from registry_doctor.doctor.snapshot import Snapshot
from tests.conftest import REPO
from tests.fixcluster import broken, certificate_chain, chain_in_order, registry_dc
from tests.kubefake.patches import json_patch

keys = st.sampled_from(["a", "b", "c", "d/e", "f~g"])
values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=3),
                      lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(keys, inner, max_size=3), max_leaves=8)
documents = st.dictionaries(keys, values, max_size=4)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)  # a shared machine
@given(documents, documents)
def test_a_patch_turns_before_into_after_and_its_reverse_undoes_it(before: Any,
                                                                   after: Any) -> None:
    found = changes(before, after)
    assert json_patch(before, forward(found)) == after
    assert json_patch(after, reverse(found)) == before
    assert version_of(after, found) == "new"
    assert version_of(before, found) == ("new" if not found else "old")


def test_server_owned_fields_are_not_changes() -> None:
    before = {"metadata": {"name": "x", "resourceVersion": "1", "uid": "u"},
              "status": {"replicas": 1}}
    after = {"metadata": {"name": "x", "resourceVersion": "9"}, "status": {"replicas": 2}}
    assert changes(before, after) == []


def test_a_field_changed_since_makes_the_reverse_patch_fail() -> None:
    before, after = {"spec": {"replicas": 2}}, {"spec": {"replicas": 1}}
    edited = {"spec": {"replicas": 3}}
    assert version_of(edited, changes(before, after)) == "mixed"
    try:
        json_patch(edited, reverse(changes(before, after)))
    except ValueError as error:
        assert "test failed" in str(error)
    else:
        raise AssertionError("the reverse patch applied over a newer change")


def test_shown_objects_hold_no_secret_values() -> None:
    server, _, _, key = certificate_chain()
    secret = {"kind": "Secret", "metadata": {"name": "s"},
              "data": {"tls.cert": base64.b64encode((server + key).encode()).decode(),
                       "password": base64.b64encode(b"hunter2").decode()},
              "stringData": {"token": "abc"}}
    shown_secret = shown(secret)
    assert shown_secret["data"]["tls.cert"].startswith("PEM: CERTIFICATE (CN=registry-console")
    assert shown_secret["data"]["tls.cert"].endswith("PRIVATE KEY (redacted)")
    assert shown_secret["data"]["password"] == f"{REDACTED} (12 characters)"
    assert shown_secret["stringData"]["token"].startswith(REDACTED)
    dc = registry_dc(broken())
    text = yaml_diff(dc, dc, "dc/docker-registry", "1") + str(shown(dc))
    assert "kV2rXl0wq7cJ3oT0y2m4pQJ1" not in text
    assert shown({"kind": "OAuthClient", "secret": "s3cr3t"})["secret"] == REDACTED
    assert secret["data"]["password"] != REDACTED  # the original is untouched


def test_a_misordered_chain_is_reordered_block_for_block() -> None:
    server, intermediate, root, key = certificate_chain()
    for order in ([key, root, intermediate, server], [intermediate, server, key, root],
                  [server, intermediate, root, key]):
        text = "".join(order) + "# trailing comment\n"
        ordered = ordered_chain(text)
        assert ordered is not None and chain_in_order(ordered.replace("# trailing comment\n",
                                                                      ""))
        assert sorted(b.text for b in segments(ordered)[0]) == sorted(order)
        assert ordered.endswith("# trailing comment\n") and ordered_chain(ordered) == ordered


def test_without_its_key_the_leaf_is_the_certificate_that_issued_none() -> None:
    server, intermediate, root, _ = certificate_chain()
    assert ordered_chain(root + server + intermediate) == server + intermediate + root


def test_what_is_not_pem_is_not_reordered() -> None:
    assert ordered_chain("not a certificate") is None
    assert outline("<redacted by registry-doctor>") is None


def action(check: str, name: str, target: str | None, redeploy: str | None = None,
           **fields: Any) -> Action:
    def ref(kind_name: str | None) -> ObjectRef | None:
        if kind_name is None:
            return None
        kind, _, object_name = kind_name.partition("/")
        return ObjectRef.of({"kind": kind, "metadata": {"name": object_name}})
    return Action(check, name, name, fields.pop("operation", PATCH), ref(target),
                  redeploy=ref(redeploy), **fields)


def test_actions_of_a_check_a_workload_or_an_object_form_one_unit() -> None:
    grouped = units([
        action("a", "x", "DeploymentConfig/docker-registry", "DeploymentConfig/docker-registry"),
        action("b", "y", "Service/docker-registry"),
        action("c", "z", "Secret/console-secret", "DeploymentConfig/registry-console"),
        action("a", "w", "Service/other"),
        action("d", "v", "DeploymentConfig/registry-console", "DeploymentConfig/registry-console"),
    ], {})
    assert sorted(sorted(a.id for a in u.actions) for u in grouped) == [
        ["a/w", "a/x"], ["b/y"], ["c/z", "d/v"]]
    console_unit = next(u for u in grouped if "c" in u.record.checks)
    assert [w.object.kind for w in console_unit.record.writes] == ["Secret", "DeploymentConfig"]


def test_one_action_that_cannot_run_holds_back_its_check() -> None:
    held = together([action("a", "x", "Service/s").moved(DENIED, "no"),
                     action("a", "y", "Service/t"), action("b", "z", "Service/u")])
    assert [(a.id, a.state) for a in held] == [("a/x", "denied"), ("a/y", "skipped"),
                                               ("b/z", "planned")]
    assert "a/x is denied" in held[1].message


def test_options_decide_on_disruptive_and_optional_actions() -> None:
    chosen = select_actions([action("a", "x", "Service/s", risk=DISRUPTIVE),
                             action("b", "y", None, "DeploymentConfig/d", operation="redeploy",
                                    optional=True)], FixOptions(only=("b",)))
    assert [a.state for a in chosen] == ["skipped", "planned"]


def failing(check_id: str) -> Result:
    return Result(check_id, "t", Status.CRIT, "bad")


def test_a_broken_planner_costs_only_its_own_check() -> None:
    @planner()
    def explode(ctx: Any) -> list[Action]:
        raise KeyError("spec")

    meta = CheckMeta("boom", "t", Severity.CRIT, (), "r", "d")
    qos = all_checks()["besteffort-qos"]
    snapshot = Snapshot(RunConfig(), {}, {"deploymentconfigs": [registry_dc(broken())]})
    planned = make_plan([failing("boom"), failing("besteffort-qos")], snapshot, RunConfig(),
                        FixOptions(), [Check(meta, lambda ctx: failing("boom"), explode), qos])
    assert [(a.check, a.operation, a.state) for a in planned] == [
        ("boom", MANUAL, "failed"), ("besteffort-qos", PATCH, "planned")]
    assert "KeyError" in planned[0].summary
    only = make_plan([failing("besteffort-qos")], snapshot, RunConfig(),
                     FixOptions(only=("boom",)), [qos])
    assert only == []


def test_legacy_api_versions_are_written_through_the_served_one() -> None:
    legacy = copy.deepcopy(registry_dc(broken()))
    legacy["apiVersion"] = "v1"
    ref = ObjectRef.of(legacy)
    assert (ref.api_version, ref.resource, ref.namespace) == (
        "apps.openshift.io/v1", "deploymentconfigs", "default")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_planning_is_pure() -> None:
    """What checks may import from doctor/fix never reaches the cluster."""
    pure = ["model.py", "patch.py", "plan.py", "pemtext.py", "permissions.py",
            "planners/__init__.py", "planners/storage.py", "planners/console.py"]
    for name in pure:
        found = imports(REPO / "doctor" / "fix" / name)
        io = {m for m in found if m.split(".")[0] in ("kubernetes", "boto3", "socket")
              or m in ("registry_doctor.doctor.kube", "registry_doctor.doctor.fix.cluster",
                        "registry_doctor.doctor.fix.executor")}
        assert not io, f"doctor/fix/{name} imports {sorted(io)}"


def test_the_permissions_table_in_the_docs_is_current() -> None:
    from registry_doctor.doctor.fix import permissions

    assert permissions.main(["--check"]) == 0, \
        "run python -m registry_doctor.doctor.fix.permissions"


def test_two_actions_changing_the_same_field_are_not_applied_together() -> None:
    dc = registry_dc(broken())
    one, two = copy.deepcopy(dc), copy.deepcopy(dc)
    one["spec"]["replicas"], two["spec"]["replicas"] = 1, 3
    ref = ObjectRef.of(dc)
    chosen = select_actions([Action("a", "x", "x", PATCH, ref, before=dc, after=one),
                             Action("b", "y", "y", PATCH, ref, before=dc, after=two)],
                            FixOptions())
    assert [a.state for a in chosen] == ["planned", "skipped"]
    assert "changes fields a/x changes" in chosen[1].message
