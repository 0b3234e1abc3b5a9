"""The chart's read-only RBAC is derived from the checks' metadata (doctor/rbac.py): exactly the
verbs and resources the selected checks read, proven three ways: against doctor.rbac, against
the scopes the collector really queries, and against the requests of a live run. The remediation
CronJob's write roles likewise, from the fix planners: against doctor.rbac.write_rules, and
against the requests of applied fixes."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry_doctor.checks import all_checks
from registry_doctor.doctor import engine, rbac
from registry_doctor.doctor.config import CONSOLE_SECRETS, REGISTRY_SECRETS, RunConfig
from registry_doctor.doctor.fix import flow
from registry_doctor.doctor.fix.cluster import CRASH_ENV, CRASH_EXIT_CODE
from registry_doctor.doctor.fix.model import FixOptions
from registry_doctor.doctor.fix.permissions import permission_rows
from registry_doctor.doctor.kube import KubeClient
from registry_doctor.doctor.model import CheckMeta, Severity
from registry_doctor.doctor.rbac import CLUSTER, NAMESPACE, Grant, Rule, read_rules, write_rules
from registry_doctor.doctor.snapshot import collect
from registry_doctor.doctor.snapshot.dump import load_dump, write_dump
from registry_doctor.doctor.snapshot.kinds import CATALOGUE, LOG_COLLECTIONS, Collection, Query
from registry_doctor.doctor.snapshot.live import LiveSource
from registry_doctor.doctor.snapshot.offline import DumpSource
from tests.conftest import CLUSTERS, REPO
from tests.fixcluster import BROKEN, as_deployment, broken, expire_lock, on_nfs
from tests.helmchart import CHART, ON_KUBERNETES, container_args, render, rendered_rules
from tests.kubefake import FakeKubeAPI

FakeFactory = Callable[[Path], FakeKubeAPI]
Obj = dict[str, Any]


def meta(check_id: str, kinds: tuple[str, ...], opt_in: str | None = None) -> CheckMeta:
    return CheckMeta(id=check_id, title=check_id, severity=Severity.WARN, kinds=kinds,
                     remediation="r", description="d", opt_in=opt_in)


def selected(only: list[str] = (), skip: list[str] = (), **config: Any) -> list[CheckMeta]:
    return [c.meta for c in engine.select_checks(only, skip, RunConfig(**config))]


# doctor.rbac itself

def test_rules_follow_the_collections_and_their_dependencies() -> None:
    rules = read_rules([meta("x", ("registry-logs", "persistentvolumes", "console-node-pods"))],
                       config=RunConfig(node_pod_scan=True))
    by_resource = {(r.scope, r.api_group, r.resource): (r.verbs, r.names) for r in rules}
    assert len(by_resource) == len(rules)
    # registry-logs reads pods/log of registry-pods, whose scope needs the workloads, read by
    # the names configured (--registry, --console).
    assert by_resource[(NAMESPACE, "", "pods/log")] == (("get",), ())
    assert by_resource[(NAMESPACE, "", "pods")] == (("list",), ())
    assert by_resource[(NAMESPACE, "apps.openshift.io", "deploymentconfigs")] == (
        ("get",), ("docker-registry", "registry-console"))
    assert by_resource[(NAMESPACE, "", "persistentvolumeclaims")] == (("list",), ())
    # PVs are cluster-scoped and read by (generated) name; pods on the console's nodes in any
    # namespace.
    assert by_resource[(CLUSTER, "", "persistentvolumes")] == (("get",), ())
    assert by_resource[(CLUSTER, "", "pods")] == (("list",), ())
    assert all(r.verbs in (("get",), ("list",)) for r in rules)
    # Names follow the configuration.
    other = read_rules([meta("x", ("deployments",))], config=RunConfig(registry_name="r",
                                                                       console_name="c"))
    assert other == [Rule(NAMESPACE, "apps", "deployments", ("get",), ("c", "r"))]
    # No pod list across the cluster unless the node scan is on.
    assert (CLUSTER, "", "pods") not in {(r.scope, r.api_group, r.resource) for r in read_rules(
        [meta("x", ("console-node-pods",))])}


def test_verbs_merge_per_resource_and_openshift_groups_can_be_left_out() -> None:
    metas = [meta("a", ("endpoints",)), meta("b", ("configmaps", "routes"))]
    assert read_rules(metas) == [
        Rule(NAMESPACE, "", "configmaps", ("list",)),
        Rule(NAMESPACE, "", "endpoints", ("get",), ("docker-registry",)),
        Rule(NAMESPACE, "route.openshift.io", "routes", ("list",)),
    ]
    assert Rule(NAMESPACE, "route.openshift.io", "routes", ("list",)) not in read_rules(
        metas, openshift=False)


def test_secrets_are_only_ever_read_in_the_registry_namespace() -> None:
    every_collection = meta("all", tuple(sorted(CATALOGUE) + sorted(LOG_COLLECTIONS)))
    secrets = {g for g in rbac.check_grants(every_collection) if g.resource == "secrets"}
    # by name, never a list, and only the names configured (resourceNames)
    assert secrets == {Grant(NAMESPACE, "", "secrets", "get", (CONSOLE_SECRETS,)),
                       Grant(NAMESPACE, "", "secrets", "get", (REGISTRY_SECRETS,))}
    rules = read_rules([every_collection], config=RunConfig(registry_secrets=("a", "b"),
                                                            console_secrets=()))
    assert [r for r in rules if r.resource == "secrets"] == [
        Rule(NAMESPACE, "", "secrets", ("get",), ("a", "b"))]  # none for no console secret


def test_generated_chart_file_and_docs_table_are_current() -> None:
    assert rbac.main(["--check"]) == 0, "run python -m registry_doctor.doctor.rbac"


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
                                  REPO / "tests" / "fixtures" / "kubefake",
                                  CLUSTERS / "openshift4-healthy", CLUSTERS / "kubernetes-healthy"],
                         ids=["healthy", "broken", "kubefake", "openshift4-healthy",
                              "kubernetes-healthy"])
def test_each_collection_queries_as_its_catalogue_entry_declares(dump: Path) -> None:
    source = RecordingSource(dump)
    config = engine.settle(RunConfig(from_dir=dump, node_pod_scan=True, names_given=frozenset()),
                           source)
    collect(source, set(CATALOGUE), config, config.platform)
    assert source.queries
    for collection, query in source.queries:
        verb = "get" if query.name else "list"
        assert verb == collection.verb, f"{collection.name}: {query}"
        across = collection.namespaced and query.namespace is None
        assert across == collection.all_namespaces, f"{collection.name}: {query}"
    seen = {c.name for c, _ in source.queries}
    if dump.name == "healthy":  # registry, console, claims: every scope yields a query but
        # the one of a Deployment's ReplicaSets (the registry is a DeploymentConfig)
        expected = {n for n, c in CATALOGUE.items() if not c.platforms}  # 3.x's
        assert seen | {"registry-replicasets"} == expected, sorted(expected - seen)
    if dump.name in ("openshift4-healthy", "kubernetes-healthy"):  # and the platform's own
        platform = dump.name.removesuffix("-healthy")
        assert {n for n, c in CATALOGUE.items() if platform in c.platforms} <= seen


def healthy_as_deployment(folder: Path) -> Path:
    """The healthy cluster with its registry run by a Deployment, written as a dump."""
    dump = load_dump(CLUSTERS / "healthy")
    write_dump(folder, {"objects": as_deployment(dump.objects)}, dump.logs, True)
    return folder


def test_a_deployments_replica_sets_are_listed_by_its_own_selector() -> None:
    dump = CLUSTERS / "kubernetes-healthy"
    source = RecordingSource(dump)
    collect(source, {"registry-replicasets"}, RunConfig(from_dir=dump, namespace="registry"))
    assert [q for c, q in source.queries if c.name == "registry-replicasets"] == [
        Query(namespace="registry", label_selector="app=docker-registry,release=docker-registry")]


# the rendered chart against doctor.rbac

SELECTIONS = {
    "default": ({}, selected(), True),
    "canary": ({"checks": {"optIn": {"canary": True}}}, selected(canary=True), True),
    "only": ({"checks": {"only": ["besteffort-qos"]}}, selected(["besteffort-qos"]), True),
    "skip": ({"checks": {"skip": ["besteffort-qos"], "optIn": {"canary": True}}},
             selected(skip=["besteffort-qos"], canary=True), True),
    "kubernetes": ({**ON_KUBERNETES, "checks": {"optIn": {"canary": True}}},
                   selected(canary=True), False),
}


@pytest.mark.parametrize("name", SELECTIONS)
def test_rendered_roles_are_what_the_selected_checks_need(name: str, tmp_path: Path) -> None:
    values, metas, openshift = SELECTIONS[name]
    manifests = render(tmp_path, values)
    assert rendered_rules(manifests) == read_rules(metas, openshift)
    args = container_args(manifests, "Deployment")
    assert [a for a in args if a.startswith(("--check=", "--skip="))] == [
        *(f"--check={i}" for i in values.get("checks", {}).get("only", [])),
        *(f"--skip={i}" for i in values.get("checks", {}).get("skip", []))]


def test_pods_of_every_namespace_only_with_the_node_scan(tmp_path: Path) -> None:
    """cockpit-port-conflict's look at other pods on the console's nodes needs a cluster-wide
    pod list: granted, and run, only when the admin opts in."""
    cluster_pods = Rule(CLUSTER, "", "pods", ("list",))
    default = render(tmp_path, {})
    assert cluster_pods not in rendered_rules(default)
    assert "--node-pod-scan" not in container_args(default, "Deployment")
    scanning = render(tmp_path, {"checks": {"optIn": {"node_pod_scan": True}}})
    assert cluster_pods in rendered_rules(scanning)
    assert "--node-pod-scan" in container_args(scanning, "Deployment")


def copy_chart(tmp_path: Path, metas: list[CheckMeta]) -> Path:
    """The chart with files/read-access.yaml generated for `metas` instead of the real checks."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart, symlinks=False)
    (chart / "files" / "read-access.yaml").write_text(rbac.read_access_text(metas))
    return chart


SYNTHETIC = [
    meta("console-cert", ("console-pods", "console-secrets", "console-logs")),
    meta("port-owner", ("console-node-pods",)),
    meta("storage", ("persistentvolumes", "storageclasses", "configmaps", "registry-secrets")),
    meta("oauth", ("oauthclients",)),
    meta("s3-write", ("registry-secrets",), opt_in="s3_write_probe"),
]


@pytest.mark.parametrize("values, expected_ids, openshift", [
    ({}, ["console-cert", "port-owner", "storage", "oauth"], True),
    (ON_KUBERNETES, ["console-cert", "port-owner", "storage", "oauth"], False),
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
    assert rendered_rules(manifests) == read_rules(expected, openshift)
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
    """What a request asked, with the object it named (as `names`) if any."""
    parts = record.path.strip("/").split("/")
    group = "" if parts[0] == "api" else parts[1]
    scope = NAMESPACE if record.namespace == registry_namespace else CLUSTER
    assert record.namespace in (registry_namespace, None, ""), record.path
    return Grant(scope, group, record.resource, record.verb,
                 (record.name,) if record.name else ())


def allows(rules: list[Rule], grant: Grant) -> bool:
    """RBAC's answer: a rule with names allows only a request naming one of them."""
    return any((r.scope, r.api_group, r.resource) == (grant.scope, grant.api_group,
                                                      grant.resource) and grant.verb in r.verbs
               and (not r.names or set(grant.names) & set(r.names)) for r in rules)


# Grants a run on the OpenShift 4 fixture does not use, for want of the objects they read:
# its S3 store has no claim (so no PersistentVolume or StorageClass), and a Deployment has no
# ReplicationControllers (a DeploymentConfig's registry would).
UNUSED_ON_OPENSHIFT4 = [Rule(CLUSTER, "", "persistentvolumes", ("get",)),
                        Rule(CLUSTER, "storage.k8s.io", "storageclasses", ("get",)),
                        Rule(NAMESPACE, "", "replicationcontrollers", ("list",))]
# The chart's values naming the twuni chart's registry; its Secret holds REGISTRY_HTTP_SECRET
# and the S3 keys, granted by name like any other.
# On plain Kubernetes the registry is a Deployment: no ReplicationControllers to list.
UNUSED_ON_KUBERNETES = [Rule(NAMESPACE, "", "replicationcontrollers", ("list",))]
ON_KUBERNETES_VALUES = {"registry": {"namespace": "registry", "name": "docker-registry",
                                     "secrets": ["docker-registry-secret"]}}


@pytest.mark.parametrize(("dumps", "platform", "kube_profile", "values", "unused_expected"), [
    # A registry run by a DeploymentConfig and one run by a Deployment (its ReplicaSets) on 3.x.
    ((CLUSTERS / "healthy", None), "openshift3", "openshift-3.11", {}, []),
    ((CLUSTERS / "openshift4-healthy",), "openshift4", "openshift-4.14", {},
     UNUSED_ON_OPENSHIFT4),
    ((CLUSTERS / "kubernetes-healthy",), "kubernetes", "kubernetes-1.33", ON_KUBERNETES_VALUES,
     UNUSED_ON_KUBERNETES)], ids=["openshift3", "openshift4", "kubernetes"])
def test_a_live_run_needs_every_granted_permission_and_no_other(
        fake_api: FakeFactory, tmp_path: Path, dumps: tuple[Path | None, ...], platform: str,
        values: dict[str, Any], unused_expected: list[Rule]) -> None:
    manifests = render(tmp_path, {**values, "platform": platform,
                                  "checks": {"optIn": {"canary": True, "node_pod_scan": True}}})
    registry = values.get("registry", {})
    given = {k: registry[v] for k, v in (("namespace", "namespace"), ("registry_name", "name"))
             if v in registry}
    used: set[Grant] = set()
    for index, dump in enumerate(dumps):
        api = fake_api(dump or healthy_as_deployment(tmp_path / "deployment"))
        config = RunConfig(kubeconfig=api.write_kubeconfig(tmp_path / f"kubeconfig-{index}"),
                           probes=False, canary=True, node_pod_scan=True, platform=platform,
                           names_given=frozenset(given), **given,
                           registry_secrets=tuple(registry.get("secrets",
                                                               RunConfig.registry_secrets)))
        namespace = engine.settle(config, LiveSource(KubeClient(config.kubeconfig))).namespace
        api.restrict_to(manifests, "registry-doctor", "rd-registry-doctor")  # the exporter's
        report = engine.run(config, engine.select_checks(config=config))
        assert report.source["platform"] == platform
        assert {r.check for r in report.results} == set(all_checks())
        assert [r.path for r in api.requests if r.status == 403] == []
        used |= {request_grant(r, namespace) for r in api.requests if r.resource}
    rules = rendered_rules(manifests)
    assert [g for g in used if not allows(rules, g)] == [], "the chart would forbid these"
    unused = [r for r in rules if not any(allows([r], g) for g in used)]
    assert unused == unused_expected, "granted but never used"


def test_the_generated_file_lists_every_check_with_its_opt_in() -> None:
    document = yaml.safe_load(rbac.READ_ACCESS_FILE.read_text())
    assert document["checks"] == {i: {"optIn": c.meta.opt_in or "",
                                      "platforms": list(c.meta.platforms)}
                                  for i, c in all_checks().items()}


# the remediation CronJob's write roles against doctor.rbac

ROWS = permission_rows(list(all_checks().values()))
SECRET_READERS = sorted({i for g, ids in rbac.grants_by_check(selected()).items()
                         if g.resource == "secrets" for i in ids})


def fixing(values: dict[str, Any]) -> dict[str, Any]:
    return {**values, "remediation": {"enabled": True, **values.get("remediation", {})}}


WRITE_SELECTIONS = {  # name -> (values, the checks the CronJob runs, openshift, disruptive)
    "default": ({}, selected(), True, False),
    "disruptive": ({"remediation": {"allowDisruptive": True}}, selected(), True, True),
    "kubernetes": ({**ON_KUBERNETES, "remediation": {"allowDisruptive": True}},
                   [m for m in selected() if not m.platforms], False, True),
    "only": ({"checks": {"only": ["besteffort-qos"]}}, selected(["besteffort-qos"]), True,
             False),
    "skip": ({"checks": {"skip": ["oauth-redirect", "nfs-scaling"]}},
             selected(skip=["oauth-redirect", "nfs-scaling"]), True, False),
    "no-secrets": ({"rbac": {"readSecrets": False}}, selected(skip=SECRET_READERS), True, False),
    "nothing-to-fix": ({"checks": {"only": ["registry-config"]}}, selected(["registry-config"]),
                       True, True),
}


@pytest.mark.parametrize("name", WRITE_SELECTIONS)
def test_rendered_write_roles_are_what_the_cronjobs_fixes_need(name: str,
                                                                tmp_path: Path) -> None:
    values, metas, openshift, disruptive = WRITE_SELECTIONS[name]
    expected = write_rules(ROWS, [m.id for m in metas], openshift, disruptive)
    assert (expected == []) == (name == "nothing-to-fix")  # registry-config has no fix
    assert rendered_rules(render(tmp_path, fixing(values)), "write") == expected


def test_write_rules_follow_the_toggles() -> None:
    ids = [m.id for m in selected()]
    claims = Rule(NAMESPACE, "", "persistentvolumeclaims", ("create", "get"))
    oauth = Rule(CLUSTER, "oauth.openshift.io", "oauthclients", ("get", "patch"),
                 ("cockpit-oauth-client",))
    assert claims not in write_rules(ROWS, ids) and claims in write_rules(ROWS, ids,
                                                                           disruptive=True)
    assert oauth in write_rules(ROWS, ids)
    plain = write_rules(ROWS, ids, openshift=False, disruptive=True)
    assert not [r for r in plain if r.resource in ("replicationcontrollers", "oauthclients")
                or r.api_group.endswith(".openshift.io")]
    # No write the read roles already let the exporter do, and no Secret outside the namespace.
    assert not [r for r in write_rules(ROWS, ids, disruptive=True)
                if r.resource == "secrets" and r.scope == CLUSTER]


@pytest.mark.parametrize("values", [{}, {"remediation": {"allowDisruptive": True}},
                                    fixing({"rbac": {"create": False}})],
                         ids=["cronjob-off", "cronjob-off-disruptive", "rbac-off"])
def test_nothing_writes_unless_the_cronjob_runs(values: dict[str, Any], tmp_path: Path) -> None:
    manifests = render(tmp_path, values)
    assert not [m for m in manifests if m["metadata"]["name"].endswith("-write")]
    assert "rd-registry-doctor-remediation" not in yaml.safe_dump(
        [m for m in manifests if m["kind"].endswith("Binding")])


def test_write_roles_bind_only_the_cronjobs_account(tmp_path: Path) -> None:
    manifests = render(tmp_path, fixing({"registry": {"namespace": "openshift-registry"}}))
    role = next(m for m in manifests if m["kind"] == "Role" and
                m["metadata"]["name"].endswith("-write"))
    assert role["metadata"]["namespace"] == "openshift-registry"
    bindings = [m for m in manifests if m["kind"].endswith("Binding")
                and m["metadata"]["name"].endswith("-write")]
    assert sorted(b["kind"] for b in bindings) == ["ClusterRoleBinding", "RoleBinding"]
    for binding in bindings:
        assert binding["roleRef"]["name"] == binding["metadata"]["name"]
        assert binding["subjects"] == [{"kind": "ServiceAccount",
                                        "name": "rd-registry-doctor-remediation",
                                        "namespace": "registry-doctor"}]


def test_planners_read_only_what_their_checks_are_granted() -> None:
    """The fix flow collects the planners' `reads` too, with the CronJob's read roles."""
    for check in all_checks().values():
        if check.plan is not None:
            reads = {rbac.collection_grant(n) for n in rbac.closure(set(check.plan.reads))}
            assert reads <= rbac.check_grants(check.meta), check.meta.id


# the rendered write roles against the requests of applied fixes

DISRUPTIVE = {"allow_disruptive": True, "claim_size": "5Gi"}
CONSOLE_HOST = "console.apps.example.com"  # the broken example's console route
FIX_RUNS = {  # name -> (objects, checks (empty: the chart's default set), fix options,
    #                     the fake deployer's rollout outcomes, kill an earlier run after N writes)
    # Every check's fix on the bundled broken cluster, disruptive ones included.
    "broken-example": (lambda: load_dump(BROKEN).objects, [], DISRUPTIVE, [], None),
    "deployment": (lambda: as_deployment(broken()), ["besteffort-qos"], {}, [], None),
    "daemonset": (lambda: as_deployment(broken(), "DaemonSet"), ["besteffort-qos"], {}, [],
                  None),
    "shared-nfs": (lambda: on_nfs(broken()), ["nfs-scaling"], {}, [], None),
    # A rollout that never finishes is cancelled (replicationcontrollers patch).
    "timeout": (broken, ["besteffort-qos"], {"rollout_timeout": 0.3}, ["Running"], None),
    # A run killed mid-way is finished by the next, which looks at what it wrote.
    "killed-claim": (broken, ["ephemeral-storage"], DISRUPTIVE, [], 3),
    "killed-affinity": (lambda: on_nfs(broken()), ["nfs-scaling"], {}, [], 3),
}


def killed_run(kubeconfig: Path, checks: list[str], options: dict[str, Any], writes: int
               ) -> None:
    """`check --fix --yes` with these options, killed right after its `writes`th write."""
    flags = [f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}")
             for k, v in options.items()]
    done = subprocess.run(
        [sys.executable, "-m", "registry_doctor.doctor.cli",
         "check", "--kubeconfig", str(kubeconfig),
         "--no-probes", *(f"--check={c}" for c in checks), "--fix", "--yes", *flags],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env={**os.environ, CRASH_ENV: str(writes)})
    assert done.returncode == CRASH_EXIT_CODE, done.stderr


def fix_requests(fake_cluster: Callable[[list[Obj]], tuple[FakeKubeAPI, Path]], name: str,
                 manifests: list[Obj]) -> set[Grant]:
    """What an applied `check --fix --yes` run asked the API server, as grants, the server
    authorizing as RBAC would for the CronJob's account of the rendered chart."""
    objects, only, options, outcomes, kill_after = FIX_RUNS[name]
    api, kubeconfig = fake_cluster(objects())
    api.restrict_to(manifests, "registry-doctor", "rd-registry-doctor-remediation")
    api.deployer.outcomes = outcomes
    if kill_after:
        killed_run(kubeconfig, only, options, kill_after)
        expire_lock(api)
    config = RunConfig(kubeconfig=kubeconfig, probes=False, console_hosts=(CONSOLE_HOST,))
    checks = engine.select_checks(only, config=config)
    report = flow.fix(config, FixOptions(apply=True, poll_seconds=0.05, **options), checks,
                      lambda line: None)
    assert report.fix["writes"] > 0, report.fix
    assert bool(report.fix["recovered"]) == bool(kill_after), report.fix
    denied = [a for r in report.results if r.remediation for a in r.remediation.actions
              if a["state"] == "denied"]
    assert denied == []
    assert [r.path for r in api.requests if r.status == 403] == [], name
    return {request_grant(r, "default") for r in api.requests if r.resource}


def test_applied_fixes_need_every_granted_write_and_no_other(fake_cluster: Any,
                                                            tmp_path: Path) -> None:
    manifests = render(tmp_path, fixing({"remediation": {"allowDisruptive": True},
                                         "registry": {"consoleHosts": [CONSOLE_HOST]}}))
    reads, writes = rendered_rules(manifests), rendered_rules(manifests, "write")
    used: set[Grant] = set()
    for name in FIX_RUNS:
        requests = fix_requests(fake_cluster, name, manifests)
        assert [g for g in requests if not allows(reads + writes, g)] == [], name
        used |= requests
    with contextlib.ExitStack() as running:  # the Lease lock of a server that has them
        def kubernetes(objects: list[Obj]) -> tuple[FakeKubeAPI, Path]:
            api = running.enter_context(FakeKubeAPI(objects, api_profile="kubernetes-1.33"))
            return api, api.write_kubeconfig(tmp_path / "kubeconfig-kubernetes")

        requests = fix_requests(kubernetes, "deployment", manifests)
        assert [g for g in requests if not allows(reads + writes, g)] == [], "kubernetes"
        used |= requests
    missing = [f"{r} {verb}" for r in writes for verb in r.verbs
               if not any(allows([r], g) for g in used if g.verb == verb)]
    assert missing == [], f"granted for writing but never used: {missing}"


def test_platform_openshift4_watches_the_operators_registry_with_its_reads(
        tmp_path: Path) -> None:
    """The chart's `platform` names the operator's registry and grants what the checks of
    OpenShift 4 read (the operator's singletons by name), not the console's."""
    manifests = render(tmp_path, {"platform": "openshift4"})
    args = container_args(manifests, "Deployment")
    assert {"--platform=openshift4", "--namespace=openshift-image-registry",
            "--registry=image-registry"} <= set(args)
    assert not [a for a in args if a.startswith("--console=")]
    config = RunConfig(platform="openshift4", namespace="openshift-image-registry",
                       registry_name="image-registry", console_name="",
                       registry_secrets=("image-registry-private-configuration",
                                         "image-registry-tls"), console_secrets=())
    rules = rendered_rules(manifests)
    assert rules == read_rules(selected(), True, config)
    assert Rule(CLUSTER, "imageregistry.operator.openshift.io", "configs", ("get",),
                ("cluster",)) in rules
    assert not [r for r in rules if r.api_group == "oauth.openshift.io"]
