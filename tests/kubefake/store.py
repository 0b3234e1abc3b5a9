"""The object store behind the fake: etcd plus the generic registry semantics of the real API
server (metadata the server owns, resourceVersion checks, status kept on object writes)."""

from __future__ import annotations

import copy
import random
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from . import errors
from .profiles import Profile
from .resources import ResourceType, by_name
from .selectors import FieldRequirement, Requirement

Obj = dict[str, Any]
Key = tuple[ResourceType, str, str]  # resource type, namespace ("" if cluster-scoped), name
NAMESPACES = by_name("namespaces")
_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apiserver names.SimpleNameGenerator


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ObjectStore:
    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._lock = threading.RLock()
        self._objects: dict[Key, Obj] = {}
        self._version = 0

    # direct access (test setup and assertions)

    def put(self, obj: Obj, keep_version: bool = False) -> Obj:
        """Store an object as given, filling metadata the server owns; no API checks."""
        resource = self.profile.for_object(obj)
        if resource is None:
            raise ValueError(f"the fake API server does not serve {obj.get('apiVersion')} "
                             f"{obj.get('kind')}")
        stored = copy.deepcopy(obj)
        stored["apiVersion"] = resource.api_version
        metadata = stored["metadata"]
        namespace = metadata.get("namespace", "") if resource.namespaced else ""
        with self._lock:
            metadata.setdefault("uid", str(uuid.uuid4()))
            metadata.setdefault("creationTimestamp", now())
            version = str(metadata.get("resourceVersion", ""))
            if keep_version and version.isdigit():
                self._version = max(self._version, int(version))
            else:
                metadata["resourceVersion"] = self._next_version()
            self._objects[(resource, namespace, metadata["name"])] = stored
            return copy.deepcopy(stored)

    def ensure_namespaces(self, names: Iterable[str]) -> None:
        for name in sorted(set(names) - set(self.namespaces())):
            self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                      "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})

    def namespaces(self) -> set[str]:
        with self._lock:
            return {name for (resource, _, name) in self._objects if resource is NAMESPACES}

    def snapshot(self, resource: ResourceType | None = None) -> list[Obj]:
        with self._lock:
            return [copy.deepcopy(obj) for key, obj in sorted(self._objects.items(), key=_order)
                    if resource is None or key[0] is resource]

    def find(self, resource: ResourceType, namespace: str, name: str) -> Obj | None:
        with self._lock:
            obj = self._objects.get((resource, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    # API verbs

    def list_objects(self, resource: ResourceType, namespace: str, labels: list[Requirement],
                     fields: list[FieldRequirement]) -> Obj:
        """A list as the server answers it: items of built-in (typed) lists carry no kind and
        apiVersion, only custom resources' do (kubernetes/kubernetes#3030)."""
        with self._lock:
            items = [obj for obj in self.snapshot(resource)
                     if (not namespace or obj["metadata"].get("namespace") == namespace)
                     and all(r.matches(obj["metadata"].get("labels") or {}) for r in labels)
                     and all(f.matches(obj) for f in fields)]
            if not resource.custom:
                items = [{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
                         for obj in items]
            return {"kind": f"{resource.kind}List", "apiVersion": resource.api_version,
                    "metadata": {"resourceVersion": str(self._version)}, "items": items}

    def get(self, resource: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.find(resource, namespace, name)
        if obj is None:
            raise errors.not_found(resource, name)
        return obj

    def create(self, resource: ResourceType, namespace: str, body: Obj, dry_run: bool) -> Obj:
        obj = _checked_body(resource, namespace, body)
        metadata = obj["metadata"]
        if metadata.get("resourceVersion"):
            raise errors.ApiError(500, "", "resourceVersion should not be set on objects to be "
                                  "created")
        with self._lock:
            if resource.namespaced and namespace not in self.namespaces():
                raise errors.not_found(NAMESPACES, namespace)
            name = metadata.get("name") or _generate_name(metadata.get("generateName"))
            if not name:
                raise errors.invalid(resource, "", "metadata.name", "FieldValueRequired",
                                     "Required value: name or generateName is required")
            if (resource, namespace, name) in self._objects:
                raise errors.already_exists(resource, name)
            metadata.update(name=name, uid=str(uuid.uuid4()), creationTimestamp=now(),
                            generation=1)
            if resource is NAMESPACES:
                obj.setdefault("spec", {"finalizers": ["kubernetes"]})
                obj["status"] = {"phase": "Active"}
            if not dry_run:
                metadata["resourceVersion"] = self._next_version()
                self._objects[(resource, namespace, name)] = copy.deepcopy(obj)
            return obj

    def replace(self, resource: ResourceType, namespace: str, name: str, body: Obj,
                dry_run: bool) -> Obj:
        obj = _checked_body(resource, namespace, body)
        if resource.custom and not obj["metadata"].get("resourceVersion"):
            raise errors.invalid(resource, name, "metadata.resourceVersion", "FieldValueInvalid",
                                 "Invalid value: 0x0: must be specified for an update")
        with self._lock:
            return self._update(resource, namespace, name, lambda _: obj, dry_run)

    def patch(self, resource: ResourceType, namespace: str, name: str,
              apply: Callable[[Obj], Obj], dry_run: bool) -> Obj:
        def patched(current: Obj) -> Obj:
            result = apply(current)
            if not isinstance(result, dict) or not isinstance(result.get("metadata"), dict):
                raise errors.bad_request("the patched object is not a Kubernetes object")
            return _checked_body(resource, namespace, result)

        with self._lock:
            return self._update(resource, namespace, name, patched, dry_run)

    def delete(self, resource: ResourceType, namespace: str, name: str, dry_run: bool) -> Obj:
        with self._lock:
            obj = self.get(resource, namespace, name)
            if not dry_run:
                del self._objects[(resource, namespace, name)]
                if resource is NAMESPACES:
                    self._delete_namespace_contents(name)
            return obj

    def _update(self, resource: ResourceType, namespace: str, name: str,
                change: Callable[[Obj], Obj], dry_run: bool) -> Obj:
        old = self.get(resource, namespace, name)
        new = change(copy.deepcopy(old))
        metadata = new["metadata"]
        if metadata.get("name") != name:
            raise errors.bad_request(f"the name of the object ({metadata.get('name')}) does not "
                                     f"match the name on the URL ({name})")
        if metadata.get("resourceVersion") not in (None, "", old["metadata"]["resourceVersion"]):
            raise errors.conflict(resource, name)
        _keep_server_fields(resource, old, new)
        if new == old:
            return new
        if new.get("spec") != old.get("spec"):
            metadata["generation"] = int(old["metadata"].get("generation") or 0) + 1
        if not dry_run:
            metadata["resourceVersion"] = self._next_version()
            self._objects[(resource, namespace, name)] = copy.deepcopy(new)
        return new

    def _delete_namespace_contents(self, namespace: str) -> None:
        for key in [k for k in self._objects if k[0].namespaced and k[1] == namespace]:
            del self._objects[key]

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)


def _order(item: tuple[Key, Obj]) -> tuple[str, str]:
    (_, namespace, name), _ = item
    return namespace, name


def _checked_body(resource: ResourceType, namespace: str, body: Any) -> Obj:
    """A copy of a request body with apiVersion, kind and namespace checked and defaulted."""
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body of the request is not a {resource.kind} object")
    obj = copy.deepcopy(body)
    api_version = obj.get("apiVersion") or resource.api_version
    if api_version != resource.api_version:
        raise errors.bad_request(f"the API version in the data ({api_version}) does not match "
                                 f"the expected API version ({resource.api_version})")
    if obj.get("kind") not in (None, "", resource.kind):
        raise errors.bad_request(f"the kind in the data ({obj['kind']}) does not match the "
                                 f"expected kind ({resource.kind})")
    obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
    metadata = obj.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise errors.bad_request("metadata must be an object")
    given = metadata.get("namespace") or ""
    if resource.namespaced and given not in ("", namespace):
        raise errors.bad_request("the namespace of the provided object does not match the "
                                 "namespace sent on the request")
    if resource.namespaced:
        metadata["namespace"] = namespace
    else:
        metadata.pop("namespace", None)
    return obj


def _keep_server_fields(resource: ResourceType, old: Obj, new: Obj) -> None:
    """Metadata the server owns, and the status when it is a subresource, stay as stored."""
    for field in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
        if field in old["metadata"]:
            new["metadata"][field] = old["metadata"][field]
        else:
            new["metadata"].pop(field, None)
    new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
    if resource.has_status:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)


def _generate_name(prefix: Any) -> str:
    if not isinstance(prefix, str) or not prefix:
        return ""
    return prefix + "".join(random.choices(_NAME_SUFFIX_ALPHABET, k=5))
