"""Changes between two versions of an object, as JSON patches (RFC 6902) forwards and back,
and as a YAML diff for people, with secret values redacted in everything shown."""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from typing import Any

from registry_doctor.doctor.fix.pemtext import decoded, outline
from registry_doctor.doctor.snapshot.redact import REDACTED, redact

JSON_PATCH = "application/json-patch+json"
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
    """A copy of an object fit to print, redacted as a snapshot is (doctor/snapshot/redact.py);
    a Secret's values are shown decoded: PEM as an outline, a masked value with its length."""
    if not isinstance(obj, dict):
        return copy.deepcopy(obj)
    clean = copy.deepcopy(redact(obj, mark=False))
    if obj.get("kind") == "Secret":
        for field in ("data", "stringData"):
            original = obj.get(field)
            if isinstance(original, dict) and isinstance(clean.get(field), dict):
                clean[field] = {k: _secret_value(original[k], v, field == "data")
                                for k, v in clean[field].items()}
    return clean


def _secret_value(original: Any, redacted: Any, encoded: bool) -> str:
    """The outline of a PEM value (labels and subjects, never key material), the redacted text
    of a configuration file, else the marker and the value's length."""
    def text(value: Any) -> str | None:
        return decoded(value) if encoded else value if isinstance(value, str) else None

    plain, kept = text(original), text(redacted)
    pem = outline(plain) if plain is not None else None
    if pem:
        return pem
    return kept if kept and kept != REDACTED else f"{REDACTED} ({len(str(original))} characters)"


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
