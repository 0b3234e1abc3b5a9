"""cockpit-port-conflict: nothing else holds the registry console's port (9090).

"Deploying a Registry on Existing Clusters" (OpenShift Origin 3.x docs),
"Enabling the Registry Console": "If Cockpit is already running, you'll need to shut it
down before proceeding in order to avoid a port conflict (9090 by default) with the registry
console."
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from registry_doctor.doctor.check import CheckContext
from registry_doctor.doctor.console import CONSOLE_PLATFORMS, NO_CONSOLE
from registry_doctor.doctor.findings import Finding, verdict
from registry_doctor.doctor.fix.planners.console import plan_cockpit_port_conflict as plan  # noqa: F401 (its planner)
from registry_doctor.doctor.model import CheckMeta, CheckOption, Resource, Result, Severity, Status
from registry_doctor.doctor.probe_results import Holder, PortHolders
from registry_doctor.doctor.workload import WORKLOAD_KINDS, as_dict, as_list

META = CheckMeta(
    id="cockpit-port-conflict",
    title="Nothing else holds the registry console's port",
    severity=Severity.CRIT,
    kinds=(*WORKLOAD_KINDS, "console-pods", "console-node-pods", "console-logs"),
    probes=("console-port",),
    platforms=CONSOLE_PLATFORMS,
    platform_note=NO_CONSOLE,
    description=(
        "Cockpit and the registry console both listen on port 9090 (--console-port). Crit: "
        "the console binds the host port (hostNetwork or hostPort) on a node where another "
        "pod binds it too (with --node-pod-scan, which lists every pod of the cluster); a "
        "console pod whose log shows `Failed to bind to port ... Address "
        "already in use`; a console pod the scheduler cannot place for want of free ports; "
        "with --node-local, another process holding the port on this host while the console "
        "binds the host port. Warn: the same holders while the console listens only in its "
        "pod network (no clash now, but the port is taken on its node). With --node-local the "
        "holder is named from /proc (pid and command) and asked for Cockpit's /ping."
    ),
    remediation=(
        "Free the port on the console's node: stop a host Cockpit (`systemctl disable --now "
        "cockpit.socket`) or move the other pod; or keep the console on the pod network "
        "(no hostNetwork/hostPort in $console), as the template deploys it."
    ),
    options=(
        CheckOption("--console-port", "console_port", "Port of Cockpit and the console.",
                    type="int", default=9090, minimum=1, maximum=65535),
        CheckOption("--node-pod-scan", "node_pod_scan", "Also look at every pod on the "
                    "console's nodes (lists the pods of every namespace: needs a cluster-wide "
                    "pod list).", type="bool", default=False),
    ),
)

BIND_FAILURE = re.compile(r"Failed to bind to port (\d+).*(?:Address already in use|in use)")
NOT_RUNNING = ("Succeeded", "Failed")
COCKPIT_PROGRAMS = ("cockpit-ws", "cockpit-tls")


def evaluate(ctx: CheckContext) -> Result:
    console = ctx.console()
    port = ctx.config.console_port
    pods = ctx.snapshot.items("console-pods")
    console_binding = host_binding(console.pod_spec, port, declared_only=False)
    binds = f"{console.ref} binds host port {port} ({console_binding})" if console_binding \
        else f"{console.ref} listens on {port} in its pod network, not on the host"
    findings = [Finding(Status.OK, binds)]
    findings += _neighbours(ctx, pods, console_binding is not None, port)
    findings += _bind_failures(ctx, pods)
    findings += _unschedulable(pods)
    findings += _this_host(ctx, pods, console_binding is not None, port)
    return verdict(ctx, findings, f"nothing else holds port {port} where {console.ref} runs",
                   [console.resource, *(_pod(p) for p in pods)])


def host_binding(pod_spec: dict[str, Any], port: int, declared_only: bool) -> str | None:
    """How a pod takes `port` on its node: hostNetwork (a console always listens on its port;
    other pods only as far as they declare it) or a hostPort."""
    host_network = pod_spec.get("hostNetwork") is True
    for container in as_list(pod_spec.get("containers")):
        for declared in as_list(as_dict(container).get("ports")):
            declared = as_dict(declared)
            if str(declared.get("protocol", "TCP")).upper() != "TCP":
                continue
            if declared.get("hostPort") == port:
                return f"hostPort {port}"
            if host_network and declared.get("containerPort") == port:
                return f"hostNetwork, containerPort {port}"
    return "hostNetwork" if host_network and not declared_only else None


def _neighbours(ctx: CheckContext, console_pods: list[dict[str, Any]], console_binds: bool,
                port: int) -> list[Finding]:
    if not ctx.config.node_pod_scan:
        return [Finding(Status.OK, "other pods on the console's nodes were not looked at: "
                                   "--node-pod-scan (chart: checks.optIn.node_pod_scan) does, "
                                   "with a list of every pod of the cluster")]
    own = {p["metadata"]["name"] for p in console_pods}
    findings = []
    for pod in ctx.snapshot.items("console-node-pods"):
        if pod["metadata"]["name"] in own or as_dict(pod.get("status")).get("phase") in \
                NOT_RUNNING:
            continue
        binding = host_binding(as_dict(pod.get("spec")), port, declared_only=True)
        if binding is None:
            continue
        node = as_dict(pod.get("spec")).get("nodeName")
        where = f"pod {pod['metadata'].get('namespace', '')}/{pod['metadata']['name']} on the " \
                f"console's node {node} binds host port {port} ({binding})"
        findings.append(
            Finding(Status.CRIT, f"{where}: the console binds it there too and cannot start",
                    (_pod(pod),))
            if console_binds else
            Finding(Status.WARN, f"{where}: no clash while the console listens in its pod "
                                 "network, but the console cannot take the host port there",
                    (_pod(pod),)))
    return findings


def _bind_failures(ctx: CheckContext, pods: list[dict[str, Any]]) -> list[Finding]:
    findings = []
    for pod in pods:
        metadata = pod["metadata"]
        log = ctx.snapshot.logs.get((metadata.get("namespace", ctx.config.namespace),
                                     metadata["name"]), "")
        line = next((line for line in reversed(log.splitlines()) if BIND_FAILURE.search(line)),
                    None)
        if line is not None:
            findings.append(Finding(Status.CRIT, f"pod {metadata['name']} ({_state(pod)}) "
                                                 f"logged: {line.strip()}"))
    return findings


def _state(pod: dict[str, Any]) -> str:
    statuses = [as_dict(s) for s in as_list(as_dict(pod.get("status")).get("containerStatuses"))]
    ready = all(s.get("ready") is True for s in statuses) and bool(statuses)
    restarts = sum(s.get("restartCount", 0) for s in statuses
                   if isinstance(s.get("restartCount"), int))
    return f"{'ready' if ready else 'not ready'}, {restarts} restarts"


def _unschedulable(pods: list[dict[str, Any]]) -> list[Finding]:
    findings = []
    for pod in pods:
        for condition in as_list(as_dict(pod.get("status")).get("conditions")):
            condition = as_dict(condition)
            message = str(condition.get("message", ""))
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False" \
                    and "free ports" in message:
                findings.append(Finding(Status.CRIT, f"pod {pod['metadata']['name']} cannot be "
                                                     f"scheduled: {message}"))
    return findings


def _this_host(ctx: CheckContext, pods: list[dict[str, Any]], console_binds: bool,
               port: int) -> list[Finding]:
    observed = ctx.probe("console-port", PortHolders)
    if observed is None:
        return []
    if observed.error:
        return [Finding(Status.UNKNOWN, f"this host: {observed.error}")]
    data = observed.data
    if not data.listeners:
        return [Finding(Status.OK, f"this host: nothing listens on port {port}")]
    console_uids = {p["metadata"].get("uid") for p in pods}
    holders = data.holders
    if holders and all(h.pod_uid in console_uids for h in holders):
        return [Finding(Status.OK, f"this host: port {port} is held by the console itself "
                                   f"({_holders(holders)})")]
    addresses = ", ".join(sorted({s.address for s in data.listeners}))
    who = _holders(holders) if holders else (
        "a process this user cannot see (run as root, or with hostPID in a pod)"
        if data.hidden else "no process visible from here (another PID namespace)")
    cockpit = _cockpit_evidence(holders, data.ping)
    text = f"this host: port {port} ({addresses}) is held by {who}; {cockpit}"
    if console_binds:
        return [Finding(Status.CRIT, f"{text}: the console binds this port on its node and "
                                     "cannot start here")]
    return [Finding(Status.WARN, f"{text}: no clash while the console listens in its pod "
                                 "network, but the port is not free for it on this host")]


def _holders(holders: Sequence[Holder]) -> str:
    return ", ".join(f"pid {h.pid} ({h.command})" for h in holders)


def _cockpit_evidence(holders: Sequence[Holder], ping: dict[str, str]) -> str:
    answered = " and ".join(scheme.upper() for scheme, answer in ping.items()
                            if answer == "cockpit")
    why = [f"answers /ping over {answered} as Cockpit"] if answered else []
    why += [f"{h.program} is Cockpit's web server" for h in holders
            if h.program in COCKPIT_PROGRAMS][:1]
    if why:
        return f"it is Cockpit ({'; '.join(why)})"
    answers = "; ".join(f"{scheme.upper()} /ping: {answer}" for scheme, answer in ping.items())
    return f"it is not Cockpit ({answers})"


def _pod(pod: dict[str, Any]) -> Resource:
    """The pod as a resource; a dump may hold anything in its namespace field."""
    metadata = as_dict(pod.get("metadata"))
    namespace = metadata.get("namespace")
    return Resource("Pod", str(metadata.get("name")),
                    namespace if isinstance(namespace, str) and namespace else None)
