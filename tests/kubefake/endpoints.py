"""Answers to API requests: discovery, and the Kubernetes verbs on the served resources."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from . import errors, protobuf
from .deployer import Deployer
from .discovery import discovery_response
from .patches import PatchError, json_patch, merge_patch, strategic_merge_patch
from .rbac import Attributes, Authorizer
from .resources import ResourceType, by_name
from .responses import Response, json_response, not_found_page
from .routing import Target
from .selectors import (
    FieldRequirement,
    Requirement,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from .store import NAMESPACES, Obj, ObjectStore

PODS = by_name("pods")
ACCESS_REVIEWS = by_name("selfsubjectaccessreviews")
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes
    target: Target | None


@dataclass(frozen=True)
class DeploymentRequestRecord:
    """A POST to deploymentconfigs/NAME/instantiate (what `oc rollout latest` sends)."""

    namespace: str
    name: str
    request: dict[str, Any]


class Endpoints:
    def __init__(self, store: ObjectStore, logs: Mapping[tuple[str, str], str],
                 authorizer: Authorizer, deployment_requests: list[DeploymentRequestRecord],
                 deployer: Deployer,
                 previous_logs: Mapping[tuple[str, str, str], str] | None = None) -> None:
        self.store, self.logs, self.authorizer = store, logs, authorizer
        self.previous_logs = previous_logs or {}
        self.deployment_requests = deployment_requests
        self.deployer = deployer

    def answer(self, request: Request) -> Response:
        target = request.target
        if target is None:
            return not_found_page()
        if target.resource is None:
            if request.method != "GET":
                return not_found_page()
            return discovery_response(request.path, request.headers, self.store.profile)
        try:
            return self._resource_request(request, target, target.resource)
        except errors.ApiError as error:
            return json_response(error.code, error.status())

    def _resource_request(self, request: Request, target: Target,
                          resource: ResourceType) -> Response:
        if self.authorizer.denies(Attributes.of(resource.group, target.resource_name or "",
                                                target.verb, target.namespace, target.name,
                                                request.query)):
            raise self.authorizer.forbidden(resource, target.subresource, target.verb,
                                            target.namespace, target.name)
        subresource = resource.subresource(target.subresource)
        verbs = subresource.verbs if subresource else resource.verbs
        if target.verb not in verbs or target.verb == "watch":
            raise errors.method_not_supported(resource, target.verb)
        handlers: dict[str, Callable[[Request, Target, ResourceType], Response]] = {
            "get": self._get,
            "list": self._list,
            "create": self._create,
            "update": self._update,
            "patch": self._patch,
            "delete": self._delete,
            "deletecollection": self._delete_collection,
        }
        return handlers[target.verb](request, target, resource)

    def _get(self, request: Request, target: Target, resource: ResourceType) -> Response:
        if target.subresource == "log":
            return self._pod_log(request.query, target)
        return json_response(200, self.store.get(resource, target.namespace, target.name))

    def _list(self, request: Request, target: Target, resource: ResourceType) -> Response:
        labels, fields = _selectors(request.query, resource)
        return json_response(200, self.store.list_objects(resource, target.namespace, labels,
                                                          fields))

    def _create(self, request: Request, target: Target, resource: ResourceType) -> Response:
        if resource is ACCESS_REVIEWS:
            return self._review(_object_body(request))
        if target.subresource == "instantiate":
            return self._instantiate(_object_body(request), target, resource)
        dry_run = self._dry_run(request.query)
        obj = self.store.create(resource, target.namespace, _body(request), dry_run)
        if not dry_run:
            self.deployer.created(resource, copy.deepcopy(obj))
        return json_response(201, obj)

    def _update(self, request: Request, target: Target, resource: ResourceType) -> Response:
        dry_run = self._dry_run(request.query)
        before = self.store.find(resource, target.namespace, target.name)
        obj = self.store.replace(resource, target.namespace, target.name, _body(request), dry_run)
        if not dry_run:
            self.deployer.written(resource, before, copy.deepcopy(obj))
        return json_response(200, obj)

    def _patch(self, request: Request, target: Target, resource: ResourceType) -> Response:
        accepted = [JSON_PATCH, MERGE_PATCH] + ([] if resource.custom else [STRATEGIC_PATCH])
        content_type = request.headers.get("Content-Type", "").partition(";")[0].strip()
        if content_type not in accepted:
            raise errors.unsupported_media_type(accepted)
        apply = _patcher(content_type, _json(request.body))
        dry_run = self._dry_run(request.query)
        before = self.store.find(resource, target.namespace, target.name)
        obj = self.store.patch(resource, target.namespace, target.name, apply, dry_run)
        if not dry_run:
            self.deployer.written(resource, before, copy.deepcopy(obj))
        return json_response(200, obj)

    def _delete(self, request: Request, target: Target, resource: ResourceType) -> Response:
        obj = self.store.delete(resource, target.namespace, target.name,
                                self._dry_run(request.query))
        if resource in (PODS, NAMESPACES) or resource.custom:
            return json_response(200, obj)  # these registries return the deleted object
        details = errors.resource_details(resource, target.name, uid=obj["metadata"]["uid"])
        return json_response(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                   "status": "Success", "details": details})

    def _delete_collection(self, request: Request, target: Target,
                           resource: ResourceType) -> Response:
        labels, fields = _selectors(request.query, resource)
        dry_run = self._dry_run(request.query)
        deleted = self.store.list_objects(resource, target.namespace, labels, fields)
        for obj in deleted["items"]:  # the real registry answers the deleted objects as a list
            metadata = obj["metadata"]
            self.store.delete(resource, metadata.get("namespace", ""), metadata["name"], dry_run)
        return json_response(200, deleted)

    def _dry_run(self, query: Mapping[str, str]) -> bool:
        """Whether a write is a dry run. A server before the DryRun feature (Kubernetes 1.12)
        never reads the parameter: the write is applied."""
        return self.store.profile.dry_run and _known_dry_run(query)

    def _pod_log(self, query: Mapping[str, str], target: Target) -> Response:
        pod = self.store.get(PODS, target.namespace, target.name)
        container = _check_container(pod, query.get("container", ""))
        if _boolean(query, "previous"):
            _check_previous(pod, container)
            text = self.previous_logs.get((target.namespace, target.name, container), "")
        else:
            text = self.logs.get((target.namespace, target.name), "")
        if "tailLines" in query:
            tail = _integer(query, "tailLines")
            text = "".join(text.splitlines(keepends=True)[-tail:]) if tail > 0 else ""
        data = text.encode()
        if "limitBytes" in query:
            data = data[:_integer(query, "limitBytes")]
        return Response(200, data, "text/plain")

    def _instantiate(self, body: Obj, target: Target, resource: ResourceType) -> Response:
        self.store.get(resource, target.namespace, target.name)  # 404 before recording
        self.deployment_requests.append(
            DeploymentRequestRecord(target.namespace, target.name, body))
        return json_response(201, self.deployer.instantiate(target.namespace, target.name, body))

    def _review(self, review: Obj) -> Response:
        spec = review.get("spec") or {}
        attributes = spec.get("resourceAttributes")
        allowed = True
        if isinstance(attributes, dict):
            resource = str(attributes.get("resource", ""))
            if attributes.get("subresource"):
                resource = f"{resource}/{attributes['subresource']}"
            allowed = not self.authorizer.denies(Attributes(
                str(attributes.get("group") or ""), resource, str(attributes.get("verb", "")),
                str(attributes.get("namespace") or ""), str(attributes.get("name") or "")))
        # The RBAC authorizer gives a reason only for what it allows.
        status = {"allowed": True, "reason": self.authorizer.allowed_reason()} if allowed else {
            "allowed": False}
        return json_response(201, {"kind": ACCESS_REVIEWS.kind,
                                   "apiVersion": ACCESS_REVIEWS.api_version,
                                   "metadata": {"creationTimestamp": None},
                                   "spec": spec, "status": status})


def _selectors(query: Mapping[str, str],
               resource: ResourceType) -> tuple[list[Requirement], list[FieldRequirement]]:
    try:
        labels = parse_label_selector(query.get("labelSelector", ""))
        fields = parse_field_selector(query.get("fieldSelector", ""))
    except SelectorError as error:
        raise errors.bad_request(str(error)) from None
    for requirement in fields:
        if requirement.field in resource.selectable_fields:
            continue
        if resource.custom:
            raise errors.bad_request(f'"{requirement.field}" is not a known field selector: '
                                     'only "metadata.name", "metadata.namespace"')
        raise errors.bad_request(f"field label not supported: {requirement.field}")
    return labels, fields


def _patcher(content_type: str, patch: Any) -> Callable[[Obj], Obj]:
    if content_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise errors.bad_request("json: cannot unmarshal object into Go value of type "
                                     "jsonpatch.Patch")
        return lambda current: _json_patch(current, patch)
    if not isinstance(patch, dict):
        raise errors.bad_request("json: cannot unmarshal array into Go value of type "
                                 "map[string]interface {}")
    if content_type == MERGE_PATCH:
        return lambda current: merge_patch(current, patch)
    return lambda current: strategic_merge_patch(current, patch)


def _json_patch(current: Obj, operations: list[Any]) -> Obj:
    try:
        return json_patch(current, operations)
    except PatchError:
        raise errors.unprocessable() from None


def _object_body(request: Request) -> Obj:
    body = _body(request)
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request is not an object")
    return body


def _body(request: Request) -> Any:
    content_type = request.headers.get("Content-Type", "").partition(";")[0].strip()
    if content_type == protobuf.MEDIA_TYPE:
        return _protobuf(request.body)
    if content_type in ("application/yaml", "application/x-yaml"):
        try:
            return yaml.safe_load(request.body)
        except yaml.YAMLError as error:
            raise errors.bad_request(f"error decoding YAML: {error}") from None
    return _json(request.body)


def _protobuf(data: bytes) -> Any:
    try:
        return protobuf.decode(data)
    except protobuf.UnsupportedKind:
        raise errors.unsupported_media_type(["application/json", "application/yaml"]) from None
    except protobuf.ProtobufError as error:
        raise errors.bad_request(f"error decoding protobuf: {error}") from None


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as error:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {error}") from None


def _known_dry_run(query: Mapping[str, str]) -> bool:
    value = query.get("dryRun", "")
    if value not in ("", "All"):
        raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: '
                                 '"All"')
    return value == "All"


def _integer(query: Mapping[str, str], name: str) -> int:
    value = query[name]
    if not value.isdigit():
        raise errors.bad_request(f"{name}: Invalid value: \"{value}\": must be a non-negative "
                                 "integer")
    return int(value)


def _check_container(pod: Obj, container: str) -> str:
    """The container checks of the pod log REST (pkg/registry/core/pod/strategy.go); the
    container the log is read from."""
    spec, name = pod.get("spec") or {}, pod["metadata"]["name"]
    names = [c.get("name") for c in spec.get("containers") or []]
    if container and container not in names + [c.get("name")
                                                for c in spec.get("initContainers") or []]:
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    if not container and len(names) > 1:
        raise errors.bad_request(f"a container name must be specified for pod {name}, "
                                 f"choose one of: [{' '.join(names)}]")
    return container or str(names[0] if names else "")


def _check_previous(pod: Obj, container: str) -> None:
    """The kubelet's answer without a previous instance (pkg/kubelet/kubelet_pods.go
    validateContainerLogStatus: no lastState.terminated with a containerID), which its server
    writes as 400 (pkg/kubelet/server/server.go getContainerLogs) and the API server passes
    on as a BadRequest Status."""
    statuses = [*((pod.get("status") or {}).get("containerStatuses") or []),
                *((pod.get("status") or {}).get("initContainerStatuses") or [])]
    status = next((s for s in statuses if isinstance(s, dict) and s.get("name") == container),
                  None)
    name = pod["metadata"]["name"]
    if status is None:
        raise errors.bad_request(f"container \"{container}\" in pod \"{name}\" is not "
                                 "available")
    terminated = ((status.get("lastState") or {}).get("terminated") or {})
    if not terminated.get("containerID"):
        raise errors.bad_request(f"previous terminated container \"{container}\" in pod "
                                 f"\"{name}\" not found")


def _boolean(query: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter as the API server converts it (strconv.ParseBool)."""
    value = query.get(name, "false")
    if value not in ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false",
                     "False"):
        raise errors.bad_request(f"{name}: Invalid value: \"{value}\": strconv.ParseBool: "
                                 f"parsing \"{value}\": invalid syntax")
    return value in ("1", "t", "T", "TRUE", "true", "True")
