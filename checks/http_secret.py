"""http-secret: every registry replica signs upload state with the same `http.secret`.

distribution/distribution `docs/content/about/configuration.md` (http.secret): "If you are
building a cluster of registries behind a load balancer, you MUST ensure the secret is the same
for all registries." A registry with none generates a random one at start (registry/handlers
`app.go`: "No HTTP secret provided - generated random secret"), so an upload begun on one
replica and continued on another fails with "blob upload unknown". The twuni/docker-registry
chart (`templates/secret.yaml`) renders `haSharedSecret` with `randAlphaNum 16` on every render
unless `secrets.haSharedSecret` is set: each `helm upgrade` or GitOps sync rolls out a new
secret, and while the rollout overlaps old and new pods they disagree.
"""

from __future__ import annotations

import re
from typing import Any

from registry_doctor.doctor.check import CheckContext, NotEvaluable
from registry_doctor.doctor.fix.model import Action
from registry_doctor.doctor.fix.plan import PlanContext, planner
from registry_doctor.doctor.model import CheckMeta, Result, Severity, Status
from registry_doctor.doctor.platform.helm import helm_release
from registry_doctor.doctor.registryconfig import CONFIG_KINDS
from registry_doctor.doctor.workload import Workload, as_dict

META = CheckMeta(
    id="http-secret",
    title="Registry replicas share one http.secret",
    severity=Severity.CRIT,
    kinds=(*CONFIG_KINDS, "registry-pods", "registry-replicasets", "registry-logs"),
    description=(
        "Where the registry's effective http.secret comes from: REGISTRY_HTTP_SECRET (a "
        "literal or a secretKeyRef, as the twuni/docker-registry chart sets it from "
        "haSharedSecret), else http.secret in its config file; never its value. With more "
        "than one replica, crit when none is set (each process generates its own at start, "
        "logging \"No HTTP secret provided\"): uploads continued on another replica fail with "
        "\"blob upload unknown\". Warn when the pods run from different versions of the "
        "Secret (their `checksum/secret` pod annotation differs: a rollout overlaps pods "
        "with different secrets), or when the Deployment's ReplicaSets show the Secret "
        "changed at each revision (the chart renders a new random haSharedSecret at each "
        "render unless secrets.haSharedSecret is set). Ok with one replica, or when all "
        "replicas read one unchanging secret. Applies on every platform: `oc adm registry` "
        "writes one REGISTRY_HTTP_SECRET into the DeploymentConfig (3.x), and a registry "
        "edited without it is as exposed as any other."
    ),
    remediation=(
        "Give every replica the same secret: with the twuni chart set "
        "`secrets.haSharedSecret` in your values to a value you keep (e.g. from `openssl rand "
        "-hex 16`), so each render reuses it; otherwise store one in a Secret and read it "
        "from there: `$cli create secret generic registry-http-secret -n $namespace "
        "--from-literal=REGISTRY_HTTP_SECRET=\"$$(openssl rand -hex 16)\"` and "
        "`$cli set env $registry -n $namespace --from=secret/registry-http-secret`."
    ),
)

CHECKSUM = "checksum/secret"  # the chart's pod annotation: a hash of its rendered Secret
REVISION = "deployment.kubernetes.io/revision"
NO_SECRET_LOG = re.compile(r"No HTTP secret provided")


def evaluate(ctx: CheckContext) -> Result:
    workload = ctx.registry()
    config = ctx.configuration()
    if config.unresolved or (config.http_secret is None and config.fatal):
        raise NotEvaluable(config.unresolved or "the registry's configuration does not load "
                           "(registry-config says why)")
    pods = [p for p in ctx.installation.pods()
            if as_dict(p.get("status")).get("phase") in ("Pending", "Running")]
    replicas = workload.replicas if workload.replicas is not None else len(pods)
    logged = [f"pod/{pod}: {line}" for pod, line in ctx.installation.log_lines(NO_SECRET_LOG)]
    where = [f"{workload.ref} spec.replicas={replicas}" if workload.replicas is not None
             else f"{workload.ref}: {len(pods)} pod(s)", config.source_line]
    if replicas <= 1 and len(pods) <= 1:
        return ctx.result(Status.OK, f"{workload.ref} runs one replica: no other replica "
                          "needs its http.secret", [*where, *logged], [workload.resource])
    if config.http_secret is None:
        return ctx.failed(
            f"no http.secret for {replicas} replicas: each registry process generates its own, "
            "so an upload continued on another replica fails with \"blob upload unknown\"",
            [*where, "http.secret not set in the config file, REGISTRY_HTTP_SECRET not set",
             *logged], [workload.resource])
    details = [*where, f"http.secret set ({config.http_secret})"]
    differing = _differing_pods(pods)
    if differing:
        return ctx.result(Status.WARN, f"the registry pods run from {len(differing)} versions "
                          f"of its Secret ({CHECKSUM} differs): while they overlap, an upload "
                          "continued on a pod with another http.secret fails",
                          [*details, *differing], [workload.resource])
    changed = _secret_changes(workload, ctx.snapshot.items("registry-replicasets"))
    if changed:
        release = helm_release(workload.obj)
        why = (f"Helm release {release} renders a new haSharedSecret unless "
               "secrets.haSharedSecret is set" if release else "the Secret was changed")
        rollouts = sum(line.endswith(" changed") for line in changed)
        return ctx.result(Status.WARN, f"the registry's Secret changed at {rollouts} of its "
                          f"{len(changed) - 1} rollouts ({why}): during each such rollout old "
                          "and new pods "
                          "sign uploads with different secrets", [*details, *changed],
                          [workload.resource])
    return ctx.result(Status.OK, f"{replicas} replicas read one http.secret "
                      f"({config.http_secret})", details, [workload.resource])


def _annotation(obj: dict[str, Any], key: str) -> str | None:
    value = as_dict(as_dict(obj.get("metadata")).get("annotations")).get(key)
    return value if isinstance(value, str) else None


def _differing_pods(pods: list[dict[str, Any]]) -> list[str]:
    """One line per distinct `checksum/secret` among the pods, when there are several. The
    checksum itself is not shown: it hashes the secret's value."""
    groups: dict[str, list[str]] = {}
    for pod in pods:
        checksum = _annotation(pod, CHECKSUM)
        if checksum is not None:
            groups.setdefault(checksum, []).append(pod["metadata"]["name"])
    if len(groups) < 2:
        return []
    return [f"pods {', '.join(sorted(names))}: {CHECKSUM} version {index}"
            for index, names in enumerate(sorted(groups.values()), start=1)]


def _secret_changes(workload: Workload, replica_sets: list[dict[str, Any]]) -> list[str]:
    """The Deployment's revisions, oldest first, each with whether its `checksum/secret`
    differs from the one before; empty when it never changed."""
    uid = as_dict(workload.obj.get("metadata")).get("uid")
    owned = [rs for rs in replica_sets if uid is None or any(
        as_dict(ref).get("uid") == uid for ref in rs["metadata"].get("ownerReferences") or [])]
    revisions = sorted((int(r), rs) for rs in owned
                       if (r := _annotation(rs, REVISION) or "").isdigit())
    checksums = [(revision, rs["metadata"]["name"], _annotation(
        as_dict(as_dict(rs.get("spec")).get("template")), CHECKSUM)) for revision, rs in revisions]
    known = [(r, name, c) for r, name, c in checksums if c is not None]
    if len({c for *_, c in known}) < 2:
        return []
    return [f"replicaset/{name} (revision {revision}): {CHECKSUM} "
            + ("as rendered first" if position == 0 else
               "unchanged" if checksum == known[position - 1][2] else "changed")
            for position, (revision, name, checksum) in enumerate(known)]


@planner()
def plan(ctx: PlanContext) -> list[Action]:
    """A shared secret is a value only the admin may choose and keep: the steps, as chart
    values when Helm renders the registry."""
    workload = ctx.registry()
    if workload is None:
        return []
    release = helm_release(workload.obj)
    namespace = workload.namespace
    if release:
        steps = [f"set secrets.haSharedSecret in the values of Helm release {release} "
                 f"(namespace {namespace}) to a value you keep, e.g. from `openssl rand -hex "
                 "16`: every render then reuses it",
                 f"then `helm upgrade {release} <chart> -n {namespace} -f <your values>`"]
        return [ctx.manual("helm-values", "through the chart's values: one haSharedSecret "
                           "for every render", steps, target=workload.obj)]
    cli = ctx.installation.cli
    steps = [f"{cli} create secret generic registry-http-secret -n {namespace} "
             "--from-literal=REGISTRY_HTTP_SECRET=\"$(openssl rand -hex 16)\"",
             f"{cli} set env {workload.ref} -n {namespace} --from=secret/registry-http-secret"]
    return [ctx.manual("share-http-secret", f"give every replica of {workload.ref} one "
                       "http.secret", steps, target=workload.obj)]
