"""Is a workload actually up and serving: the judgement `registry-running` and `console-running`
share, over what the cluster reports rather than what the configuration asks for.

The evidence: pod status (Kubernetes API reference, PodStatus and ContainerStatus), the warning
events about the workload's objects, its latest deployment (OpenShift 3.x "Deployments": the RC
annotation `openshift.io/deployment.phase`; Kubernetes "Deployments": the Progressing
condition's ProgressDeadlineExceeded and the newest ReplicaSet's events), its Service's
Endpoints and the log tails of its pods, the previous container's included. Each symptom names
its most likely cause and the check that owns that cause. Pure: it reads a snapshot only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from registry_doctor.doctor.check import CheckContext
from registry_doctor.doctor.events import UNDATED, event_lines, event_time, rfc3339
from registry_doctor.doctor.known_issues import KnownIssue, matching_lines, quoted
from registry_doctor.doctor.model import Resource, Result, Status
from registry_doctor.doctor.snapshot.kinds import latest_replication_controller, newest_replica_set
from registry_doctor.doctor.workload import Workload, as_dict, as_list

WARNING_REASONS = ("FailedMount", "FailedAttachVolume", "FailedScheduling", "FailedCreate",
                   "BackOff", "Unhealthy")
LOG_LINES_PER_ISSUE = 2  # the newest lines of each known issue in one log
RECENT = timedelta(hours=1)  # kube-apiserver's default --event-ttl
REPEATED = 3  # restarts
RESTARTS_WINDOW = timedelta(days=1)  # a pod this young restarted that often: repeatedly


@dataclass(frozen=True)
class Cause:
    text: str
    owner: str  # the check that owns the cause, or "" when none does


# Symptoms of pod status and events that every workload shares -> their most likely cause.
OOM_KILLED = ("OOMKilled", Cause("the container exceeded its memory limit or the node ran out "
                                 "of memory", "besteffort-qos"))
IMAGE_PULL = ("ImagePull", Cause("the image cannot be pulled: image name, tag or pull secret",
                                 ""))  # ImagePullBackOff, ErrImagePull
FAILED_SCHEDULING = ("FailedScheduling", Cause("no node fits the pod: requests, node selector "
                                               "or taints", ""))
FAILED_CREATE = ("FailedCreate", Cause("the controller cannot create the pods: a quota, "
                                       "LimitRange or security policy (SCC, PodSecurity) "
                                       "refuses them; see the event", ""))
UNHEALTHY = ("Unhealthy", Cause("the container does not answer its probes: see its log", ""))


@dataclass(frozen=True)
class Subject:
    """What is judged: a workload with its pods and the collections holding its evidence."""

    label: str  # "registry", "console": how the summary names its pods
    workload: Workload
    pods: list[dict[str, Any]]
    events: list[dict[str, Any]]
    controllers: list[dict[str, Any]]  # a DeploymentConfig's RCs
    replica_sets: list[dict[str, Any]]  # a Deployment's RSs
    endpoints: dict[str, Any] | None  # of its Service; None when not found
    log_error: str | None  # why its pods' logs could not be read
    # Log lines of these issues are quoted; each issue's meaning and owner is a cause.
    log_issues: tuple[KnownIssue, ...]
    # Status and event symptoms, tried in order, before (`first`) and after the log issues.
    first: tuple[tuple[str, Cause], ...]
    then: tuple[tuple[str, Cause], ...]


def judge(ctx: CheckContext, subject: Subject) -> Result:
    """Crit when no pod is ready, the latest deployment failed or the Service has no ready
    address; warn when some pods are not ready, fewer exist than desired, or restarts are
    recent and repeated; ok otherwise."""
    workload = subject.workload
    # A pod being deleted (the previous deployment's, during a rollout) is on its way out; one
    # that ended (Failed, e.g. Evicted, or Succeeded) no longer counts toward the replicas: its
    # controller has replaced it.
    pods, ended = [], []
    for pod in subject.pods:
        if as_dict(pod.get("metadata")).get("deletionTimestamp"):
            continue
        phase = as_dict(pod.get("status")).get("phase")
        (ended if phase in ("Failed", "Succeeded") else pods).append(pod)
    events = _events_by_object(subject.events)
    reference = _newest_event_time(subject.events)
    resources = [workload.resource]
    details: list[str] = [
        f"pod/{as_dict(p.get('metadata')).get('name', '?')} status.phase="
        f"{as_dict(p.get('status')).get('phase')} (reason "
        f"{as_dict(p.get('status')).get('reason', '?')}): ended, not counted" for p in ended]
    unready, restarting = [], []
    for pod in pods:
        name = as_dict(pod.get("metadata")).get("name", "?")
        ready = _ready(pod)
        if ready and not _recent_restarts(pod, reference, events.get(("Pod", name), [])):
            continue
        (unready if not ready else restarting).append(name)
        resources.append(Resource("Pod", name, workload.namespace))
        details += _pod_evidence(ctx, subject, pod, events.get(("Pod", name), []))
    if subject.log_error and (unready or restarting):
        details.append(f"{subject.label} pod logs not read ({subject.log_error}): no log line "
                       "quoted")
    ready_count = len(pods) - len(unready)
    desired = workload.replicas
    failed_rollout = _failed_deployment(subject, events, details, resources)
    no_endpoints = _endpoint_evidence(subject.endpoints, details)
    details += _status_evidence(workload)
    # A StatefulSet creates its pods itself: FailedCreate (quota, security policy) is its own.
    details += _controller_evidence(subject, workload.kind, workload.ref, events)
    wanted = f"{desired} desired" if desired is not None else "one per node"
    counted = f"{ready_count} of {len(pods)} {subject.label} pods ready ({wanted})"
    if (not pods or ready_count == 0) or failed_rollout or no_endpoints:
        reasons = [r for r, found in (
            (f"no {subject.label} pod is ready", not pods or ready_count == 0),
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


def _recent_restarts(pod: dict[str, Any], reference: datetime | None,
                     events: list[dict[str, Any]]) -> bool:
    """Restarted REPEATED times or more, the last one ending within RECENT of the newest
    event, and the restarts themselves recent: the kubelet backs off restarting it (a BackOff
    event), or the pod is younger than a day. restartCount counts the pod's whole life: five
    restarts over a month and one this hour is an isolated restart. Without events about the
    workload, nothing happened within the event TTL."""
    if reference is None:
        return False
    started = rfc3339(as_dict(pod.get("status")).get("startTime"))
    backing_off = any(e.get("reason") == "BackOff" for e in events)
    young = started is not None and reference - started <= RESTARTS_WINDOW
    for status in _containers(pod):
        count = status.get("restartCount")
        finished = rfc3339(as_dict(as_dict(status.get("lastState")).get("terminated"))
                           .get("finishedAt"))
        if isinstance(count, int) and count >= REPEATED and finished is not None \
                and reference - finished <= RECENT and (backing_off or young):
            return True
    return False


def _pod_evidence(ctx: CheckContext, subject: Subject, pod: dict[str, Any],
                  events: list[dict[str, Any]]) -> list[str]:
    metadata = as_dict(pod.get("metadata"))
    name = metadata.get("name", "?")
    namespace = metadata.get("namespace") or ctx.config.namespace
    lines = [f"pod/{name} status.phase={as_dict(pod.get('status')).get('phase', '?')}"]
    for container in _containers(pod):
        lines += _container_lines(name, container)
    lines += [f"pod/{name} event {line}" for line in event_lines(events)]
    found: list[KnownIssue] = []
    current = ctx.snapshot.logs.get((namespace, name), "").splitlines()
    lines += _log_lines(f"pod/{name} log", current, subject.log_issues, found, set())
    for container in _containers(pod):
        previous = ctx.snapshot.previous_logs.get((namespace, name, str(container.get("name"))))
        if previous is not None:
            lines += _log_lines(f"pod/{name} previous container's log "
                                f"({container.get('name')})", previous.splitlines(),
                                subject.log_issues, found, set(current))
    cause = _cause(subject, lines, found)
    if cause is not None:
        owner = f" (check {cause.owner})" if cause.owner else ""
        lines.append(f"pod/{name} likely cause: {cause.text}{owner}")
    return lines


def _log_lines(prefix: str, log: list[str], issues: tuple[KnownIssue, ...],
               found: list[KnownIssue], already_quoted: set[str]) -> list[str]:
    """The newest lines of each known issue in `log`, quoted; the issues seen go to `found`.
    A line the current log already showed is not quoted again: a container waiting in
    CrashLoopBackOff serves its previous container's log as its current one (kubelet
    pkg/kubelet/kubelet_pods.go validateContainerLogStatus)."""
    quoted_lines = []
    for issue in issues:
        hits = [line for line in matching_lines(log, issue) if line not in already_quoted]
        if hits:
            found.append(issue)
        quoted_lines += [f"{prefix}: {quoted(line.strip())}"
                         for line in hits[-LOG_LINES_PER_ISSUE:]]
    return quoted_lines


def _cause(subject: Subject, lines: list[str], found: list[KnownIssue]) -> Cause | None:
    """The first symptom present: status and event symptoms in `first`, then the log issues
    found in their catalogue order, then `then`."""
    for symptom, cause in subject.first:
        if any(symptom in line for line in lines):
            return cause
    for issue in subject.log_issues:
        if issue in found:
            return Cause(issue.meaning, issue.owner)
    return next((cause for symptom, cause in subject.then
                 if any(symptom in line for line in lines)), None)


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


def _failed_deployment(subject: Subject, events: dict[tuple[str, str], list[dict[str, Any]]],
                       details: list[str], resources: list[Resource]) -> bool:
    workload = subject.workload
    failed = False
    latest = latest_replication_controller(subject.controllers)
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
                    for line in event_lines(events.get(("ReplicationController", name), []))]
    newest = newest_replica_set(subject.replica_sets)
    if newest is not None:
        details += _replica_set_evidence(subject, newest, events, resources)
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


# The controllers that create the pods themselves, so their events say why pods are missing.
POD_CREATORS = ("ReplicaSet", "StatefulSet")


def _replica_set_evidence(subject: Subject, replica_set: dict[str, Any],
                          events: dict[tuple[str, str], list[dict[str, Any]]],
                          resources: list[Resource]) -> list[str]:
    """The newest ReplicaSet's warning events: a controller that cannot create pods (quota,
    security policy) says so there, not on any pod."""
    name = str(as_dict(replica_set.get("metadata")).get("name", "?"))
    lines = _controller_evidence(subject, "ReplicaSet", f"rs/{name}", events)
    if lines:
        resources.append(Resource("ReplicaSet", name, subject.workload.namespace))
    return lines


def _controller_evidence(subject: Subject, kind: str, ref: str,
                         events: dict[tuple[str, str], list[dict[str, Any]]]) -> list[str]:
    """The warning events about the controller `ref` (kind/name) that creates the pods, and
    the likely cause they name."""
    name = ref.partition("/")[2]
    lines = [f"{ref} event {line}" for line in event_lines(events.get((kind, name), []))]
    cause = next((c for symptom, c in (*subject.first, *subject.then)
                  if any(symptom in line for line in lines)), None)
    if cause is not None and kind in POD_CREATORS:
        owner = f" (check {cause.owner})" if cause.owner else ""
        lines.append(f"{ref} likely cause: {cause.text}{owner}")
    return lines


def _status_evidence(workload: Workload) -> list[str]:
    """A StatefulSet's own count of ready pods (apps/v1 StatefulSetStatus.readyReplicas)."""
    if workload.kind != "StatefulSet":
        return []
    ready = as_dict(workload.obj.get("status")).get("readyReplicas", 0)
    return [f"{workload.ref} status.readyReplicas={ready}"]


def _endpoint_evidence(endpoints: dict[str, Any] | None, details: list[str]) -> bool:
    """True when the Service's Endpoints hold no ready address (none at all, or only
    not-ready ones)."""
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
    for event in sorted(events, key=lambda e: event_time(e) or UNDATED, reverse=True):
        subject = as_dict(event.get("involvedObject"))
        if event.get("type") == "Warning" and event.get("reason") in WARNING_REASONS:
            grouped.setdefault((str(subject.get("kind")), str(subject.get("name"))),
                               []).append(event)
    return grouped


def _newest_event_time(events: list[dict[str, Any]]) -> datetime | None:
    return max(filter(None, map(event_time, events)), default=None)
