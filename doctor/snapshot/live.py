"""A `Source` over a live API server, through the client layer."""

from __future__ import annotations

from typing import Any

from registry_doctor.doctor.config import setting
from registry_doctor.doctor.kube import KubeClient, KubeError, Target, api_path
from registry_doctor.doctor.snapshot import CollectError
from registry_doctor.doctor.snapshot.kinds import LOG_TAIL_BYTES, Collection, Query

NO_PREVIOUS = "previous terminated container"


class LiveSource:
    def __init__(self, client: KubeClient) -> None:
        self.client = client

    def describe(self) -> dict[str, Any]:
        return {"type": "cluster", "server": self.client.server, "context": self.client.context}

    def fetch(self, collection: Collection, query: Query, timeout: float) -> list[dict]:
        namespace = query.namespace if collection.namespaced else None
        target = Target("get" if query.name else "list", collection.resource, namespace,
                        query.name)
        path = api_path(collection.api_version, collection.resource, namespace, query.name)
        params = {k: v for k, v in (("labelSelector", query.label_selector),
                                    ("fieldSelector", query.field_selector)) if v}
        try:
            answer = self.client.request("GET", path, target, timeout=timeout, query=params)
        except KubeError as error:
            if error.status == 404 and query.name and error.reason == "NotFound":
                return []  # the object is absent: a fact, not a failure
            if error.status == 404 and collection.optional_group:
                return []  # the API group is not served: there are none of these
            if error.status == 404:
                raise CollectError(f"not served: the API server has no "
                                   f"{collection.api_version} {collection.resource}") from None
            if error.status == 403 and query.name and collection.names:
                raise CollectError(f"{error}: the chart grants these by name only; if it is "
                                   "the registry's or the console's, list it in "
                                   + " or ".join(setting(s) for s in collection.names)
                                   ) from None
            raise CollectError(str(error), source_failed=error.unreachable) from None
        return _objects(answer, collection, target)

    def pod_log(self, namespace: str, pod: str, tail_lines: int, timeout: float) -> str:
        try:
            return self._log(namespace, pod, tail_lines, timeout, {})
        except KubeError as error:
            raise CollectError(str(error)) from None

    def previous_log(self, namespace: str, pod: str, container: str, tail_lines: int,
                     timeout: float) -> str | None:
        try:
            return self._log(namespace, pod, tail_lines, timeout,
                             {"container": container, "previous": "true"})
        except KubeError as error:
            # The kubelet answers 400 `previous terminated container "c" in pod "p" not
            # found` when the runtime kept no previous instance (kubernetes
            # pkg/kubelet/kubelet_pods.go validateContainerLogStatus, pkg/kubelet/server/
            # server.go getContainerLogs): a fact, not a failure.
            if error.status == 400 and NO_PREVIOUS in str(error):
                return None
            raise CollectError(str(error)) from None

    def _log(self, namespace: str, pod: str, tail_lines: int, timeout: float,
             options: dict[str, str]) -> str:
        target = Target("get", "pods/log", namespace, pod)
        return self.client.request(
            "GET", api_path("v1", "pods", namespace, pod, "log"), target, timeout=timeout,
            # The kubelet counts limitBytes from the start of the tail: a tail of long lines
            # loses its newest ones, but the memory stays bounded.
            query={**options, "tailLines": str(tail_lines), "limitBytes": str(LOG_TAIL_BYTES)},
            raw=True)


    def api_groups(self, timeout: float) -> frozenset[str]:
        # Discovery: every authenticated user may read it (role system:discovery).
        try:
            answer = self.client.request("GET", "/apis", Target("get", "API groups"),
                                         timeout=timeout)
        except KubeError as error:
            raise CollectError(str(error), source_failed=error.unreachable) from None
        groups = answer.get("groups") if isinstance(answer, dict) else None
        return frozenset(str(g["name"]) for g in groups or () if isinstance(g, dict)
                         and isinstance(g.get("name"), str))


def _objects(answer: Any, collection: Collection, target: Target) -> list[dict]:
    """List items (or the one object) with kind and apiVersion set, as in a dump."""
    if not isinstance(answer, dict):
        raise CollectError(f"unexpected answer to {target}: not an object")
    items = answer.get("items") if "items" in answer else [answer]
    if not isinstance(items, list):
        raise CollectError(f"unexpected answer to {target}: items is not a list")
    objects = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("metadata"), dict) \
                and isinstance(item["metadata"].get("name"), str):
            objects.append({"kind": collection.kind, "apiVersion": collection.api_version,
                            **item})
    return objects
