"""Acknowledged findings: a failing check an admin has decided to live with, until a date.

Two sources (docs/acknowledge.md): the `acknowledge:` list of the config file
(`--config`, default `registry-doctor.yaml` in the working directory) and the annotation
`registry-doctor.io/acknowledge: <check>=<YYYY-MM-DD>: <reason>` on an object the finding
names. An acknowledged warn or crit becomes `acknowledged`: it stays in every output but no
longer counts toward the exit code or the alerts. An acknowledgement past its `until` date
acknowledges nothing and is itself a warn finding (the result `acknowledgements`), so it
cannot be forgotten.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from registry_doctor.doctor.model import Acknowledged, Remediation, Resource, Result, Status

ANNOTATION = "registry-doctor.io/acknowledge"
DEFAULT_CONFIG_FILE = "registry-doctor.yaml"
# The id of the result that lists expired or unreadable acknowledgements; not a check.
RESULT_ID = "acknowledgements"
DOCS = "docs/acknowledge.md"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ANNOTATION_LINE = re.compile(r"\s*([a-z0-9-]+)=(\d{4}-\d{2}-\d{2}):\s*(\S.*?)\s*")
_ENTRY_FIELDS = ("check", "object", "reason", "until", "by")
_OBJECT_FIELDS = ("kind", "namespace", "name")


class ConfigError(ValueError):
    """A config file the run cannot use; the message names the file, line and field."""


@dataclass(frozen=True)
class Acknowledgement:
    check: str
    reason: str
    until: date
    origin: str  # where it was written: "registry-doctor.yaml line 4", an annotation
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    by: str | None = None

    def matches(self, result: Result) -> bool:
        if result.check != self.check:
            return False
        if (self.kind, self.namespace, self.name) == (None, None, None):
            return True
        return any(self._names(resource) for resource in result.resources)

    def _names(self, resource: Resource) -> bool:
        wanted = ((self.kind, resource.kind), (self.namespace, resource.namespace),
                  (self.name, resource.name))
        return all(want is None or want == have for want, have in wanted)

    def expired(self, today: date) -> bool:
        return today > self.until  # `until` is the last day it holds

    def describe(self) -> str:
        target = "/".join(p for p in (self.kind, self.namespace, self.name) if p)
        return (f"{self.origin}: {self.check}" + (f" on {target}" if target else "")
                + f" until {self.until.isoformat()}" + (f" by {self.by}" if self.by else "")
                + f": {self.reason}")


# --- the config file ---------------------------------------------------------------------

def load_config(path: Path, known_checks: Iterable[str]) -> tuple[Acknowledgement, ...]:
    """The acknowledgements of a config file; `ConfigError` naming file, line and field."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {getattr(error, 'strerror', error)}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not YAML: {getattr(error, 'problem', error)}") \
            from None
    if root is None:
        return ()
    top = _mapping(root, path, "the file")
    for key in top:
        if key != "acknowledge":
            raise ConfigError(f"{path} line {_line(top[key][0])}: unknown field {key!r} "
                              "(known: acknowledge)")
    if "acknowledge" not in top:
        return ()
    entries = top["acknowledge"][1]
    if not isinstance(entries, yaml.SequenceNode):
        raise ConfigError(f"{path} line {_line(entries)}: acknowledge: must be a list")
    known = set(known_checks)
    return tuple(_entry(node, path, known) for node in entries.value)


def _line(node: Any) -> int:
    return node.start_mark.line + 1


def _mapping(node: Any, path: Path, what: str) -> dict[str, tuple[Any, Any]]:
    """key -> (key node, value node) of a mapping node."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path} line {_line(node)}: {what} must be a mapping")
    return {str(key.value): (key, value) for key, value in node.value}


def _scalar(node: Any, path: Path, field: str) -> str:
    import yaml

    if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
        raise ConfigError(f"{path} line {_line(node)}: {field}: must be a non-empty string")
    return str(node.value).strip()


def _entry(node: Any, path: Path, known: set[str]) -> Acknowledgement:
    fields = _mapping(node, path, "an acknowledge entry")
    for key, (key_node, _) in fields.items():
        if key not in _ENTRY_FIELDS:
            raise ConfigError(f"{path} line {_line(key_node)}: unknown field {key!r} "
                              f"(known: {', '.join(_ENTRY_FIELDS)})")
    for required in ("check", "reason", "until"):
        if required not in fields:
            raise ConfigError(f"{path} line {_line(node)}: {required}: missing (an entry "
                              "needs check, reason and until)")
    check = _scalar(fields["check"][1], path, "check")
    if check not in known:
        raise ConfigError(f"{path} line {_line(fields['check'][1])}: check: unknown check id "
                          f"{check!r} (known: {', '.join(sorted(known))})")
    until_node = fields["until"][1]
    until = _date(_scalar(until_node, path, "until"))
    if until is None:
        raise ConfigError(f"{path} line {_line(until_node)}: until: {until_node.value!r} is "
                          "not a date YYYY-MM-DD")
    target = _object(fields["object"][1], path) if "object" in fields else {}
    by = _scalar(fields["by"][1], path, "by") if "by" in fields else None
    return Acknowledgement(check=check, reason=_scalar(fields["reason"][1], path, "reason"),
                           until=until, origin=f"{path.name} line {_line(node)}", by=by,
                           **target)


def _object(node: Any, path: Path) -> dict[str, str]:
    fields = _mapping(node, path, "object")
    for key, (key_node, _) in fields.items():
        if key not in _OBJECT_FIELDS:
            raise ConfigError(f"{path} line {_line(key_node)}: object: unknown field {key!r} "
                              f"(known: {', '.join(_OBJECT_FIELDS)})")
    if not fields:
        raise ConfigError(f"{path} line {_line(node)}: object: name at least one of "
                          f"{', '.join(_OBJECT_FIELDS)}")
    return {key: _scalar(value, path, f"object.{key}") for key, (_, value) in fields.items()}


def _date(text: str) -> date | None:
    if not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


# --- annotations -------------------------------------------------------------------------

def annotated(obj: dict[str, Any], resource: Resource) -> tuple[list[Acknowledgement],
                                                                   list[str]]:
    """The acknowledgements the object's annotation holds (one per line), and the lines that
    could not be read."""
    metadata = _mapping_or_empty(obj.get("metadata"))
    value = _mapping_or_empty(metadata.get("annotations")).get(ANNOTATION)
    if not isinstance(value, str):
        return [], []
    origin = f"annotation {ANNOTATION} on {resource.ref()}"
    by = _annotation_manager(metadata.get("managedFields"))
    found, problems = [], []
    for line in filter(str.strip, value.splitlines()):
        match = _ANNOTATION_LINE.fullmatch(line)
        until = _date(match.group(2)) if match else None
        if until is None:
            problems.append(f"{origin}: {line.strip()!r} is not "
                            "<check>=<YYYY-MM-DD>: <reason>")
            continue
        found.append(Acknowledgement(
            check=match.group(1), reason=match.group(3), until=until, origin=origin,
            kind=resource.kind, namespace=resource.namespace, name=resource.name, by=by))
    return found, problems


def _annotation_manager(managed_fields: Any) -> str | None:
    """Who last wrote the annotation, from server-side field management (managedFields)."""
    key = f"f:{ANNOTATION}"
    entries = managed_fields if isinstance(managed_fields, list) else []
    writers = [entry for entry in entries if isinstance(entry, dict) and key in _mapping_or_empty(
        _mapping_or_empty(_mapping_or_empty(entry.get("fieldsV1")).get("f:metadata"))
        .get("f:annotations"))]
    latest = max(writers, key=lambda e: str(e.get("time") or ""), default=None)
    manager = latest.get("manager") if latest else None
    return manager if isinstance(manager, str) and manager else None


def _mapping_or_empty(value: Any) -> dict[str, Any]:
    """A malformed object (a dump edited by hand) acknowledges nothing, never crashes."""
    return value if isinstance(value, dict) else {}


# --- applying them -----------------------------------------------------------------------

def apply(results: Sequence[Result], acknowledgements: Sequence[Acknowledgement],
          find_object: Any, today: date | None = None,
          known_checks: Iterable[str] = ()) -> tuple[Result, ...]:
    """The results with acknowledged findings marked, plus the `acknowledgements` warn when
    an entry has expired or an annotation cannot be read (or names no check in
    `known_checks`, when given). `find_object(resource)` answers the snapshot's object for a
    resource, or None."""
    known = set(known_checks)
    today = today or datetime.now(timezone.utc).date()
    checks = {r.check for r in results}
    expired = [a for a in acknowledgements if a.check in checks and a.expired(today)]
    problems: list[str] = []
    marked = []
    for result in results:
        candidates = [a for a in acknowledgements if not a.expired(today)]
        if result.status in (Status.WARN, Status.CRIT):
            from_objects, unreadable = _from_annotations(result, find_object)
            problems += unreadable + [
                f"{a.origin}: {a.check!r} is not a check id (known: {', '.join(sorted(known))})"
                for a in from_objects if known and a.check not in known]
            expired += [a for a in from_objects if a.check == result.check
                        and a.expired(today)]
            candidates += [a for a in from_objects if not a.expired(today)]
        marked.append(_marked(result, candidates))
    if expired or problems:  # an annotation read once per result naming its object: once each
        marked.append(_stale_result(list(dict.fromkeys(expired)),
                                    list(dict.fromkeys(problems))))
    return tuple(marked)


def _from_annotations(result: Result, find_object: Any) -> tuple[list[Acknowledgement],
                                                                    list[str]]:
    found: list[Acknowledgement] = []
    problems: list[str] = []
    for resource in result.resources:
        obj = find_object(resource)
        if obj is not None:
            more, unreadable = annotated(obj, resource)
            found += more
            problems += unreadable
    return found, problems


def _marked(result: Result, candidates: Sequence[Acknowledgement]) -> Result:
    if result.status not in (Status.WARN, Status.CRIT):
        return result
    match = next((a for a in candidates if a.matches(result)), None)
    if match is None:
        return result
    return replace(result, status=Status.ACKNOWLEDGED, acknowledgement=Acknowledged(
        status=result.status, reason=match.reason, until=match.until.isoformat(),
        by=match.by, source=match.origin))


def _stale_result(expired: list[Acknowledgement], problems: list[str]) -> Result:
    parts = [f"{len(expired)} expired" if expired else "",
             f"{len(problems)} unreadable" if problems else ""]
    return Result(
        check=RESULT_ID, title="Acknowledgements are current and readable", status=Status.WARN,
        summary=f"acknowledgements: {', '.join(p for p in parts if p)}; the findings they "
                "covered count again",
        details=tuple([f"expired: {a.describe()}" for a in expired] + problems),
        resources=tuple(dict.fromkeys(
            Resource(a.kind, a.name, a.namespace) for a in expired if a.kind and a.name)),
        remediation=Remediation("Fix the finding, or renew the acknowledgement with a new "
                                "until date and reason, or remove it.", DOCS),
    )


def object_finder(collections: dict[str, list[dict]]) -> Any:
    """`find_object(resource)` over a snapshot's collections (objects carry their kind)."""
    index = {}
    for items in collections.values():
        for obj in items:
            metadata = _mapping_or_empty(obj.get("metadata") if isinstance(obj, dict) else None)
            key = (obj.get("kind") if metadata else None, metadata.get("namespace"),
                   metadata.get("name"))
            if all(part is None or isinstance(part, str) for part in key):
                index[key] = obj

    def find_object(resource: Resource) -> dict | None:
        return index.get((resource.kind, resource.namespace, resource.name))

    return find_object
