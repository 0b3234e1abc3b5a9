"""Denials configured by tests, reported as the RBAC authorizer reports them."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from . import errors
from .resources import ResourceType


@dataclass(frozen=True)
class DenyRule:
    resource: str  # "pods", "pods/log" or "*"
    verb: str  # "list", "get", ... or "*"
    namespace: str | None  # None: every namespace

    def matches(self, resource: str, verb: str, namespace: str) -> bool:
        # A request across all namespaces ("") reads the denied namespace too, so it is denied.
        in_scope = self.namespace is None or namespace in ("", self.namespace)
        return self.resource in ("*", resource) and self.verb in ("*", verb) and in_scope


class Authorizer:
    def __init__(self, user: str) -> None:
        self.user = user
        self._rules: list[DenyRule] = []
        self._lock = threading.Lock()

    def forbid(self, resource: str, verb: str = "*", namespace: str | None = None) -> None:
        with self._lock:
            self._rules.append(DenyRule(resource, verb, namespace))

    def denies(self, resource: str, verb: str, namespace: str) -> bool:
        with self._lock:
            return any(rule.matches(resource, verb, namespace) for rule in self._rules)

    def forbidden(self, resource: ResourceType, subresource: str, verb: str, namespace: str,
                  name: str) -> errors.ApiError:
        """The error of the real authorization filter (apiserver responsewriters.Forbidden)."""
        full = f"{resource.plural}/{subresource}" if subresource else resource.plural
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        reason = (f'User "{self.user}" cannot {verb} resource "{full}" in API group '
                  f'"{resource.group}" {scope}')
        return errors.forbidden(resource, name, reason)

    def allowed_reason(self) -> str:
        return (f'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole '
                f'"cluster-admin" to User "{self.user}"')
