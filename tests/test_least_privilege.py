"""Least privilege, proven against the fake API enforcing the rendered chart's RBAC: a full
check and every fix pass under the roles the chart binds; attempts to steer a fix elsewhere
(a DeploymentConfig's env naming another OAuthClient, a Route's host, a pod template naming
another Secret) are refused, with or without that RBAC; backups hold no client secret."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.fix import flow
from registry_doctor.doctor.fix.journal import SECRET_NAME
from registry_doctor.doctor.fix.model import Action, FixOptions, ObjectRef
from registry_doctor.doctor.fix.plan import PlanContext, planner
from registry_doctor.doctor.fix.scope import confine
from registry_doctor.doctor.model import Report, Status
from registry_doctor.doctor.snapshot.dump import load_dump
from tests.conftest import REPO
from tests.fixcluster import BROKEN, edited, stand_in
from tests.helmchart import RELEASE, RELEASE_NAMESPACE, container_args, render, rendered_rules
from tests.kubefake import FakeKubeAPI
from tests.kubefake.rbac import Attributes, PolicyRule

Obj = dict[str, Any]
Start = Callable[[list[Obj]], tuple[FakeKubeAPI, Path]]
CONSOLE_HOST = "console.apps.example.com"  # the broken example's console route
EXPORTER = f"{RELEASE}-registry-doctor"
CRONJOB = f"{RELEASE}-registry-doctor-remediation"
VALUES = {"remediation": {"enabled": True, "allowDisruptive": True},
          "registry": {"consoleHosts": [CONSOLE_HOST]}}
CLIENT_SECRET = "user8AhrQHqDybFVuZ9MpxfJkWzkzS1tLNH7oQnDsgCdJ9nW3pcTXcTs6aRUj4"
WEB_CONSOLE_CLIENT = {
    "apiVersion": "oauth.openshift.io/v1", "kind": "OAuthClient",
    "metadata": {"name": "openshift-web-console"},
    "redirectURIs": ["https://master.example.com:8443/console/"],
    "secret": "web-console-client-secret", "grantMethod": "auto"}


def broken() -> list[Obj]:
    """The broken example, with the other OAuthClient a 3.11 master has, and a client
    secret on the console's."""
    objects = load_dump(BROKEN).objects
    for obj in objects:
        if obj["kind"] == "OAuthClient":
            obj["secret"] = CLIENT_SECRET
    return [*objects, WEB_CONSOLE_CLIENT]


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> list[Obj]:
    return render(tmp_path_factory.mktemp("helm"), VALUES)


def as_account(fake_cluster: Start, objects: list[Obj], manifests: list[Obj],
               account: str) -> tuple[FakeKubeAPI, RunConfig]:
    """A fake serving `objects` that authorizes as RBAC would for the chart's `account`, and
    the run settings the chart gives that account."""
    api, kubeconfig = fake_cluster(objects)
    api.restrict_to(manifests, RELEASE_NAMESPACE, account)
    return api, RunConfig(kubeconfig=kubeconfig, probes=False, console_hosts=(CONSOLE_HOST,))


def fix(config: RunConfig, **options: Any) -> Report:
    settings = {"apply": True, "poll_seconds": 0.05, "allow_disruptive": True,
                "claim_size": "5Gi", **options}
    return flow.fix(config, FixOptions(**settings), engine.select_checks(config=config),
                    lambda line: None)


def actions(report: Report) -> dict[str, Obj]:
    return {a["id"]: a for r in report.results if r.remediation for a in r.remediation.actions}


def forbidden(api: FakeKubeAPI) -> list[str]:
    return [f"{r.verb} {r.path}" for r in api.requests if r.status == 403]


# the chart's roles are enough

def test_the_exporter_runs_every_check_with_the_charts_read_roles(fake_cluster: Start,
                                                                 chart: list[Obj]) -> None:
    api, config = as_account(fake_cluster, broken(), chart, EXPORTER)
    report = engine.run(config, engine.select_checks(config=config))
    assert forbidden(api) == []
    assert not [r.check for r in report.results if r.status is Status.UNKNOWN]


def test_every_fix_applies_with_the_charts_write_roles(fake_cluster: Start,
                                                       chart: list[Obj]) -> None:
    api, config = as_account(fake_cluster, broken(), chart, CRONJOB)
    report = fix(config)
    planned = actions(report)
    assert not [i for i, a in planned.items() if a["state"] == "denied"]
    assert forbidden(api) == []
    units = {tuple(u["checks"]): u["state"] for u in report.fix["units"]}
    # cert-chain-order's reorder holds though the certificate still names another host: it is
    # verified on the findings it targets.
    assert units == {("besteffort-qos", "ephemeral-storage", "nfs-scaling"): "verified",
                     ("cert-chain-order",): "verified", ("oauth-redirect",): "verified"}
    client = api.get_object("oauthclients", None, "cockpit-oauth-client")
    assert f"https://{CONSOLE_HOST}" in client["redirectURIs"]


def test_backups_hold_no_client_secret(fake_cluster: Start, chart: list[Obj]) -> None:
    api, config = as_account(fake_cluster, broken(), chart, CRONJOB)
    fix(config, only=("oauth-redirect",))
    journal = api.get_object("secrets", "default", SECRET_NAME)
    runs = [json.loads(base64.b64decode(v)) for v in journal["data"].values()]
    [write] = [w for run in runs for u in run["units"] for w in u["writes"]
               if w["object"]["kind"] == "OAuthClient"]
    assert write["backup"]["redirectURIs"]  # a backup still, for a person to read
    assert CLIENT_SECRET not in json.dumps(runs)


# what the chart does not grant

def test_the_chart_names_every_object_it_can(chart: list[Obj]) -> None:
    rules = [(m["kind"], r) for m in chart if m["kind"] in ("Role", "ClusterRole")
             for r in m["rules"]]
    unnamed = {(kind, r["resources"][0], verb) for kind, r in rules for verb in r["verbs"]
               if not r.get("resourceNames")}
    # Secrets: get only by name; a create cannot be restricted by name (the journal's first).
    assert {u for u in unnamed if u[1] == "secrets"} == {("Role", "secrets", "create")}
    assert not [u for u in unnamed if u[1] in ("oauthclients", "deploymentconfigs",
                                              "deployments", "daemonsets", "services",
                                              "deploymentconfigs/instantiate", "endpoints")]
    assert not [u for u in unnamed if u[0] == "ClusterRole" and u[1] == "pods"]


def test_an_unlisted_secret_is_forbidden_and_named(fake_cluster: Start,
                                                   chart: list[Obj]) -> None:
    """A pod template naming a Secret the values do not list: the read is refused, and the
    checks that need it say which Secret was forbidden."""
    objects = edited(broken(), "DeploymentConfig", "registry-console", _mount("router-certs"))
    api, config = as_account(fake_cluster, objects, chart, EXPORTER)
    report = engine.run(config, engine.select_checks(["cert-chain-order"], config=config))
    assert forbidden(api) == ["get /api/v1/namespaces/default/secrets/router-certs"]
    result = report.result("cert-chain-order")
    assert result.status is Status.UNKNOWN
    assert "router-certs" in result.summary and "forbidden" in result.summary
    assert "registry.consoleSecrets" in result.summary  # where to list it


# attempts to steer a fix elsewhere

def _client_env(name: str) -> Callable[[Obj], None]:
    def change(dc: Obj) -> None:
        for entry in dc["spec"]["template"]["spec"]["containers"][0]["env"]:
            if entry["name"] == "OPENSHIFT_OAUTH_CLIENT_ID":
                entry["value"] = name
    return change


def _route_host(host: str) -> Callable[[Obj], None]:
    def change(route: Obj) -> None:
        route["spec"]["host"] = host
    return change


def _mount(secret: str) -> Callable[[Obj], None]:
    def change(dc: Obj) -> None:
        for volume in dc["spec"]["template"]["spec"]["volumes"]:
            if "secret" in volume:
                volume["secret"]["secretName"] = secret
    return change


def _router_certs(objects: list[Obj]) -> list[Obj]:
    """The console's certificate volume pointed at the router's Secret, holding the same
    misordered chain."""
    source = next(o for o in objects if o["kind"] == "Secret"
                  and o["metadata"]["name"] == "console-secret")
    router = {**source, "metadata": {"name": "router-certs", "namespace": "default"}}
    return [*edited(objects, "DeploymentConfig", "registry-console", _mount("router-certs")),
            router]


ATTEMPTS = {  # name -> (change to the cluster, the refused action, words of the refusal)
    "env-names-another-client": (
        lambda o: edited(o, "DeploymentConfig", "registry-console",
                         _client_env("openshift-web-console")),
        "oauth-redirect/add-redirect-uri",
        ["oauthclient/openshift-web-console", "--console-oauth-client",
         "OPENSHIFT_OAUTH_CLIENT_ID of dc/registry-console"]),
    "route-host-changed": (
        lambda o: edited(o, "Route", "registry-console", _route_host("evil.example.net")),
        "oauth-redirect/add-redirect-uri",
        ["host evil.example.net is not a configured console host", "--console-host",
         "route/registry-console"]),
    "template-mounts-the-routers-secret": (
        _router_certs, "cert-chain-order/reorder-chain",
        ["secret/router-certs in default", "--console-secret",
         "the volume mounted at /etc/cockpit/ws-certs.d in dc/registry-console"]),
}


@pytest.mark.parametrize("rbac", ["chart", "cluster-admin"])
@pytest.mark.parametrize("attempt", ATTEMPTS)
def test_a_fix_steered_outside_its_objects_is_refused(attempt: str, rbac: str,
                                                      fake_cluster: Start,
                                                      chart: list[Obj]) -> None:
    """With the chart's roles the RBAC refuses too; run by an admin (every permission) the
    guard alone stands between the namespace's editors and the other objects."""
    change, refused, words = ATTEMPTS[attempt]
    objects = change(broken())
    if rbac == "chart":
        api, config = as_account(fake_cluster, objects, chart, CRONJOB)
    else:
        api, kubeconfig = fake_cluster(objects)
        config = RunConfig(kubeconfig=kubeconfig, probes=False, console_hosts=(CONSOLE_HOST,))
    before = {(o["kind"], o["metadata"]["name"]): o for o in api.objects()}
    report = fix(config, only=(refused.partition("/")[0],))
    untouched = [("OAuthClient", "openshift-web-console"), ("OAuthClient", "cockpit-oauth-client"),
                 ("Secret", "router-certs")]
    for key in untouched:
        if key in before:
            after = api.get_object(f"{key[0].lower()}s", None if key[0] == "OAuthClient"
                                   else "default", key[1])
            assert after["metadata"]["resourceVersion"] == \
                before[key]["metadata"]["resourceVersion"], key
    planned = actions(report)
    if rbac == "chart" and attempt == "template-mounts-the-routers-secret":
        # Not even read: the check cannot judge a Secret it may not get.
        assert report.result("cert-chain-order").status is Status.UNKNOWN
        assert refused not in planned
        return
    action = planned[refused]
    assert action["state"] == "denied" and action["message"].startswith("refused: ")
    for word in words:
        assert word in action["message"], action["message"]
    outside = {"openshift-web-console", "router-certs", "evil.example.net"}
    assert not [r for r in api.requests if r.method != "GET" and r.name in outside]
    # Another OAuthClient is not even read: it holds a client secret.
    assert not [r for r in api.requests if r.name == "openshift-web-console"]


def test_the_guard_refuses_any_planner_reaching_outside(tmp_path: Path) -> None:
    """Central, not per planner: whatever a planner proposes on an object outside the set is
    refused before preflight; the objects of the set pass."""
    router = {"apiVersion": "apps.openshift.io/v1", "kind": "DeploymentConfig",
              "metadata": {"name": "router", "namespace": "default", "resourceVersion": "1"},
              "spec": {"replicas": 1}}
    registry = {**router, "metadata": {**router["metadata"], "name": "docker-registry"}}
    elsewhere = {**registry, "metadata": {**registry["metadata"], "namespace": "other"}}

    @planner()
    def reach(ctx: PlanContext) -> list[Action]:
        return [ctx.patch(obj, {**obj, "spec": {"replicas": 2}}, f"scale-{index}", "scale")
                for index, obj in enumerate((router, registry, elsewhere))]

    check = stand_in("reach", ("deploymentconfigs",), reach, lambda ctx: "broken")
    config = RunConfig(from_dir=tmp_path)
    planned = confine(reach(PlanContext(_snapshot(config), config, FixOptions(),
                                        _failing("reach"))), config, FixOptions())
    assert check.plan is reach
    states = [(a.target.name, a.target.namespace, a.state) for a in planned]
    assert states == [("router", "default", "denied"), ("docker-registry", "default", "planned"),
                      ("docker-registry", "other", "denied")]
    assert "dc/router in default is not one of the objects registry-doctor manages" in \
        planned[0].message and "--registry" in planned[0].message
    assert "outside the registry's namespace default" in planned[2].message
    assert ObjectRef.of(router).short == "dc/router"


def test_the_guard_lets_a_fix_only_add_redirect_uris_of_configured_hosts(tmp_path: Path) -> None:
    client = {"apiVersion": "oauth.openshift.io/v1", "kind": "OAuthClient",
              "metadata": {"name": "cockpit-oauth-client", "resourceVersion": "1"},
              "redirectURIs": ["https://old.apps.example.com"]}
    console = f"https://{CONSOLE_HOST}"

    @planner()
    def redirect(ctx: PlanContext) -> list[Action]:
        return [ctx.patch(client, {**client, "redirectURIs": uris}, f"uris-{index}", "uris")
                for index, uris in enumerate((
                    ["https://old.apps.example.com", console],  # adds the console: allowed
                    [console],  # drops another client's URI
                    ["https://old.apps.example.com", "https://evil.example.net"]))]

    config = RunConfig(from_dir=tmp_path, console_hosts=(CONSOLE_HOST,))
    planned = confine(redirect(PlanContext(_snapshot(config), config, FixOptions(),
                                           _failing("oauth-redirect"))), config, FixOptions())
    assert [a.state for a in planned] == ["planned", "denied", "denied"]
    assert "would remove https://old.apps.example.com" in planned[1].message
    assert "evil.example.net is not a configured console host" in planned[2].message


def _snapshot(config: RunConfig) -> Any:
    from registry_doctor.doctor.snapshot import Snapshot

    return Snapshot(config, {}, {})


def _failing(check: str) -> Any:
    from registry_doctor.doctor.model import Result

    return Result(check, check, Status.CRIT, "broken")


# the fake's RBAC, as Kubernetes decides

def test_resource_names_restrict_as_kubernetes_rbac_does() -> None:
    """plugin/pkg/auth/authorizer/rbac: a rule with resourceNames allows only requests naming
    one of them; a create (no name yet) or a list without a metadata.name field selector names
    none; a RoleBinding's rules apply in its namespace only."""
    named = PolicyRule(("",), ("secrets",), ("get", "list", "create"), ("a",), "default")
    anything = PolicyRule(("",), ("pods", "*/log"), ("list", "get"), (), None)
    assert named.allows(Attributes("", "secrets", "get", "default", "a"))
    assert not named.allows(Attributes("", "secrets", "get", "default", "b"))
    assert not named.allows(Attributes("", "secrets", "get", "other", "a"))
    assert not named.allows(Attributes("", "secrets", "create", "default"))
    assert not named.allows(Attributes.of("", "secrets", "list", "default", "", {}))
    assert named.allows(Attributes.of("", "secrets", "list", "default", "",
                                      {"fieldSelector": "metadata.name=a"}))
    assert not named.allows(Attributes.of("", "secrets", "list", "default", "",
                                          {"fieldSelector": "metadata.name!=b"}))
    assert anything.allows(Attributes("", "pods", "list", ""))  # a ClusterRoleBinding's
    assert anything.allows(Attributes("", "pods/log", "get", "kube-system", "p"))
    assert not anything.allows(Attributes("apps", "pods", "list", ""))


def test_a_journal_naming_other_objects_is_refused(fake_cluster: Start) -> None:
    """The journal is a Secret in the registry namespace: an unfinished unit planted there,
    whose undo would add a host to openshift-web-console, is marked failed, not recovered."""
    from registry_doctor.doctor.fix.journal import RunRecord, UnitRecord, WriteRecord
    from registry_doctor.doctor.fix.patch import Change

    uris = WEB_CONSOLE_CLIENT["redirectURIs"]
    target = ObjectRef.of(WEB_CONSOLE_CLIENT)
    # "Already written" (the client holds `new`): recovery would verify, then undo it.
    write = WriteRecord(target, "patch", ["oauth-redirect/add-redirect-uri"],
                        [Change(("redirectURIs",), [*uris, "https://evil.example.net"], uris)])
    planted = RunRecord("20260101T000000Z-abcdef", "someone", "2026-01-01T00:00:00Z", [
        UnitRecord(["oauth-redirect"], {"oauth-redirect": "crit"}, [], [write])])
    journal = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": SECRET_NAME, "namespace": "default"},
               "data": {f"{planted.run}.json": base64.b64encode(
                   json.dumps(planted.to_json()).encode()).decode()}}
    api, kubeconfig = fake_cluster([*broken(), journal])
    config = RunConfig(kubeconfig=kubeconfig, probes=False, console_hosts=(CONSOLE_HOST,))
    report = fix(config, only=("besteffort-qos",))
    assert report.fix["recovered"] == []
    assert api.get_object("oauthclients", None, "openshift-web-console")["redirectURIs"] == uris
    assert not [r for r in api.requests if r.method != "GET"
                and r.name == "openshift-web-console"]
    stored = json.loads(base64.b64decode(
        api.get_object("secrets", "default", SECRET_NAME)["data"][f"{planted.run}.json"]))
    [unit] = stored["units"]
    assert unit["state"] == "failed"
    assert unit["message"].startswith("refused: oauthclient/openshift-web-console")


def test_the_cronjob_is_given_the_names_the_values_give(tmp_path: Path) -> None:
    """Values to flags: an empty list is passed as `--<flag>=` (none), never left to the
    tool's defaults, and then no Role grants any Secret of that kind either."""
    manifests = render(tmp_path, {"remediation": {"enabled": True}, "registry": {
        "consoleHosts": ["console.example.org"], "consoleSecrets": [],
        "consoleOAuthClient": "my-console-client"}})
    args = container_args(manifests, "CronJob")
    assert {"--console-host=console.example.org", "--console-secret=",
            "--console-oauth-client=my-console-client"} <= set(args)
    assert [a for a in args if a.startswith("--registry-secret=")] == [
        f"--registry-secret={n}" for n in RunConfig().registry_secrets]
    assert "--console-oauth-client=my-console-client" in container_args(manifests, "Deployment")
    writes = rendered_rules(manifests, "write")
    assert not [r for r in writes if r.resource == "secrets" and "patch" in r.verbs]
    flags = [a for a in args if a.startswith(("--console-", "--registry-secret"))]
    done = subprocess.run([sys.executable, "-m", "registry_doctor.doctor.cli",
                           "check", "--from-dir",
                           str(BROKEN), "-c", "cert-chain-order", "--fix", "-o", "json",
                           *flags], capture_output=True, text=True, cwd=REPO, timeout=120)
    [result] = json.loads(done.stdout)["results"]
    [action] = result["remediation"]["actions"]
    assert action["state"] == "denied", action
    assert "secret/console-secret in default is not one of the objects" in action["message"]
    assert "Secret none (--console-secret" in action["message"]
