"""The storage section as distribution builds it: parsed from the file, then overridden by
`REGISTRY_STORAGE*` environment variables (distribution `configuration/parser.go`).

The override rules, reproduced here and proven against the real registry in
tests/test_registryconfig_real.py:
- variables are applied in sorted name order; each value is parsed as YAML;
- `REGISTRY_STORAGE=<driver>` replaces the whole storage map (options from the file are lost);
- below it, a path component matches an existing key case-insensitively, else it creates the key
  lower-cased; a new map made on the way is string-keyed;
- a nested map that came from the YAML file is keyed by interface{} in Go: the registry ignores
  overrides into it (with a warning in its log), and the maintenance options refuse a map that
  the environment created.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from registry_doctor.doctor.registryconfig.sources import MASKED, EnvVar, Opaque, Problem
from registry_doctor.doctor.snapshot.redact import is_redacted

# Keys of `storage:` that are options, not drivers (configuration.Storage.Type()).
STORAGE_OPTIONS = frozenset({"maintenance", "cache", "delete", "redirect"})


class Params(dict):
    """A string-keyed map (Go `map[string]interface{}`): a driver or option section, or a map an
    environment variable created. A plain dict nested in one is a YAML map, which Go keys by
    interface{}."""


class Unresolvable(Exception):
    """The configuration depends on a value that cannot be read here."""


@dataclass(frozen=True)
class Origin:
    text: str  # e.g. "env REGISTRY_STORAGE_S3_BUCKET of dc/docker-registry"
    secret: bool = False  # the value came from a Secret through the environment


# libyaml, like Go's yaml.v2 (a port of it), so parse errors read as the registry logs them.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """The document, with each value a redacted dump masked as an `Opaque`."""
    return _unmasked(yaml.load(text, Loader=YAML_LOADER))  # a safe loader: C or Python


def _unmasked(document: Any) -> Any:
    """In place, each container once: aliases share (and may nest) containers."""
    seen: set[int] = set()
    pending = [document]
    while pending:
        container = pending.pop()
        if not isinstance(container, dict | list) or id(container) in seen:
            continue
        seen.add(id(container))
        for key, item in list(container.items() if isinstance(container, dict)
                              else enumerate(container)):
            if is_redacted(item):
                container[key] = MASKED
            pending.append(item)
    return MASKED if is_redacted(document) else document


def yaml_tag(value: Any) -> str:
    """The YAML tag yaml.v2 names in "cannot unmarshal !!<tag>": of a value or a node."""
    if isinstance(value, yaml.Node):
        return {yaml.SequenceNode: "seq", yaml.MappingNode: "map"}.get(type(value), "str")
    return {list: "seq", dict: "map", str: "str", int: "int", float: "float",
            bool: "bool"}.get(type(value), "str")


def yaml_error(error: yaml.YAMLError, secret: bool) -> str:
    """A parse error without the offending text. libyaml's problem may quote the input (a tag,
    an alias), so it is left out when the text comes from a Secret. The line is numbered as
    yaml.v2 numbers it in the registry's log."""
    mark = getattr(error, "problem_mark", None)
    problem = None if secret else getattr(error, "problem", None)
    line = None if mark is None else \
        mark.line + (1 if isinstance(error, yaml.scanner.ScannerError) else 0)
    where = f"at line {line}" if line is not None else ""
    return " ".join(filter(None, [f'"{problem}"' if problem else "", where])) or "unparsable"


def driver_names(storage: dict[str, Any] | None,
                 options: frozenset[str] = STORAGE_OPTIONS) -> list[str]:
    """The sections of `storage` that are not options of the registry release (`options`)."""
    return sorted(str(k) for k in storage or {} if k not in options)


def storage_from_yaml(value: Any, problems: list[Problem],
                      options: frozenset[str] = STORAGE_OPTIONS) -> dict[str, Any] | None:
    """`configuration.Storage.UnmarshalYAML`: a map of sections, or a bare driver name."""
    if value is None:
        return None
    if isinstance(value, dict):
        storage: dict[str, Any] = {}
        for key, section in value.items():
            if section is not None and not isinstance(section, dict):
                problems.append(Problem(True, f"storage.{key}", f"storage.{key} must be a map of "
                                        "parameters: the registry refuses to parse the "
                                        "configuration (\"cannot unmarshal !!map into string\")"))
                return None
            storage[str(key)] = None if section is None else Params(section)
        drivers = driver_names(storage, options)
        if len(drivers) > 1:
            problems.append(Problem(True, "storage", "the storage section names more than one "
                                    "driver: the registry "
                                    "refuses to parse the configuration (\"must provide exactly "
                                    f"one storage type. Provided: [{' '.join(drivers)}]\")"))
            return None
        return storage
    if isinstance(value, list):
        problems.append(Problem(True, "storage", "storage is a list, not a map of driver and "
                                "options: the registry refuses to parse the configuration "
                                "(\"cannot unmarshal !!seq into string\")"))
        return None
    return {str(value): Params()}


def apply_env(storage: dict[str, Any] | None, env: Iterable[EnvVar],
              origins: dict[str, Origin], problems: list[Problem]) -> dict[str, Any] | None:
    for var in sorted(env, key=lambda v: v.name):
        parts = var.name.split("_")
        if len(parts) < 2 or parts[0] != "REGISTRY" or parts[1] != "STORAGE":
            continue
        if len(parts) == 2:
            storage = _replace_storage(var, origins, problems)
        else:
            storage = storage if storage is not None else {}
            _override(storage, parts[2:], var, "storage", origins, problems, sections=True)
    return storage


def _replace_storage(var: EnvVar, origins: dict[str, Origin],
                     problems: list[Problem]) -> dict[str, Any] | None:
    if isinstance(var.value, Opaque):
        raise Unresolvable(f"{var.origin} replaces the storage section and is {var.value.why}")
    parsed = _parse(var, problems)
    storage = storage_from_yaml(parsed, problems)
    _set_origin(origins, "storage", var)
    return storage


def _override(target: dict[Any, Any], path: list[str], var: EnvVar, field: str,
              origins: dict[str, Origin], problems: list[Problem], sections: bool) -> None:
    """`overwriteMap`: set `path` below `target`; `sections`: target is the storage map,
    whose values are parameter maps."""
    head, rest = path[0], path[1:]
    if rest:
        for key, value in target.items():
            if str(key).upper() != head:
                continue
            if value is None:
                break  # a nil entry is recreated
            if isinstance(value, Params):
                _override(value, rest, var, f"{field}.{key}", origins, problems, sections=False)
                return
            kind = "a map from the YAML file" if isinstance(value, dict) else "a single value"
            problems.append(Problem(False, f"{field}.{key}", f"{var.origin} is ignored by the "
                                    f"registry: {field}.{key} is {kind}, which overrides "
                                    "cannot enter"))
            return
    key, child_field = head.lower(), f"{field}.{head.lower()}"
    if rest:
        child = Params()
        _override(child, rest, var, child_field, origins, problems, sections=False)
        target[key] = child
        return
    if sections and isinstance(var.value, Opaque):
        raise Unresolvable(f"{var.origin} replaces {child_field} and is {var.value.why}")
    value = var.value if isinstance(var.value, Opaque) else _parse(var, problems)
    if sections:
        if value is not None and not isinstance(value, dict):
            problems.append(Problem(True, child_field, f"{child_field} from {var.origin} is a "
                                    f"YAML {yaml_tag(value)}, not a map of parameters: the "
                                    "registry refuses to start (\"cannot unmarshal "
                                    f"!!{yaml_tag(value)}\" into configuration.Parameters)"))
            return
        value = Params(value or {})
    target[key] = value
    _set_origin(origins, child_field, var)


def _parse(var: EnvVar, problems: list[Problem]) -> Any:
    try:
        return load_yaml(str(var.value))
    except yaml.YAMLError as error:
        problems.append(Problem(True, var.name, f"{var.origin} does not parse as YAML "
                                f"({yaml_error(error, var.secret)}): the registry refuses to "
                                "start"))
        return None


def _set_origin(origins: dict[str, Origin], field: str, var: EnvVar) -> None:
    for known in [f for f in origins if f == field or f.startswith(field + ".")]:
        del origins[known]
    origins[field] = Origin(var.origin, var.secret)
