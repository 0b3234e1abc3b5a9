"""Authorization as the RBAC authorizer decides it: denials configured by tests, and, once
`restrict` loaded Roles and bindings, only what their rules allow (resourceNames included)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import errors
from .resources import ResourceType


@dataclass(frozen=True)
class Attributes:
    """What a request asks, as the API server's RequestInfo resolves it."""

    group: str
    resource: str  # "pods", or "pods/log" with its subresource
    verb: str
    namespace: str  # "" for cluster-scoped objects and requests across all namespaces
    name: str = ""

    @classmethod
    def of(cls, group: str, resource: str, verb: str, namespace: str, name: str,
           query: Mapping[str, str]) -> Attributes:
        """A list or watch names an object when its field selector requires metadata.name
        exactly (apiserver pkg/endpoints/request/requestinfo.go), so a rule with
        resourceNames can allow it."""
        if verb in ("list", "watch") and not name:
            name = _selected_name(query.get("fieldSelector", ""))
        return cls(group, resource, verb, namespace, name)


def _selected_name(selector: str) -> str:
    for requirement in selector.split(","):
        field, operator, value = requirement.strip().partition("==" if "==" in requirement
                                                               else "=")
        if field.strip() == "metadata.name" and operator and not field.endswith("!"):
            return value.strip()
    return ""


@dataclass(frozen=True)
class DenyRule:
    resource: str  # "pods", "pods/log" or "*"
    verb: str  # "list", "get", ... or "*"
    namespace: str | None  # None: every namespace

    def matches(self, request: Attributes) -> bool:
        # A request across all namespaces ("") reads the denied namespace too, so it is denied.
        in_scope = self.namespace is None or request.namespace in ("", self.namespace)
        return self.resource in ("*", request.resource) and self.verb in ("*", request.verb) \
            and in_scope


@dataclass(frozen=True)
class PolicyRule:
    """A Role or ClusterRole rule, where a binding makes it apply: in `namespace` (a
    RoleBinding), or everywhere, cluster scope included (None: a ClusterRoleBinding)."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    resource_names: tuple[str, ...]
    namespace: str | None

    @classmethod
    def of(cls, rule: Mapping[str, Any], namespace: str | None) -> PolicyRule:
        return cls(tuple(rule.get("apiGroups") or ()), tuple(rule.get("resources") or ()),
                   tuple(rule.get("verbs") or ()), tuple(rule.get("resourceNames") or ()),
                   namespace)

    def allows(self, request: Attributes) -> bool:
        """RuleAllows (plugin/pkg/auth/authorizer/rbac/rbac.go): verb, API group, resource
        (`*`, exact, or `*/<subresource>`) and, when the rule lists resourceNames, the request's
        name among them: so such a rule never allows a create without a name, nor a list or
        watch that names no object."""
        if self.namespace is not None and request.namespace != self.namespace:
            return False
        subresource = request.resource.partition("/")[2]
        resource_matches = any(r in ("*", request.resource) or
                               (subresource and r == f"*/{subresource}")
                               for r in self.resources)
        return (any(v in ("*", request.verb) for v in self.verbs)
                and any(g in ("*", request.group) for g in self.api_groups)
                and resource_matches
                and (not self.resource_names or request.name in self.resource_names))


def bound_rules(manifests: Iterable[Mapping[str, Any]], namespace: str, account: str
                ) -> list[PolicyRule]:
    """The rules the Roles and ClusterRoles among `manifests` give service account
    `namespace`/`account` through the bindings among them."""
    manifests = list(manifests)
    roles = {(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]): m
             for m in manifests if m["kind"] in ("Role", "ClusterRole")}
    found = []
    for binding in manifests:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding") or not any(
                s.get("kind") == "ServiceAccount" and s.get("name") == account
                and s.get("namespace") == namespace for s in binding.get("subjects") or ()):
            continue
        where = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" \
            else None
        ref = binding["roleRef"]
        role = roles.get((ref["kind"], where if ref["kind"] == "Role" else None, ref["name"]))
        found += [PolicyRule.of(rule, where) for rule in (role or {}).get("rules") or ()]
    return found


class Authorizer:
    def __init__(self, user: str) -> None:
        self.user = user
        self._rules: list[DenyRule] = []
        self._policy: list[PolicyRule] | None = None  # None: everything not denied is allowed
        self._lock = threading.Lock()

    def forbid(self, resource: str, verb: str = "*", namespace: str | None = None) -> None:
        with self._lock:
            self._rules.append(DenyRule(resource, verb, namespace))

    def restrict(self, user: str, rules: Iterable[PolicyRule]) -> None:
        """From now on, act as `user` and allow only what `rules` allow."""
        with self._lock:
            self.user, self._policy = user, list(rules)

    def denies(self, request: Attributes) -> bool:
        with self._lock:
            if any(rule.matches(request) for rule in self._rules):
                return True
            return self._policy is not None and not any(r.allows(request)
                                                        for r in self._policy)

    def forbidden(self, resource: ResourceType, subresource: str, verb: str, namespace: str,
                  name: str) -> errors.ApiError:
        """The error of the real authorization filter (apiserver responsewriters.Forbidden)."""
        full = f"{resource.plural}/{subresource}" if subresource else resource.plural
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        reason = (f'User "{self.user}" cannot {verb} resource "{full}" in API group '
                  f'"{resource.group}" {scope}')
        return errors.forbidden(resource, name, reason)

    def allowed_reason(self) -> str:
        if self._policy is not None:
            return f'RBAC: allowed by the roles bound to "{self.user}"'
        return (f'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole '
                f'"cluster-admin" to User "{self.user}"')
