"""besteffort-qos: the registry pod must not run in the BestEffort QoS class.

"Deploying a Registry on Existing Clusters" (OpenShift Origin 3.x docs),
"Registry Compute Resources": without requests or limits the registry pod is BestEffort,
the first pod the kubelet kills under memory pressure, taking every push and pull with it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from registry_doctor.doctor.check import CheckContext
from registry_doctor.doctor.fix.model import Action
from registry_doctor.doctor.fix.permissions import PATCH_OPERATOR_CONFIG, PATCH_WORKLOAD, REDEPLOY
from registry_doctor.doctor.fix.plan import PlanContext, planner
from registry_doctor.doctor.model import CheckMeta, CheckOption, Resource, Result, Severity, Status
from registry_doctor.doctor.quantity import QuantityError, parse_quantity
from registry_doctor.doctor.workload import WORKLOAD_KINDS, Workload, as_dict, as_list

META = CheckMeta(
    id="besteffort-qos",
    title="Registry pods have compute resource requests",
    severity=Severity.CRIT,
    kinds=(*WORKLOAD_KINDS, "registry-pods", "limitranges", "registry-operator-config"),
    description=(
        "The registry pod's QoS class, read from the running pods' status.qosClass, or, when "
        "no registry pod runs, computed from the pod template exactly as Kubernetes does "
        "(cpu and memory only, init containers included, limits defaulting missing requests, "
        "and the defaults a LimitRange in the namespace would inject). BestEffort is crit. "
        "Burstable and Guaranteed are ok: Burstable without a memory limit is what "
        "`oc adm registry` itself creates in 3.11, so it is reported but not flagged."
    ),
    remediation=(
        "Set compute requests on the registry container, as `oc adm registry` does in 3.11: "
        "`$cli set resources $registry -n $namespace --requests=cpu=100m,memory=256Mi` "
        "(a new deployment follows). Add limits too if the node is shared with noisy workloads."
    ),
    platform_remediation={
        "openshift4": (
            "The operator's Config CR sets the registry's resources: `spec.resources` replaces "
            "its default requests (100m CPU, 256Mi memory) whole, so `resources: {}` gives "
            "BestEffort pods. Set requests there (a change to the Deployment is reverted): "
            "`$cli patch $owner --type merge -p '{\"spec\":{\"resources\":{\"requests\":"
            "{\"cpu\":\"100m\",\"memory\":\"256Mi\"}}}}'`; the operator rolls the registry "
            "out."),
    },
    options=(
        CheckOption("--requests-cpu", "requests_cpu", "CPU request to set.", type="quantity",
                    default="100m", fix=True),
        CheckOption("--requests-memory", "requests_memory", "Memory request to set.",
                    type="quantity", default="256Mi", fix=True),
        CheckOption("--limits-cpu", "limits_cpu", "Also set this CPU limit.", type="quantity",
                    fix=True),
        CheckOption("--limits-memory", "limits_memory", "Also set this memory limit.",
                    type="quantity", fix=True),
    ),
)

BEST_EFFORT, BURSTABLE, GUARANTEED = "BestEffort", "Burstable", "Guaranteed"
COMPUTE = ("cpu", "memory")


def evaluate(ctx: CheckContext) -> Result:
    workload = ctx.registry()
    running = [p for p in ctx.installation.pods()
               if as_dict(p.get("status")).get("phase") == "Running"]
    template_class, template_details = template_qos(workload, ctx.snapshot.items("limitranges"))
    template_details += ctx.installation.owner_says("resources")  # what the operator renders
    if running:
        return _judge_running(ctx, workload, running, template_class, template_details)
    return _judge_template(ctx, workload, template_class, template_details)


def _judge_running(ctx: CheckContext, workload: Workload, pods: list[dict[str, Any]],
                   template_class: str, template_details: list[str]) -> Result:
    classes = {p["metadata"]["name"]: _pod_class(p) for p in pods}
    details = [f"pod/{name} status.qosClass={qos}" for name, qos in sorted(classes.items())]
    resources = [workload.resource, *(Resource("Pod", n, workload.namespace) for n in classes)]
    best_effort = sorted(n for n, qos in classes.items() if qos == BEST_EFFORT)
    if not best_effort:
        observed = ", ".join(sorted(set(classes.values())))
        return ctx.result(Status.OK, f"registry pods run as {observed}", details, resources)
    details += template_details
    if template_class != BEST_EFFORT:
        details.append(f"{workload.ref} template would now give {template_class}: the running "
                       "pods predate the change; a new rollout fixes them")
    return ctx.failed(f"{len(best_effort)} of {len(classes)} registry pods run BestEffort "
                      f"({', '.join(best_effort)}): evicted first under node memory pressure",
                      details, resources)


def _judge_template(ctx: CheckContext, workload: Workload, template_class: str,
                    template_details: list[str]) -> Result:
    details = [f"no running registry pod: QoS computed from {workload.ref} pod template",
               *template_details]
    if template_class == BEST_EFFORT:
        return ctx.failed(f"{workload.ref} pods would run BestEffort: no cpu or memory "
                          "requests or limits", details, [workload.resource])
    return ctx.result(Status.OK, f"{workload.ref} pods would run {template_class}", details,
                      [workload.resource])


def _pod_class(pod: dict[str, Any]) -> str:
    qos = as_dict(pod.get("status")).get("qosClass")
    if qos in (BEST_EFFORT, BURSTABLE, GUARANTEED):
        return qos
    return qos_class(_pod_containers(as_dict(pod.get("spec"))), defaults=None)[0]


def _pod_containers(pod_spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for field in ("initContainers", "containers"):
        for index, container in enumerate(as_list(pod_spec.get(field))):
            container = as_dict(container)
            label = container.get("name") if isinstance(container.get("name"), str) else index
            found.append((f"spec.template.spec.{field}[{label}]", container))
    return found


def template_qos(workload: Workload, limit_ranges: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The QoS class pods of `workload` would get, with evidence lines."""
    defaults = _limit_range_defaults(limit_ranges)
    qos, details = qos_class(_pod_containers(workload.pod_spec), defaults)
    return qos, [line.replace("spec.template", f"{workload.ref} spec.template", 1)
                 for line in details]


def qos_class(containers: Iterable[tuple[str, dict[str, Any]]],
              defaults: tuple[dict[str, Any], dict[str, Any], str] | None
              ) -> tuple[str, list[str]]:
    """Kubernetes' QoS rules (pkg/apis/core/helper/qos) over template containers."""
    details: list[str] = []
    any_set, guaranteed = False, True
    for path, container in containers:
        resources = as_dict(container.get("resources"))
        limits = _positive(as_dict(resources.get("limits")), f"{path}.resources.limits", details)
        requests = _positive(as_dict(resources.get("requests")), f"{path}.resources.requests",
                             details)
        if defaults:
            _inject_defaults(limits, requests, defaults, path, details)
        requests = {**limits, **requests}  # API defaulting copies limits into missing requests
        details.append(f"{path}.resources: requests {_show(requests)}, limits {_show(limits)}")
        any_set = any_set or bool(limits or requests)
        guaranteed = guaranteed and all(
            r in limits and r in requests and requests[r][0] == limits[r][0] for r in COMPUTE)
    if not any_set:
        return BEST_EFFORT, details
    return (GUARANTEED if guaranteed else BURSTABLE), details


def _positive(values: dict[str, Any], path: str, details: list[str]) -> dict[str, Any]:
    """cpu and memory quantities greater than zero, the only ones QoS counts, as
    name -> (value, text as written)."""
    kept = {}
    for name in COMPUTE:
        if name not in values:
            continue
        try:
            quantity = parse_quantity(values[name])
        except QuantityError as error:
            details.append(f"{path}.{name}: {error} (ignored, the API server would refuse it)")
            continue
        if quantity > 0:
            kept[name] = (quantity, str(values[name]))
    return kept


def _limit_range_defaults(limit_ranges: list[dict[str, Any]]
                          ) -> tuple[dict[str, Any], dict[str, Any], str] | None:
    """Container defaults a LimitRange injects at pod creation: (limits, requests, source)."""
    for limit_range in limit_ranges:
        for index, item in enumerate(as_list(as_dict(limit_range.get("spec")).get("limits"))):
            item = as_dict(item)
            if item.get("type") != "Container":
                continue
            default_limits = as_dict(item.get("default"))
            # LimitRange defaulting: defaultRequest falls back to default.
            default_requests = as_dict(item.get("defaultRequest")) or default_limits
            if default_limits or default_requests:
                source = f"limitrange/{limit_range['metadata']['name']} spec.limits[{index}]"
                return default_limits, default_requests, source
    return None


def _inject_defaults(limits: dict[str, Any], requests: dict[str, Any],
                     defaults: tuple[dict[str, Any], dict[str, Any], str], path: str,
                     details: list[str]) -> None:
    default_limits, default_requests, source = defaults
    injected = []
    for target, values, label in ((limits, default_limits, "limits"),
                                  (requests, default_requests, "requests")):
        for name, quantity in _positive(values, source, details).items():
            if name not in target:
                target[name] = quantity
                injected.append(f"{label}.{name}")
    if injected:
        details.append(f"{path}: {source} injects {', '.join(injected)}")


def _show(values: dict[str, Any]) -> str:
    return ", ".join(f"{name}={text}" for name, (_, text) in sorted(values.items())) or "none"


@planner(*PATCH_WORKLOAD, *REDEPLOY, PATCH_OPERATOR_CONFIG, reads=("registry-operator-config",))
def plan(ctx: PlanContext) -> list[Action]:
    """Requests (and limits, when asked) on the registry container, then a redeploy; only the
    redeploy when the template already holds them and the running pods predate it. Where an
    operator owns the configuration: its spec.resources, which it renders into the
    Deployment (and rolls out itself)."""
    workload = ctx.registry()
    found = workload.main_container(ctx.config.registry_container) if workload else None
    if workload is None or found is None:
        return []
    template_class, _ = template_qos(workload, ctx.snapshot.items("limitranges"))
    if template_class != BEST_EFFORT:
        if ctx.operated:  # the operator rolls out what it rendered
            return []
        return [ctx.redeploy(workload, "redeploy", f"redeploy {workload.ref}: its template "
                             f"already gives {template_class} pods, the running ones predate it")]
    index, container = found
    options = ctx.options
    wanted = {"requests": {"cpu": options.requests_cpu, "memory": options.requests_memory},
              "limits": {k: v for k, v in (("cpu", options.limits_cpu),
                                           ("memory", options.limits_memory)) if v}}
    shown = "; ".join(f"{field} " + ", ".join(f"{k}={v}" for k, v in values.items())
                      for field, values in wanted.items() if values)
    if ctx.operated:
        return [ctx.configure({"resources": {f: v for f, v in wanted.items() if v}},
                              "set-resources", f"set {shown} in {ctx.installation.owner} "
                              "spec.resources (it replaces the operator's default requests "
                              "whole)")]
    after = copy.deepcopy(workload.obj)
    target = after["spec"]["template"]["spec"]["containers"][index]
    resources = as_dict(target.get("resources"))
    for field, values in wanted.items():
        if values:
            resources[field] = {**as_dict(resources.get(field)), **values}
    target["resources"] = resources
    return [ctx.patch(workload.obj, after, "set-resources",
                      f"set {shown} on {workload.ref} container "
                      f"{container.get('name', index)}", redeploy=workload)]
