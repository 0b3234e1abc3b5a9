"""Changes between two versions of an object, as JSON patches (RFC 6902) forwards and back,
and as a YAML diff for people, with secret values redacted in everything shown."""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass
from typing import Any

from doctor.fix.pemtext import decoded, outline
from doctor.snapshot.redact import redact_last_applied

JSON_PATCH = "application/json-patch+json"
REDACTED = "<redacted>"
# Env variables whose values are secrets (REGISTRY_HTTP_SECRET, S3 keys, passwords, tokens).
SECRET_ENV = re.compile(r"SECRET|PASSW|TOKEN|KEY|CREDENTIAL", re.IGNORECASE)
# Fields the API server owns: never part of a change, never shown in a diff.
SERVER_METADATA = ("resourceVersion", "uid", "creationTimestamp", "generation", "selfLink",
                   "managedFields")

Path = tuple[str | int, ...]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Change:
    path: Path
    old: Any  # MISSING: the field is added
    new: Any  # MISSING: the field is removed

    @property
    def pointer(self) -> str:
        return pointer(self.path)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": list(self.path)}
        if self.old is not MISSING:
            data["old"] = self.old
        if self.new is not MISSING:
            data["new"] = self.new
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        return cls(tuple(data["path"]), data.get("old", MISSING), data.get("new", MISSING))


def pointer(path: Path) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def changes(before: Any, after: Any, path: Path = ()) -> list[Change]:
    """The smallest set of field changes from `before` to `after`: maps recurse, lists of equal
    length recurse by index, anything else is replaced whole. Server-owned fields are ignored."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in dict.fromkeys([*before, *after]):
            if _server_owned((*path, key)):
                continue
            found.extend(changes(before.get(key, MISSING), after.get(key, MISSING),
                                 (*path, key)))
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [c for i, (b, a) in enumerate(zip(before, after, strict=True))
                for c in changes(b, a, (*path, i))]
    return [] if before == after else [Change(path, before, after)]


def _server_owned(path: Path) -> bool:
    return path == ("status",) or (len(path) == 2 and path[0] == "metadata"
                                   and path[1] in SERVER_METADATA)


def forward(found: list[Change]) -> list[dict[str, Any]]:
    return [_operation(c.path, c.old, c.new) for c in found]


def reverse(found: list[Change]) -> list[dict[str, Any]]:
    """Undo `found`, provided every changed field still holds the value the change wrote
    (`test` operations first: a field edited since makes the whole patch fail)."""
    tests = [{"op": "test", "path": c.pointer, "value": c.new} for c in found
             if c.new is not MISSING]
    return tests + [_operation(c.path, c.new, c.old) for c in reversed(found)]


def guarded(operations: list[dict[str, Any]], resource_version: str) -> list[dict[str, Any]]:
    """The patch refused with 409 Conflict unless the object is still at `resource_version`."""
    guard = {"op": "replace", "path": "/metadata/resourceVersion", "value": resource_version}
    return [guard, *operations]


def _operation(path: Path, old: Any, new: Any) -> dict[str, Any]:
    if new is MISSING:
        return {"op": "remove", "path": pointer(path)}
    return {"op": "add" if old is MISSING else "replace", "path": pointer(path), "value": new}


def value_at(obj: Any, path: Path) -> Any:
    for key in path:
        found = (isinstance(obj, dict) and key in obj) or (
            isinstance(obj, list) and isinstance(key, int) and key < len(obj))
        if not found:
            return MISSING
        obj = obj[key]
    return obj


def version_of(obj: dict[str, Any], found: list[Change]) -> str:
    """`new` when every change is in `obj`, `old` when none is, else `mixed`."""
    if all(value_at(obj, c.path) == c.new for c in found):
        return "new"
    if all(value_at(obj, c.path) == c.old for c in found):
        return "old"
    return "mixed"


# What people see

def shown(obj: Any) -> Any:
    """A copy of an object fit to print: Secret values outlined or redacted, the OAuth client
    secret, secret-looking env values and kubectl's last-applied copy redacted."""
    obj = copy.deepcopy(obj)
    if isinstance(obj, dict) and obj.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if isinstance(obj.get(field), dict):
                obj[field] = {k: _secret_value(v, field == "data") for k, v in obj[field].items()}
    if isinstance(obj, dict) and obj.get("kind") == "OAuthClient" and "secret" in obj:
        obj["secret"] = REDACTED
    if isinstance(obj, dict):
        redact_last_applied(obj)  # `kubectl apply`'s copy of the object holds all of the above
    _redact_env(obj)
    return obj


def _secret_value(value: Any, encoded: bool) -> str:
    text = decoded(value) if encoded else value if isinstance(value, str) else None
    pem = outline(text) if text is not None else None
    return pem or f"{REDACTED} ({len(str(value))} characters)"


def _redact_env(value: Any) -> None:
    if isinstance(value, dict):
        if isinstance(value.get("name"), str) and "value" in value \
                and SECRET_ENV.search(value["name"]):
            value["value"] = REDACTED
        for item in value.values():
            _redact_env(item)
    elif isinstance(value, list):
        for item in value:
            _redact_env(item)


def shown_patch(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch the executor sends, with the values shown as `shown()` shows them."""
    shown_before, shown_after = shown(before), shown(after)
    operations = forward([Change(c.path, value_at(shown_before, c.path),
                                 value_at(shown_after, c.path))
                          for c in changes(before, after)])
    version = str(before["metadata"].get("resourceVersion") or "")
    return guarded(operations, version) if version else operations


def yaml_diff(before: dict[str, Any] | None, after: dict[str, Any] | None, name: str,
              resource_version: str | None) -> str:
    """A unified diff of the YAML of both versions (either may be None: created, deleted)."""
    old = _yaml_lines(before)
    new = _yaml_lines(after)
    label = f"{name} (resourceVersion {resource_version})" if resource_version else name
    return "".join(difflib.unified_diff(old, new, label if before else "/dev/null",
                                        f"{name} (after the fix)" if after else "/dev/null",
                                        n=3))


def _yaml_lines(obj: dict[str, Any] | None) -> list[str]:
    import yaml

    if obj is None:
        return []
    clean = shown({k: v for k, v in obj.items() if k != "status"})
    metadata = clean.get("metadata")
    if isinstance(metadata, dict):
        clean["metadata"] = {k: v for k, v in metadata.items() if k not in SERVER_METADATA}
    return yaml.safe_dump(clean, sort_keys=False, default_flow_style=False,
                          allow_unicode=True).splitlines(keepends=True)
