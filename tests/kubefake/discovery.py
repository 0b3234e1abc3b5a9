"""Discovery documents (/version, /api, /apis, ...) in the legacy, non-aggregated format, and
the OpenAPI documents.

Clients that ask for aggregated discovery (Accept: ...;g=apidiscovery.k8s.io;v=v2...) get these
as plain application/json and fall back, as they do against API servers older than 1.26.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .profiles import Profile
from .resources import ResourceType
from .responses import Response, json_response, not_found_page

OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def discovery_response(path: str, headers: Mapping[str, str], profile: Profile) -> Response:
    if path == "/openapi/v2":
        return openapi_v2(headers.get("Accept", ""), profile)
    document = discovery_document(path, headers.get("Host", ""), profile)
    return not_found_page() if document is None else json_response(200, document)


def openapi_v2(accept: str, profile: Profile) -> Response:
    """An OpenAPI v2 document with the write operations' paths and parameters, no definitions.

    kubectl validates `create -f` and `apply` input against /openapi/v2 (an OpenShift 3.11
    master serves no /openapi/v3) and fails when it cannot download it; a document that
    describes no type makes it skip that client-side validation. It asks for protobuf, where
    an empty message is zero bytes. In JSON the paths say which writes take `dryRun`: as on a
    real server, only those of a server that knows it.
    """
    if "protobuf" in accept:
        return Response(200, b"", OPENAPI_V2_PROTOBUF)
    paths: dict[str, Any] = {}
    for resource in profile.resources:
        paths.update(_openapi_paths(resource, profile.dry_run))
    document = {"swagger": "2.0", "info": {"title": profile.openapi_title,
                                           "version": profile.openapi_version},
                "paths": paths}
    return Response(200, json.dumps(document).encode())


def _openapi_paths(resource: ResourceType, dry_run: bool) -> dict[str, Any]:
    """The collection and item paths of a resource with their write operations."""
    scope = "/namespaces/{namespace}" if resource.namespaced else ""
    collection = f"{resource.prefix}{scope}/{resource.plural}"
    kind = {"group": resource.group, "version": resource.version, "kind": resource.kind}

    def operation(action: str) -> dict[str, Any]:
        parameters: list[dict[str, Any]] = [{"name": "body", "in": "body", "required": True,
                                             "schema": {"type": "object"}}]
        if dry_run:
            parameters.append({"uniqueItems": True, "type": "string", "name": "dryRun",
                               "in": "query", "description": "When present, indicates that "
                               "modifications should not be persisted."})
        return {"parameters": parameters, "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": kind}

    methods = {"update": "put", "patch": "patch", "delete": "delete"}
    item = {methods[verb]: operation(verb) for verb in methods if verb in resource.verbs}
    found = {collection: {"post": operation("post")}} if "create" in resource.verbs else {}
    if item:
        found[collection + "/{name}"] = item
    return found


def discovery_document(path: str, server_address: str, profile: Profile) -> dict[str, Any] | None:
    """The document a discovery path serves, or None if it serves none."""
    served = profile.group_versions()
    parts = path.strip("/").split("/")
    if path == "/version":
        return dict(profile.version)
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                "serverAddress": server_address}]}
    if path == "/api/v1":
        return {"kind": "APIResourceList", "groupVersion": "v1",
                "resources": _resources(served["v1"])}
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [_group(gv) for gv in served if "/" in gv]}
    if parts[0] == "apis" and len(parts) == 2:
        group = next((gv for gv in served if gv.partition("/")[0] == parts[1] and "/" in gv), None)
        return None if group is None else {"kind": "APIGroup", "apiVersion": "v1",
                                           **_group(group)}
    if parts[0] == "apis" and len(parts) == 3 and "/".join(parts[1:]) in served:
        group_version = "/".join(parts[1:])
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                "resources": _resources(served[group_version])}
    return None


def _group(group_version: str) -> dict[str, Any]:
    group, _, version = group_version.partition("/")
    entry = {"groupVersion": group_version, "version": version}
    return {"name": group, "versions": [entry], "preferredVersion": entry}


def _resources(resources: list[ResourceType]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for resource in resources:
        entry: dict[str, Any] = {
            "name": resource.plural,
            "singularName": resource.kind.lower(),
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": list(resource.verbs),
        }
        if resource.short_names:
            entry["shortNames"] = list(resource.short_names)
        if resource.categories:
            entry["categories"] = list(resource.categories)
        entries.append(entry)
        entries.extend({"name": f"{resource.plural}/{sub.name}", "singularName": "",
                        "namespaced": resource.namespaced, "kind": sub.kind,
                        "verbs": list(sub.verbs)} for sub in resource.subresources)
    return entries
