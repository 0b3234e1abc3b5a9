"""registry-running: the registry is actually up and serving.

Configuration tells what should happen; this check reads what does: pod status (Kubernetes
API reference, PodStatus and ContainerStatus), the events about the registry's objects, the
latest deployment (OpenShift 3.x "Deployments": the RC annotation
`openshift.io/deployment.phase`; Kubernetes "Deployments": the Progressing condition's
ProgressDeadlineExceeded), the Service's Endpoints and the pods' log tails. Each symptom
names its most likely cause and the check that owns that cause.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from registry_doctor.doctor.check import CheckContext
from registry_doctor.doctor.known_issues import KNOWN_ISSUES, matching_lines, quoted
from registry_doctor.doctor.model import CheckMeta, Resource, Result, Severity, Status
from registry_doctor.doctor.snapshot.kinds import latest_replication_controller
from registry_doctor.doctor.workload import Workload, as_dict, as_list

META = CheckMeta(
    id="registry-running",
    title="The registry is up and serving",
    severity=Severity.CRIT,
    kinds=("deploymentconfigs", "deployments", "daemonsets", "registry-pods",
           "registry-replicationcontrollers", "registry-events", "services", "endpoints",
           "registry-logs"),
    description=(
        "Desired against ready registry pods; for each pod that is not ready, or that "
        "restarted recently and repeatedly, its container state (waiting reason such as "
        "CrashLoopBackOff or ImagePullBackOff, last termination such as OOMKilled with its "
        "exit code, restart count), the warning events about it (FailedMount, "
        "FailedAttachVolume with Multi-Attach, FailedScheduling, FailedCreate, BackOff, "
        "Unhealthy) and the log lines of known causes (`panic:`, `permission denied`). Also "
        "the latest deployment (the DeploymentConfig's latest ReplicationController in phase "
        "Failed, or a Progressing=False condition with ProgressDeadlineExceeded) and the "
        "registry Service's Endpoints. Crit when no registry pod is ready, the Service has no "
        "ready address or the latest deployment failed; warn when some pods are not ready, "
        "fewer pods exist than desired, or restarts are recent (the last one finished within "
        "an hour of the newest event about the registry) and repeated (3 or more); ok "
        "otherwise. Restarts older than the events the API server keeps are history, not a "
        "finding."
    ),
    remediation=(
        "Follow the cause named for each pod and the check that owns it; then watch the "
        "rollout: `$cli get pods -n $namespace -w` and "
        "`$cli describe $registry -n $namespace`. For a failed deployment, read the deployer "
        "pod's log and redeploy once the cause is fixed: "
        "`$cli rollout latest $registry -n $namespace`."
    ),
    platform_remediation={
        "openshift4": (
            "Follow the cause named for each pod and the check that owns it; the operator's "
            "own view: `$cli get clusteroperator image-registry -o yaml` and "
            "`$cli get $owner -o yaml` (status.conditions; see registry-operator). Watch the "
            "rollout: `$cli get pods -n $namespace -w`, `$cli describe $registry -n "
            "$namespace`."),
    },
)

WARNING_REASONS = ("FailedMount", "FailedAttachVolume", "FailedScheduling", "FailedCreate",
                   "BackOff", "Unhealthy")
EVENTS_PER_OBJECT = 3  # newest first: enough to explain, few enough to read
RECENT = timedelta(hours=1)  # kube-apiserver's default --event-ttl
REPEATED = 3  # restarts
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Cause:
    text: str
    owner: str  # the check that owns the cause, or "" when none does


# Symptom -> its most likely cause. Matched in this order on the evidence lines of one pod.
CAUSES: tuple[tuple[str, Cause], ...] = (
    ("Multi-Attach", Cause("a volume attached to another node cannot be shared", "nfs-scaling")),
    ("OOMKilled", Cause("the container exceeded its memory limit or the node ran out of "
                        "memory", "besteffort-qos")),
    ("panic:", Cause("the registry aborts at start-up: its configuration", "registry-config")),
    ("permission denied", Cause("the registry's user cannot write its store",
                                "storage-permissions")),
    ("FailedMount", Cause("the store volume cannot be mounted", "nfs-scaling")),
    ("CreateContainerConfigError", Cause("a secret or configmap the pod template names is "
                                         "missing", "registry-config")),
    ("ImagePull", Cause("the registry image cannot be pulled: image name, tag or pull secret",
                        "")),  # ImagePullBackOff, ErrImagePull
    ("FailedScheduling", Cause("no node fits the pod: requests, node selector or taints", "")),
    ("Unhealthy", Cause("the registry does not answer its probes: see its log", "")),
)


def evaluate(ctx: CheckContext) -> Result:
    workload = ctx.registry()
    # A pod being deleted (the previous deployment's, during a rollout) is on its way out; one
    # that ended (Failed, e.g. Evicted, or Succeeded) no longer counts toward the replicas: its
    # controller has replaced it.
    pods, ended = [], []
    for pod in ctx.installation.pods():
        if as_dict(pod.get("metadata")).get("deletionTimestamp"):
            continue
        phase = as_dict(pod.get("status")).get("phase")
        (ended if phase in ("Failed", "Succeeded") else pods).append(pod)
    events = _events_by_object(ctx.snapshot.items("registry-events"))
    reference = _newest_event_time(ctx.snapshot.items("registry-events"))
    resources = [workload.resource]
    details: list[str] = [
        f"pod/{as_dict(p.get('metadata')).get('name', '?')} status.phase="
        f"{as_dict(p.get('status')).get('phase')} (reason "
        f"{as_dict(p.get('status')).get('reason', '?')}): ended, not counted" for p in ended]
    unready, restarting = [], []
    for pod in pods:
        name = as_dict(pod.get("metadata")).get("name", "?")
        ready = _ready(pod)
        recent = _recent_restarts(pod, reference)
        if ready and not recent:
            continue
        (unready if not ready else restarting).append(name)
        resources.append(Resource("Pod", name, workload.namespace))
        details += _pod_evidence(ctx, pod, events.get(("Pod", name), []))
    log_error = ctx.snapshot.error("registry-logs")
    if log_error and (unready or restarting):
        details.append(f"registry pod logs not read ({log_error}): no log line quoted")
    ready_count = len(pods) - len(unready)
    desired = workload.replicas
    failed_rollout = _failed_deployment(ctx, workload, events, details, resources)
    no_endpoints = _endpoint_evidence(ctx, details)
    details += [f"{workload.ref} event {line}"
                for line in _event_lines(events.get((workload.kind, workload.name), []))]
    wanted = f"{desired} desired" if desired is not None else "one per node"
    counted = f"{ready_count} of {len(pods)} registry pods ready ({wanted})"
    if (not pods or ready_count == 0) or failed_rollout or no_endpoints:
        reasons = [r for r, found in (
            ("no registry pod is ready", not pods or ready_count == 0),
            ("the latest deployment failed", failed_rollout),
            ("the Service has no ready endpoint", no_endpoints and ready_count > 0)) if found]
        return ctx.failed(f"{'; '.join(reasons)}: {counted}", details, resources)
    missing = desired - len(pods) if desired is not None and desired > len(pods) else 0
    parts = ([f"{len(unready)} not ready ({', '.join(unready)})"] if unready else []) + \
        ([f"{', '.join(restarting)} restarting repeatedly"] if restarting else []) + \
        ([f"{missing} desired pods do not exist"] if missing else [])
    if parts:
        return ctx.result(Status.WARN, f"{counted}: {'; '.join(parts)}", details, resources)
    return ctx.result(Status.OK, counted, details, resources)


def _ready(pod: dict[str, Any]) -> bool:
    conditions = as_list(as_dict(pod.get("status")).get("conditions"))
    return any(as_dict(c).get("type") == "Ready" and as_dict(c).get("status") == "True"
               for c in conditions)


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [as_dict(c) for c in as_list(as_dict(pod.get("status")).get("containerStatuses"))]


def _recent_restarts(pod: dict[str, Any], reference: datetime | None) -> bool:
    """Restarted REPEATED times or more, the last one ending within RECENT of the newest
    event: without events about the registry, nothing happened within the event TTL."""
    if reference is None:
        return False
    for status in _containers(pod):
        count = status.get("restartCount")
        finished = _time(as_dict(as_dict(status.get("lastState")).get("terminated"))
                         .get("finishedAt"))
        if isinstance(count, int) and count >= REPEATED and finished is not None \
                and reference - finished <= RECENT:
            return True
    return False


def _pod_evidence(ctx: CheckContext, pod: dict[str, Any],
                  events: list[dict[str, Any]]) -> list[str]:
    name = as_dict(pod.get("metadata")).get("name", "?")
    status = as_dict(pod.get("status"))
    lines = [f"pod/{name} status.phase={status.get('phase', '?')}"]
    for container in _containers(pod):
        lines += _container_lines(name, container)
    lines += [f"pod/{name} event {line}" for line in _event_lines(events)]
    text = ctx.snapshot.logs.get((ctx.config.namespace, name), "")
    for issue in KNOWN_ISSUES:
        if issue.id in ("registry-panic", "permission-denied"):
            lines += [f"pod/{name} log: {quoted(line.strip())}"
                      for line in matching_lines(text.splitlines(), issue)[-2:]]
    cause = next((c for symptom, c in CAUSES if any(symptom in line for line in lines)), None)
    if cause is not None:
        owner = f" (check {cause.owner})" if cause.owner else ""
        lines.append(f"pod/{name} likely cause: {cause.text}{owner}")
    return lines


def _container_lines(pod: str, container: dict[str, Any]) -> list[str]:
    path = f"pod/{pod} containerStatuses[{container.get('name', '?')}]"
    lines = []
    waiting = as_dict(as_dict(container.get("state")).get("waiting"))
    if waiting:
        message = f": {waiting['message']}" if isinstance(waiting.get("message"), str) else ""
        lines.append(f"{path}.state.waiting.reason={waiting.get('reason', '?')}{message}")
    last = as_dict(as_dict(container.get("lastState")).get("terminated"))
    if last:
        lines.append(f"{path}.lastState.terminated: reason={last.get('reason', '?')} "
                     f"exitCode={last.get('exitCode', '?')} "
                     f"finishedAt={last.get('finishedAt', '?')}")
    if container.get("restartCount"):
        lines.append(f"{path}.restartCount={container['restartCount']}")
    return lines


def _failed_deployment(ctx: CheckContext, workload: Workload,
                       events: dict[tuple[str, str], list[dict[str, Any]]],
                       details: list[str], resources: list[Resource]) -> bool:
    failed = False
    latest = latest_replication_controller(ctx.snapshot.items("registry-replicationcontrollers"))
    if latest is not None:
        name = as_dict(latest.get("metadata")).get("name", "?")
        annotations = as_dict(as_dict(latest.get("metadata")).get("annotations"))
        phase = annotations.get("openshift.io/deployment.phase")
        reason = annotations.get("openshift.io/deployment.status-reason")
        shown = f"rc/{name} openshift.io/deployment.phase={phase}" + (
            f" ({reason})" if isinstance(reason, str) else "")
        if phase == "Failed" and annotations.get("openshift.io/deployment.cancelled") == "true":
            details.append(f"{shown}: cancelled by an admin, the previous deployment serves")
        elif phase == "Failed":
            failed = True
            details.append(shown)
            resources.append(Resource("ReplicationController", name, workload.namespace))
        details += [f"rc/{name} event {line}"
                    for line in _event_lines(events.get(("ReplicationController", name), []))]
    for condition in map(as_dict, as_list(as_dict(workload.obj.get("status"))
                                          .get("conditions"))):
        if condition.get("type") == "Progressing" and condition.get("status") == "False":
            # A DC is also Progressing=False when an admin cancels its rollout
            # (RolloutCancelled, openshift/origin deploymentconfig_controller.go): not a failure.
            stalled = condition.get("reason") == "ProgressDeadlineExceeded"
            failed = failed or stalled
            details.append(f"{workload.ref} status.conditions[Progressing]=False "
                           f"reason={condition.get('reason', '?')}: "
                           f"{condition.get('message', '')}".rstrip(": ")
                           + ("" if stalled else " (not a failed rollout)"))
    return failed


def _endpoint_evidence(ctx: CheckContext, details: list[str]) -> bool:
    """True when the registry Service's Endpoints hold no ready address (none at all, or only
    not-ready ones)."""
    endpoints = ctx.installation.endpoints()
    if endpoints is None:
        return False
    subsets = [as_dict(s) for s in as_list(endpoints.get("subsets"))]
    ready = sum(len(as_list(s.get("addresses"))) for s in subsets)
    not_ready = sum(len(as_list(s.get("notReadyAddresses"))) for s in subsets)
    details.append(f"endpoints/{endpoints['metadata']['name']}: {ready} ready, "
                   f"{not_ready} not ready addresses")
    return ready == 0


def _events_by_object(events: list[dict[str, Any]]) -> dict[tuple[str, str],
                                                              list[dict[str, Any]]]:
    """Warning events of the known reasons per (kind, name) of the object, newest first."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for event in sorted(events, key=lambda e: _event_time(e) or _EPOCH, reverse=True):
        subject = as_dict(event.get("involvedObject"))
        if event.get("type") == "Warning" and event.get("reason") in WARNING_REASONS:
            grouped.setdefault((str(subject.get("kind")), str(subject.get("name"))),
                               []).append(event)
    return grouped


def _event_lines(events: list[dict[str, Any]]) -> list[str]:
    return [f"{e.get('reason')} (x{e.get('count', 1)}, last "
            f"{e.get('lastTimestamp') or e.get('eventTime') or '?'}): "
            f"{str(e.get('message', '')).strip()}" for e in events[:EVENTS_PER_OBJECT]]


def _newest_event_time(events: list[dict[str, Any]]) -> datetime | None:
    return max(filter(None, map(_event_time, events)), default=None)


def _event_time(event: dict[str, Any]) -> datetime | None:
    return (_time(event.get("lastTimestamp")) or _time(event.get("eventTime"))
            or _time(event.get("firstTimestamp"))
            or _time(as_dict(event.get("metadata")).get("creationTimestamp")))


def _time(value: object) -> datetime | None:
    """An RFC 3339 time as the API server writes it; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
