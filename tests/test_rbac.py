"""The chart's read-only RBAC is derived from the checks' metadata (doctor/rbac.py): exactly the
verbs and resources the selected checks read, proven three ways: against doctor.rbac, against
the scopes the collector really queries, and against the requests of a live run."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from checks import all_checks
from doctor import engine, rbac
from doctor.config import RunConfig
from doctor.model import CheckMeta, Severity
from doctor.rbac import CLUSTER, NAMESPACE, Grant, Rule, read_rules
from doctor.snapshot import collect
from doctor.snapshot.kinds import CATALOGUE, LOG_COLLECTIONS, Collection, Query
from doctor.snapshot.offline import DumpSource
from tests.conftest import CLUSTERS, REPO
from tests.helmchart import CHART, container_args, render, rendered_read_rules
from tests.kubefake import FakeKubeAPI

FakeFactory = Callable[[Path], FakeKubeAPI]


def meta(check_id: str, kinds: tuple[str, ...], opt_in: str | None = None) -> CheckMeta:
    return CheckMeta(id=check_id, title=check_id, severity=Severity.WARN, kinds=kinds,
                     remediation="r", description="d", opt_in=opt_in)


def selected(only: list[str] = (), skip: list[str] = (), **config: Any) -> list[CheckMeta]:
    return [c.meta for c in engine.select_checks(only, skip, RunConfig(**config))]


# doctor.rbac itself

def test_rules_follow_the_collections_and_their_dependencies() -> None:
    rules = read_rules([meta("x", ("registry-logs", "persistentvolumes", "console-node-pods"))])
    by_resource = {(r.scope, r.api_group, r.resource): r.verbs for r in rules}
    # registry-logs reads pods/log of registry-pods, whose scope needs the workloads.
    assert by_resource[(NAMESPACE, "", "pods/log")] == ("get",)
    assert by_resource[(NAMESPACE, "", "pods")] == ("list",)
    assert by_resource[(NAMESPACE, "apps.openshift.io", "deploymentconfigs")] == ("list",)
    assert by_resource[(NAMESPACE, "", "persistentvolumeclaims")] == ("list",)
    # PVs are cluster-scoped and read by name; pods on the console's nodes in any namespace.
    assert by_resource[(CLUSTER, "", "persistentvolumes")] == ("get",)
    assert by_resource[(CLUSTER, "", "pods")] == ("list",)
    assert all(r.verbs in (("get",), ("list",)) for r in rules)


def test_verbs_merge_per_resource_and_openshift_groups_can_be_left_out() -> None:
    metas = [meta("a", ("endpoints",)), meta("b", ("configmaps", "routes"))]
    assert read_rules(metas) == [
        Rule(NAMESPACE, "", "configmaps", ("list",)),
        Rule(NAMESPACE, "", "endpoints", ("get",)),
        Rule(NAMESPACE, "route.openshift.io", "routes", ("list",)),
    ]
    assert Rule(NAMESPACE, "route.openshift.io", "routes", ("list",)) not in read_rules(
        metas, openshift=False)


def test_secrets_are_only_ever_read_in_the_registry_namespace() -> None:
    every_collection = meta("all", tuple(sorted(CATALOGUE) + sorted(LOG_COLLECTIONS)))
    secrets = [g for g in rbac.check_grants(every_collection) if g.resource == "secrets"]
    assert secrets == [Grant(NAMESPACE, "", "secrets", "get"),
                       Grant(NAMESPACE, "", "secrets", "list")]


def test_generated_chart_file_and_docs_table_are_current() -> None:
    assert rbac.main(["--check"]) == 0, "run python -m doctor.rbac"


# the catalogue's declared verbs against what the collector really asks for

class RecordingSource(DumpSource):
    """A dump source that remembers every query the collector makes."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.queries: list[tuple[Collection, Query]] = []

    def fetch(self, collection: Collection, query: Query, timeout: float) -> list[dict]:
        self.queries.append((collection, query))
        return super().fetch(collection, query, timeout)


@pytest.mark.parametrize("dump", [CLUSTERS / "healthy", CLUSTERS / "broken",
                                  REPO / "tests" / "fixtures" / "kubefake"],
                         ids=["healthy", "broken", "kubefake"])
def test_each_collection_queries_as_its_catalogue_entry_declares(dump: Path) -> None:
    source = RecordingSource(dump)
    collect(source, set(CATALOGUE), RunConfig(from_dir=dump))
    assert source.queries
    for collection, query in source.queries:
        verb = "get" if query.name else "list"
        assert verb == collection.verb, f"{collection.name}: {query}"
        across = collection.namespaced and query.namespace is None
        assert across == collection.all_namespaces, f"{collection.name}: {query}"
    seen = {c.name for c, _ in source.queries}
    if dump.name == "healthy":  # registry, console, claims: every scope yields a query
        assert seen == set(CATALOGUE), sorted(set(CATALOGUE) - seen)


# the rendered chart against doctor.rbac

SELECTIONS = {
    "default": ({}, selected(), True),
    "canary": ({"checks": {"optIn": {"canary": True}}}, selected(canary=True), True),
    "only": ({"checks": {"only": ["besteffort-qos"]}}, selected(["besteffort-qos"]), True),
    "skip": ({"checks": {"skip": ["besteffort-qos"], "optIn": {"canary": True}}},
             selected(skip=["besteffort-qos"], canary=True), True),
    "kubernetes": ({"openshift": False, "checks": {"optIn": {"canary": True}}},
                   selected(canary=True), False),
}


@pytest.mark.parametrize("name", SELECTIONS)
def test_rendered_roles_are_what_the_selected_checks_need(name: str, tmp_path: Path) -> None:
    values, metas, openshift = SELECTIONS[name]
    manifests = render(tmp_path, values)
    assert rendered_read_rules(manifests) == read_rules(metas, openshift)
    args = container_args(manifests, "Deployment")
    assert [a for a in args if a.startswith(("--check=", "--skip="))] == [
        *(f"--check={i}" for i in values.get("checks", {}).get("only", [])),
        *(f"--skip={i}" for i in values.get("checks", {}).get("skip", []))]


def copy_chart(tmp_path: Path, metas: list[CheckMeta]) -> Path:
    """The chart with files/read-access.yaml generated for `metas` instead of the real checks."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart, symlinks=False)
    (chart / "files" / "read-access.yaml").write_text(rbac.read_access_text(metas))
    return chart


SYNTHETIC = [
    meta("console-cert", ("console-pods", "secrets", "console-logs")),
    meta("port-owner", ("console-node-pods",)),
    meta("storage", ("persistentvolumes", "storageclasses", "configmaps", "secrets")),
    meta("oauth", ("oauthclients",)),
    meta("s3-write", ("secrets",), opt_in="s3_write_probe"),
]


@pytest.mark.parametrize("values, expected_ids, openshift", [
    ({}, ["console-cert", "port-owner", "storage", "oauth"], True),
    ({"openshift": False}, ["console-cert", "port-owner", "storage", "oauth"], False),
    ({"checks": {"optIn": {"s3_write_probe": True}}},
     ["console-cert", "port-owner", "storage", "oauth", "s3-write"], True),
    ({"rbac": {"readSecrets": False}, "checks": {"optIn": {"s3_write_probe": True}}},
     ["port-owner", "oauth"], True),
], ids=["default", "kubernetes", "opt-in", "no-secrets"])
def test_the_template_derives_rules_for_any_checks(values: dict[str, Any],
                                                   expected_ids: list[str], openshift: bool,
                                                   tmp_path: Path) -> None:
    manifests = render(tmp_path, values, chart=copy_chart(tmp_path, SYNTHETIC))
    expected = [m for m in SYNTHETIC if m.id in expected_ids]
    assert rendered_read_rules(manifests) == read_rules(expected, openshift)
    skipped = [a.removeprefix("--skip=") for a in container_args(manifests, "Deployment")
               if a.startswith("--skip=")]
    if values.get("rbac", {}).get("readSecrets") is False:
        # Skipped rather than left unknown (and alerting) for want of a permission.
        assert skipped == ["console-cert", "s3-write", "storage"]
    else:
        assert skipped == []
    roles = [m for m in manifests if m["kind"] in ("Role", "ClusterRole")]
    assert not [m for m in roles if m["kind"] == "ClusterRole"
                for r in m["rules"] if "secrets" in r["resources"]]


def test_roles_live_in_the_registry_namespace_and_bind_the_exporter(tmp_path: Path) -> None:
    chart = copy_chart(tmp_path, SYNTHETIC)
    manifests = render(tmp_path, {"registry": {"namespace": "openshift-registry"},
                                  "remediation": {"enabled": True}}, chart=chart)
    role = next(m for m in manifests if m["kind"] == "Role")
    binding = next(m for m in manifests if m["kind"] == "RoleBinding")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] \
        == "openshift-registry"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    cluster_binding = next(m for m in manifests if m["kind"] == "ClusterRoleBinding")
    for bound in (binding, cluster_binding):
        assert {(s["name"], s["namespace"]) for s in bound["subjects"]} == {
            ("rd-registry-doctor", "registry-doctor"),
            ("rd-registry-doctor-remediation", "registry-doctor")}


# the rendered chart against a live run's requests

def request_grant(record: Any, registry_namespace: str) -> Grant:
    parts = record.path.strip("/").split("/")
    group = "" if parts[0] == "api" else parts[1]
    scope = NAMESPACE if record.namespace == registry_namespace else CLUSTER
    assert record.namespace in (registry_namespace, None, ""), record.path
    return Grant(scope, group, record.resource, record.verb)


def allows(rules: list[Rule], grant: Grant) -> bool:
    return any((r.scope, r.api_group, r.resource) == (grant.scope, grant.api_group,
                                                      grant.resource) and grant.verb in r.verbs
               for r in rules)


def test_a_live_run_needs_every_granted_permission_and_no_other(fake_api: FakeFactory,
                                                                tmp_path: Path) -> None:
    api = fake_api(CLUSTERS / "healthy")
    config = RunConfig(kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"), probes=False,
                       canary=True)
    report = engine.run(config, engine.select_checks(config=config))
    assert {r.check for r in report.results} == set(all_checks())
    rules = rendered_read_rules(render(tmp_path, {"checks": {"optIn": {"canary": True}}}))
    used = {request_grant(r, "default") for r in api.requests if r.resource}
    assert [g for g in used if not allows(rules, g)] == [], "the chart would forbid these"
    unused = [r for r in rules if not any(allows([r], g) for g in used)]
    assert unused == [], "granted but never used"


def test_the_generated_file_lists_every_check_with_its_opt_in() -> None:
    document = yaml.safe_load(rbac.READ_ACCESS_FILE.read_text())
    assert document["checks"] == {i: {"optIn": c.meta.opt_in or ""}
                                  for i, c in all_checks().items()}
