"""What a Route serves as the routers admitted it, not as its spec asks.

A route's `spec.host` is a request: each router that admits the route records the host it
really serves in `status.ingress[]` (router subdomains and hostname overrides change it) with
an `Admitted` condition; a router that refuses it (e.g. `HostAlreadyClaimed`) says why there.
Source: openshift/api route/v1 `types.go` (RouteIngress, RouteIngressCondition).
Pure functions over a Route as the API (or `oc get -o yaml`) writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry_doctor.doctor.workload import as_dict, as_list


@dataclass(frozen=True)
class Admission:
    """One router's answer to a route."""

    router: str
    host: str | None
    admitted: bool | None  # None: the router has not answered (no Admitted condition)
    reason: str = ""
    message: str = ""


def admissions(route: dict[str, Any]) -> list[Admission]:
    """Each router's answer, as `status.ingress[]` records it."""
    answers = []
    for ingress in map(as_dict, as_list(as_dict(route.get("status")).get("ingress"))):
        condition = next((c for c in map(as_dict, as_list(ingress.get("conditions")))
                          if c.get("type") == "Admitted"), {})
        status = condition.get("status")
        host = ingress.get("host")
        answers.append(Admission(
            router=str(ingress.get("routerName") or "router"),
            host=host if isinstance(host, str) and host else None,
            admitted=None if status is None else status == "True",
            reason=str(condition.get("reason") or ""),
            message=str(condition.get("message") or "")))
    return answers


def requested_host(route: dict[str, Any] | None) -> str | None:
    host = as_dict(as_dict(route).get("spec")).get("host")
    return host if isinstance(host, str) and host else None


def served_hosts(route: dict[str, Any] | None) -> list[str]:
    """The hosts routers serve the route at: those of `status.ingress[]` admitted; a route
    without any router's answer (a dump without status) is taken at its `spec.host`."""
    answers = admissions(as_dict(route))
    if not answers:
        host = requested_host(route)
        return [host] if host else []
    return list(dict.fromkeys(a.host for a in answers if a.admitted and a.host))


def refusals(route: dict[str, Any] | None) -> list[Admission]:
    """The routers' refusals, when no router serves the route: why it is unreachable."""
    answers = admissions(as_dict(route))
    if any(a.admitted for a in answers):
        return []
    return [a for a in answers if a.admitted is False]


def describe_refusal(route: dict[str, Any], refusal: Admission) -> str:
    """The refusal as its route's status records it, quoted."""
    said = ": ".join(p for p in (refusal.reason, refusal.message) if p) or "no reason given"
    return (f"route {as_dict(route.get('metadata')).get('name')}: router {refusal.router} "
            f"refused host {refusal.host or requested_host(route)} (status.ingress Admitted "
            f"False, {said})")


def termination(route: dict[str, Any] | None) -> str | None:
    """`edge`, `passthrough`, `reencrypt`, or None for a plain-HTTP route."""
    value = as_dict(as_dict(as_dict(route).get("spec")).get("tls")).get("termination")
    return value.lower() if isinstance(value, str) and value else None


def destination_ca(route: dict[str, Any] | None) -> str | None:
    """The CA a reencrypt route's router verifies its backend with, when one is given."""
    value = as_dict(as_dict(as_dict(route).get("spec")).get("tls")).get("destinationCACertificate")
    return value if isinstance(value, str) and value.strip() else None
