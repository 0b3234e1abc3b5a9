"""push-pull-canary: the registry really stores and serves an image.

Beyond the operator guide ("Deploying a Registry on Existing Clusters"):
every other check judges configuration; this one pushes a small image through
the registry HTTP API v2 and reads it back (probe `canary`, doctor/probes/canary.py), through
the Service, the Route and each endpoint, so a single bad pod or replicas that do not share
storage show. Opt-in (`check --canary`): it writes to the registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from registry_doctor.doctor.check import CheckContext
from registry_doctor.doctor.known_issues import find_known_issues, matching_lines
from registry_doctor.doctor.model import (
    CheckMeta,
    CheckOption,
    MetricKey,
    Resource,
    Result,
    Severity,
    Status,
)
from registry_doctor.doctor.probe_results import CanaryFailure, CanaryRun, CanaryTarget, CrossRead

META = CheckMeta(
    id="push-pull-canary",
    title="An image can be pushed to and pulled from the registry",
    severity=Severity.CRIT,
    kinds=("services", "routes", "endpoints", "registry-logs"),
    probes=("canary",),
    opt_in="canary",
    description=(
        "Pushes a small random image (one layer, a config, an OCI manifest; Docker schema 2 "
        "when the registry refuses OCI) through the registry HTTP API v2 into the repository "
        "registry-doctor/canary, through the registry Service, its Route and every ready "
        "endpoint of the Service; reads each image back on fresh connections and through every "
        "other target, verifying every digest; then deletes it. crit: a target unreachable, "
        "TLS failing, an upload or read-back failing (HTTP 5xx, digest mismatch, an image "
        "missing through another replica), with the known S3/NFS signatures found in the "
        "registry's answer or pod logs. warn: read-only mode, delete disabled (image pruning "
        "fails too), or only the Route failing. unknown: the canary could not authenticate. "
        "skip: live probes are off."
    ),
    remediation=(
        "Follow the failing phase: unreachable or TLS -> the registry pods, Service and Route; "
        "HTTP 5xx on push -> the storage backend named in the evidence (S3 bucket, "
        "credentials, region; NFS export); an image missing through another replica -> give "
        "all replicas one shared store or scale to 1 replica; delete disabled -> set "
        "storage.delete.enabled: true in the registry config."
    ),
    options=(
        CheckOption("--canary", "canary", "Also push and pull a small image through the "
                    "registry.", type="bool", default=False),
        CheckOption("--canary-repository", "canary_repository", "Repository the canary "
                    "pushes into.", default="registry-doctor/canary"),
    ),
)

_RANK = {Status.OK: 0, Status.UNKNOWN: 1, Status.WARN: 2, Status.CRIT: 3}


@dataclass
class Finding:
    status: Status
    text: str
    targets: list[CanaryTarget]
    evidence: str = ""  # the registry's own words, searched for known issues
    lines: tuple[str, ...] = ()  # further detail lines


def evaluate(ctx: CheckContext) -> Result:
    probe = ctx.probe("canary", CanaryRun)
    if probe is None:
        return ctx.result(Status.SKIP, "live probes are off: the canary needs a live registry "
                          "(`check --canary` against a cluster, or `registry-doctor canary "
                          "--url URL`)")
    if probe.error:
        return ctx.result(Status.UNKNOWN, f"the canary could not run: {probe.error}")
    return judge(ctx, probe.data)


def judge(ctx: CheckContext, data: CanaryRun) -> Result:
    targets = list(data.targets)
    resources = [r for t in targets if (r := _resource(t)) is not None]
    skipped = list(data.skipped)
    if not targets:
        return ctx.result(Status.UNKNOWN, "no address to push to", skipped, resources)
    # Split storage first: among equally severe findings it names the pods and the cause.
    findings = _split_store(data.cross_reads, targets)
    findings += _failures(targets, data.in_cluster)
    findings += _delete_findings(targets)
    findings.sort(key=lambda f: -_RANK[f.status])
    # The summary tells the worst finding; the details list them all when there are several.
    details = [line for f in findings for line in
               ((_line(f), *f.lines) if len(findings) > 1 else f.lines)]
    details += _known_issue_details(ctx, [f for f in findings if f.status is Status.CRIT])
    details += [_timing(t) for t in targets]
    details += [n for t in targets for n in t.notes] + skipped
    details = list(dict.fromkeys(details))
    if not findings:
        return ctx.result(Status.OK, f"pushed, read back and deleted a canary image in "
                          f"{data.repository} through {_phrase(targets)}", details,
                          resources, phase_metrics(data))
    worst = findings[0]
    others = len(findings) - 1
    more = f" (and {others} more finding{'s' if others > 1 else ''})" if others else ""
    return ctx.result(worst.status, worst.text + more, details, resources, phase_metrics(data))


def phase_metrics(data: CanaryRun) -> dict[MetricKey, float]:
    """Per target kind (service, route, endpoint, url) and phase: success and the slowest
    duration, for the exporter. Bounded labels only: no repository, pod or address."""
    metrics: dict[MetricKey, float] = {}
    for target, phases in data.phases.items():
        for phase, observed in phases.items():
            labels = (("target", target), ("phase", phase))
            metrics[("canary_phase_success", labels)] = 1.0 if observed.ok else 0.0
            if observed.seconds is not None:
                metrics[("canary_phase_duration_seconds", labels)] = float(observed.seconds)
    return metrics


def _failures(targets: list[CanaryTarget], in_cluster: bool) -> list[Finding]:
    """One finding per distinct failure; the targets that share it are named together."""
    service_ok = any(t.kind == "service" and t.failure is None for t in targets)
    grouped: dict[tuple[Status, str], Finding] = {}
    for target in targets:
        failure = target.failure
        if failure is None:
            continue
        status = _status(target, failure, in_cluster, service_ok)
        text = _failure_text(failure, status, in_cluster)
        finding = grouped.setdefault((status, text), Finding(
            status, text, [], failure.evidence))
        finding.targets.append(target)
    return [Finding(f.status, f"through {_names(f.targets)}: {f.text}", f.targets, f.evidence)
            for f in grouped.values()]


def _status(target: CanaryTarget, failure: CanaryFailure, in_cluster: bool,
            service_ok: bool) -> Status:
    kind, cls = target.kind, failure.kind
    if cls == "auth":
        return Status.UNKNOWN  # the canary was not let in: nothing proven either way
    if cls == "read-only":
        return Status.WARN  # deliberate maintenance mode; pulls still work
    if not in_cluster and kind in ("service", "endpoint") and cls in ("unreachable", "timeout") \
            and failure.phase == "connect":
        return Status.UNKNOWN  # cluster and pod IPs are reachable only inside the cluster
    if kind == "route" and service_ok:
        return Status.WARN  # in-cluster clients work; the route seen from inside may differ
    return Status.CRIT


def _failure_text(failure: CanaryFailure, status: Status, in_cluster: bool) -> str:
    phase, cls, message = failure.phase, failure.kind, failure.message
    if cls == "read-only":
        return (f"pushes refused, the registry is in read-only maintenance mode "
                f"(storage.maintenance.readonly.enabled): {message}")
    if cls == "auth":
        return (f"the canary could not authenticate ({phase}): {message}; give the tool's "
                "account push and delete rights on the canary repository, or pass credentials")
    if status is Status.UNKNOWN and not in_cluster:
        return f"not reachable from this machine ({message}): run inside the cluster network"
    return f"{phase} failed ({cls}): {message}"


def _split_store(cross_reads: Sequence[CrossRead], targets: list[CanaryTarget]
                 ) -> list[Finding]:
    failed = [c for c in cross_reads if not c.ok]
    if not failed:
        return []
    involved = {name for c in failed for name in (c.written_via, c.read_via)}
    return [Finding(
        Status.CRIT,
        f"{len(failed)} of {len(cross_reads)} reads of an image pushed through another target "
        "failed: the registry replicas do not serve the same images (each has its own "
        "storage?); pulls succeed or fail depending on the pod that answers",
        [t for t in targets if t.name in involved],
        " ".join(str(c.message) for c in failed),
        tuple(f"pushed through {c.written_via}, read through {c.read_via}: "
              f"{c.message}" for c in failed))]


def _delete_findings(targets: list[CanaryTarget]) -> list[Finding]:
    disabled = [t for t in targets if t.delete == "disabled"]
    failed = [t for t in targets if t.delete.startswith(("denied", "failed"))]
    findings = []
    if disabled:
        findings.append(Finding(Status.WARN, (
            f"through {_names(disabled)}: the registry does not allow delete "
            "(storage.delete.enabled is not true): the canary image stays and image pruning "
            "fails too (`error deleting blob ... operation unsupported`)"), disabled))
    findings += [Finding(Status.WARN, f"through {t.name}: could not delete the canary "
                         f"image: {t.delete}", [t]) for t in failed]
    return findings


def _known_issue_details(ctx: CheckContext, crit: list[Finding]) -> list[str]:
    """Known S3/NFS signatures in the registry's answers and, when something failed, in the
    registry pods' logs (read before the canary ran: they show earlier occurrences)."""
    if not crit:
        return []
    lines = [f"known issue in the registry's answer: {issue.meaning}"
             for finding in crit for issue in find_known_issues(finding.evidence)]
    for (namespace, pod), text in sorted(ctx.snapshot.logs.items()):
        if ctx.snapshot.named("registry-pods", pod) is None:
            continue
        log_lines = text.splitlines()
        for issue in find_known_issues(text):
            hits = matching_lines(log_lines, issue)
            lines.append(f"pod/{namespace}/{pod} log (read before the canary): {len(hits)} "
                         f"lines match {issue.id} ({issue.meaning}), last: {hits[-1][:200]}")
    return lines


def _line(finding: Finding) -> str:
    return f"{finding.status.value}: {finding.text}"


def _timing(target: CanaryTarget) -> str:
    phases = ", ".join(
        f"{phase} {'ok' if o.ok else 'FAILED'}"
        + (f" {o.seconds:.3f}s" if o.seconds is not None else "")
        for phase, o in target.phases.items())
    image = (f"; {target.manifest_type} manifest {target.manifest}"
             if target.manifest else "")
    where = "" if target.address in target.name else f" at {target.address}"
    return (f"{target.name}{where} (auth: {target.auth}): "
            f"{phases or 'no phase ran'}; delete: {target.delete}{image}")


def _names(targets: Iterable[CanaryTarget]) -> str:
    return ", ".join(t.name for t in targets)


def _phrase(targets: list[CanaryTarget]) -> str:
    endpoints = [t for t in targets if t.kind == "endpoint"]
    named = [t.name for t in targets if t.kind != "endpoint"]
    if endpoints:
        named.append(f"{len(endpoints)} endpoint{'s' if len(endpoints) > 1 else ''}")
    return ", ".join(named)


def _resource(target: CanaryTarget) -> Resource | None:
    resource = target.resource
    return resource if resource is not None and resource.kind and resource.name else None
