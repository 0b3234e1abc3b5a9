"""The three patch formats of the API server: JSON merge patch (RFC 7386), strategic merge
patch (k8s.io/apimachinery/pkg/util/strategicpatch) and JSON patch (RFC 6902)."""

from __future__ import annotations

import copy
from typing import Any

# Lists that a strategic merge patch merges element by element, with the element key the
# Kubernetes types declare (`patchMergeKey`); all other lists are replaced. `ports` merges by
# `containerPort` in containers and by `port` in services.
MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "imagePullSecrets": ("name",),
    "ports": ("containerPort", "port"),
    "hostAliases": ("ip",),
    "conditions": ("type",),
    "ownerReferences": ("uid",),
}
DIRECTIVE = "$patch"


class PatchError(ValueError):
    """A patch that does not apply to the object (answered 422)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Merge patch, except that known lists merge by key and `$patch` directives apply.

    `$patch: replace` and `$patch: delete` are honoured; `$retainKeys`, `$setElementOrder/...`
    and `$deleteFromPrimitiveList/...` are dropped without effect.
    """
    if patch.get(DIRECTIVE) == "replace":
        return _without_directives(patch)
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        current = result.get(key)
        if value is None or (isinstance(value, dict) and value.get(DIRECTIVE) == "delete"):
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(current, dict):
            result[key] = strategic_merge_patch(current, value)
        elif key in MERGE_KEYS and isinstance(value, list) and isinstance(current, list):
            result[key] = _merge_list(current, value, MERGE_KEYS[key])
        else:
            result[key] = _without_directives(value)
    return result


def _merge_list(current: list[Any], patch: list[Any], candidates: tuple[str, ...]) -> list[Any]:
    if any(isinstance(item, dict) and item.get(DIRECTIVE) == "replace" for item in patch):
        return [_without_directives(i) for i in patch
                if not (isinstance(i, dict) and i.get(DIRECTIVE) == "replace")]
    key = next((k for k in candidates
                if any(isinstance(i, dict) and k in i for i in patch)), None)
    if key is None:
        return _without_directives(patch)
    result = copy.deepcopy(current)
    for item in patch:
        position = next((n for n, old in enumerate(result)
                         if isinstance(old, dict) and old.get(key) == item.get(key)), None)
        if item.get(DIRECTIVE) == "delete":
            if position is not None:
                del result[position]
        elif position is None:
            result.append(_without_directives(item))
        else:
            result[position] = strategic_merge_patch(result[position], item)
    return result


def _without_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_without_directives(item) for item in value]
    return copy.deepcopy(value)


def json_patch(document: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902. Raises PatchError with the message evanphx/json-patch gives."""
    result = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict):
            raise PatchError("invalid operation: not an object")
        result = _apply_operation(result, operation)
    return result


def _apply_operation(document: Any, operation: dict[str, Any]) -> Any:
    op, path = operation.get("op"), operation.get("path")
    if not isinstance(path, str):
        raise PatchError(f"operation missing path: {operation}")
    if op == "add":
        return _add(document, path, _value(operation))
    if op == "remove":
        return _remove(document, path)[0]
    if op == "replace":
        _get(document, path, "replace operation does not apply: doc is missing path")
        return _add(_remove(document, path)[0], path, _value(operation), replace=True)
    if op in ("move", "copy"):
        source = operation.get("from")
        if not isinstance(source, str):
            raise PatchError(f"{op} operation missing from: {operation}")
        value = copy.deepcopy(_get(document, source, f"{op} operation does not apply: "
                                                     f"doc is missing from path: {source}"))
        if op == "move":
            document = _remove(document, source)[0]
        return _add(document, path, value)
    if op == "test":
        actual = _get(document, path, None)
        if not _json_equal(actual, operation.get("value")):
            raise PatchError(f"testing value {path} failed: test failed")
        return document
    raise PatchError(f"Unexpected kind: {op}")


def _value(operation: dict[str, Any]) -> Any:
    if "value" not in operation:
        raise PatchError(f"missing value for {operation.get('op')} operation")
    return copy.deepcopy(operation["value"])


def _tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer must start with '/': {path}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _get(document: Any, path: str, missing: str | None) -> Any:
    value = document
    for token in _tokens(path):
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        elif missing is None:
            return None
        else:
            raise PatchError(missing)
    return value


def _parent(document: Any, path: str, op: str) -> tuple[Any, str]:
    tokens = _tokens(path)
    if not tokens:
        raise PatchError(f"{op} operation on the document root is not supported")
    parent_path = "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens[:-1])
    parent = _get(document, parent_path, f"{op} operation does not apply: doc is missing path: "
                                         f"\"{path}\": missing value")
    return parent, tokens[-1]


def _add(document: Any, path: str, value: Any, replace: bool = False) -> Any:
    if path == "":
        return value
    parent, token = _parent(document, path, "replace" if replace else "add")
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        index = len(parent) if token == "-" else _index(token, len(parent) + 1, path)
        parent.insert(index, value)
    else:
        raise PatchError(f"add operation does not apply: doc is missing path: \"{path}\"")
    return document


def _remove(document: Any, path: str) -> tuple[Any, Any]:
    parent, token = _parent(document, path, "remove")
    if isinstance(parent, dict) and token in parent:
        return document, parent.pop(token)
    if isinstance(parent, list):
        return document, parent.pop(_index(token, len(parent), path))
    raise PatchError(f"Unable to remove nonexistent key: {token}: missing value")


def _index(token: str, limit: int, path: str) -> int:
    if not token.isdigit() or int(token) >= limit:
        raise PatchError(f"Unable to access invalid index: {token}: invalid index ({path})")
    return int(token)


def _json_equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    return left == right
