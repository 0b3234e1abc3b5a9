"""What a request path names, as the API server's RequestInfoFactory resolves it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .profiles import Profile
from .resources import ResourceType

_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True)
class Target:
    verb: str  # the Kubernetes verb, or the lower-case method for non-resource paths
    resource: ResourceType | None = None  # None: a non-resource path such as discovery
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    proxy_path: str = ""  # nodes/<name>/proxy/<proxy_path>: the path on the kubelet

    @property
    def resource_name(self) -> str | None:
        """The resource as RBAC names it: `pods`, `pods/log`."""
        if self.resource is None:
            return None
        plural = self.resource.plural
        return f"{plural}/{self.subresource}" if self.subresource else plural


def parse_target(method: str, path: str, query: Mapping[str, str],
                 profile: Profile) -> Target | None:
    """The target of a request, a non-resource Target if the path is not under a served group
    version, or None when it names nothing served (answered 404)."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"] and len(parts) > 2:
        group, version, rest = "", "v1", parts[2:]
    elif parts[0] == "apis" and len(parts) > 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return Target(method.lower())
    return _resource_target(method, group, version, rest, query, profile)


def _resource_target(method: str, group: str, version: str, rest: list[str],
                     query: Mapping[str, str], profile: Profile) -> Target | None:
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    proxied = "/".join(rest[3:]) if len(rest) > 3 and rest[2] == "proxy" else ""
    if proxied:
        rest = rest[:3]
    if len(rest) > 3 or "" in rest:
        return None
    plural, name, subresource = (*rest, "", "")[:3]
    resource = profile.by_path(group, version, plural)
    if (resource is None or (namespace and not resource.namespaced)
            or (resource.namespaced and name and not namespace)
            or (subresource and resource.subresource(subresource) is None)):
        return None
    return Target(_verb(method, name, query), resource, subresource, namespace, name, proxied)


def _verb(method: str, name: str, query: Mapping[str, str]) -> str:
    if method == "GET":
        if name:
            return "get"
        return "watch" if query.get("watch") in ("true", "1") else "list"
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    return _VERBS.get(method, method.lower())
