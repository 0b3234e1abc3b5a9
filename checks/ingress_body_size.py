"""ingress-body-size: an ingress-nginx Ingress in front of the registry must not cap request
bodies below a layer's size.

kubernetes/ingress-nginx `docs/user-guide/nginx-configuration/annotations.md` ("Custom max
body size"): "A 413 error will be returned to the client when the size in a request exceeds
the maximum allowed size of the client request body. This size can be configured by the
parameter client_max_body_size and is set to 1m (1 Megabyte) by default", per Ingress with
`nginx.ingress.kubernetes.io/proxy-body-size`, for all Ingresses with `proxy-body-size` in the
controller's ConfigMap (`configmap.md`). nginx `ngx_http_core_module` (client_max_body_size):
"Setting size to 0 disables checking of client request body size." A push sends each layer as
one request body: with the default, every layer over 1 MiB fails with 413.
"""

from __future__ import annotations

import re
from typing import Any

from registry_doctor.doctor.check import CheckContext
from registry_doctor.doctor.model import CheckMeta, Resource, Result, Severity, Status
from registry_doctor.doctor.workload import WORKLOAD_KINDS, as_dict

META = CheckMeta(
    id="ingress-body-size",
    title="An ingress-nginx Ingress lets layers through",
    severity=Severity.CRIT,
    kinds=(*WORKLOAD_KINDS, "services", "ingresses"),
    description=(
        "The Ingresses of the registry namespace (networking.k8s.io/v1) with a rule or default "
        "backend on the registry's Service, served by ingress-nginx (ingressClassName or the "
        "kubernetes.io/ingress.class annotation `nginx`, or nginx.ingress.kubernetes.io "
        "annotations). Their `nginx.ingress.kubernetes.io/proxy-body-size` annotation (nginx "
        "sizes: bytes, k, m, g; `0` disables the limit) caps each request body, and a push "
        "sends each layer as one: crit at 1m or less (any real image fails with 413), warn "
        "below 1g (larger layers fail) and when the annotation is absent (ingress-nginx's "
        "default is 1m unless proxy-body-size in the controller's ConfigMap, which "
        "registry-doctor does not read, raises it); ok for 0 or 1g and more, and for "
        "Ingresses of other controllers."
    ),
    remediation=(
        "Lift the limit on the registry's Ingress: `$cli annotate ingress/<name> -n $namespace "
        "nginx.ingress.kubernetes.io/proxy-body-size=0 --overwrite` (0: no limit); with the "
        "twuni/docker-registry chart set it in `ingress.annotations` of your values instead, "
        "or Helm reverts it."
    ),
    platforms=("kubernetes",),
    platform_note="OpenShift exposes its registry through Routes served by its HAProxy "
                  "router, not through ingress-nginx",
)

ANNOTATION = "nginx.ingress.kubernetes.io/proxy-body-size"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT = "1m"  # ingress-nginx configmap.md: proxy-body-size
MEBIBYTE, GIBIBYTE = 1024 ** 2, 1024 ** 3
# nginx sizes (nginx docs, "Syntax": "Sizes can be specified in bytes, kilobytes (k, K),
# megabytes (m, M), or gigabytes (g, G)").
_SIZE = re.compile(r"(\d+)([kKmMgG]?)")
_UNITS = {"": 1, "k": 1024, "m": MEBIBYTE, "g": GIBIBYTE}


def evaluate(ctx: CheckContext) -> Result:
    ctx.registry()  # not evaluable without the registry whose Service they would route to
    ingresses = ctx.installation.ingresses()
    service = ctx.installation.service_name
    if not ingresses:
        return ctx.result(Status.OK, f"no Ingress routes to svc/{service}: nothing caps "
                          "request bodies in front of the registry")
    verdicts = [_judge(i) for i in ingresses]
    worst = max(verdicts, key=lambda v: _RANK[v[0]])[0]
    details = [line for _, line, _ in verdicts]
    resources = [Resource("Ingress", i["metadata"]["name"], ctx.config.namespace)
                 for i in ingresses]
    failing = [v for v in verdicts if v[0] is worst]
    if worst is Status.OK:
        return ctx.result(Status.OK, f"{len(ingresses)} Ingress(es) to svc/{service} let "
                          "layers of any size through", details, resources)
    limits = ", ".join(f"ingress/{name}" for *_, name in failing)
    summary = (f"{limits} cap{'s' if len(failing) == 1 else ''} request bodies at 1 MiB or "
               "less: every push of a layer above it fails with 413 Request Entity Too Large"
               if worst is Status.CRIT else
               f"{limits} may cap request bodies below a layer's size: pushes of larger "
               "layers fail with 413 Request Entity Too Large")
    return ctx.result(worst, summary, details, resources)


_RANK = {Status.OK: 0, Status.WARN: 1, Status.CRIT: 2}


def _judge(ingress: dict[str, Any]) -> tuple[Status, str, str]:
    """(verdict, evidence line, name) for one Ingress."""
    name = ingress["metadata"]["name"]
    metadata = as_dict(ingress.get("metadata"))
    annotations = as_dict(metadata.get("annotations"))
    spec_class = as_dict(ingress.get("spec")).get("ingressClassName")
    ingress_class = spec_class or annotations.get(CLASS_ANNOTATION)
    nginx = ingress_class == "nginx" or any(str(k).startswith("nginx.ingress.kubernetes.io/")
                                            for k in annotations)
    where = f"ingress/{name} (class {ingress_class or 'not set'})"
    if not nginx:
        return Status.OK, f"{where}: not served by ingress-nginx, not judged", name
    value = annotations.get(ANNOTATION)
    if value is None:
        return (Status.WARN, f"{where}: no {ANNOTATION}: ingress-nginx's default {DEFAULT} "
                "applies unless proxy-body-size in the controller's ConfigMap raises it", name)
    size = _bytes(str(value))
    shown = f"{where}: {ANNOTATION}={value}"
    if size is None:
        return Status.WARN, f"{shown}: not an nginx size (bytes, k, m or g)", name
    if size == 0:
        return Status.OK, f"{shown}: no limit", name
    if size <= MEBIBYTE:
        return Status.CRIT, f"{shown}: layers above {value} fail with 413", name
    if size < GIBIBYTE:
        return Status.WARN, f"{shown}: layers above {value} fail with 413", name
    return Status.OK, f"{shown}: at least 1 GiB", name


def _bytes(text: str) -> int | None:
    match = _SIZE.fullmatch(text.strip())
    return int(match.group(1)) * _UNITS[match.group(2).lower()] if match else None
