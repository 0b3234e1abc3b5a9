"""Field types of dump objects, checked the way the API server decodes them.

Objects from a live cluster always have the right types: the API server refused anything else.
Dump files are written and edited by hand, so a field may hold a string where a mapping
belongs. Checks read such fields defensively (`as_dict`, `as_list`) and judge as if the field
were absent; this module makes sure the operator is told which file, object and field was
ignored. The types come from kube_schema.json (scripts/gen-kube-schema.py). `null` is
accepted everywhere: to the API server it means "unset".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("kube_schema.json")
MAX_PROBLEMS_PER_OBJECT = 10
MAX_NODES = 200_000  # values checked per object


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_SCALARS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "string": ("a string", lambda v: isinstance(v, str)),
    "integer": ("an integer", _is_int),
    "number": ("a number", lambda v: _is_int(v) or isinstance(v, float)),
    "boolean": ("true or false", lambda v: isinstance(v, bool)),
    "intstr": ("an integer or a string", lambda v: _is_int(v) or isinstance(v, str)),
    "quantity": ("a quantity (a string or a number)",
                 lambda v: _is_int(v) or isinstance(v, float | str)),
    "any": ("anything", lambda v: True),
}


@cache
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


def known_kinds() -> set[str]:
    return set(_schema()["kinds"])


def type_problems(obj: dict[str, Any]) -> list[str]:
    """`path: expected X, found Y` for each field of `obj` whose type the API server would
    refuse (at most MAX_PROBLEMS_PER_OBJECT, then a count). Values are never quoted: they may
    be secret."""
    schema = _schema()
    root = schema["kinds"].get(obj.get("kind"))
    if root is None:
        return []
    walk = _Walk(schema["types"])
    try:
        walk.check(obj, root, "")
    except _TooBig:
        walk.problems.append(f"more than {MAX_NODES} values (YAML aliases?): field types "
                             "checked only in part")
    problems = walk.problems
    if len(problems) > MAX_PROBLEMS_PER_OBJECT:
        extra = len(problems) - MAX_PROBLEMS_PER_OBJECT
        problems = [*problems[:MAX_PROBLEMS_PER_OBJECT], f"... and {extra} more type errors"]
    return problems


class _TooBig(Exception):
    pass


class _Walk:
    """One object's walk. Counted: YAML aliases can make a small file an exponentially
    large tree (lists of aliases of lists of aliases)."""

    def __init__(self, types: dict[str, dict[str, str]]) -> None:
        self.types = types
        self.problems: list[str] = []
        self.visited = 0

    def check(self, value: Any, expected: str, path: str) -> None:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise _TooBig
        if value is None:
            return
        if expected.startswith("["):
            if not isinstance(value, list):
                self.problems.append(_mismatch(path, "a list", value))
                return
            for index, item in enumerate(value):
                self.check(item, expected[1:-1], f"{path}[{index}]")
        elif expected.startswith("{"):
            self.check_map(value, expected[1:-1], path)
        elif expected in _SCALARS:
            wanted, accepts = _SCALARS[expected]
            if not accepts(value):
                self.problems.append(_mismatch(path, wanted, value))
        elif not isinstance(value, dict):
            self.problems.append(_mismatch(path, "a mapping", value))
        else:
            fields = self.types[expected]
            for key, item in value.items():
                if key in fields:
                    self.check(item, fields[key], f"{path}.{key}" if path else key)

    def check_map(self, value: Any, item_type: str, path: str) -> None:
        if not isinstance(value, dict):
            self.problems.append(_mismatch(path, "a mapping", value))
            return
        for key, item in value.items():
            if not isinstance(key, str):
                self.problems.append(f"{path}: key {key!r} is {describe_type(key)}, not a string")
                continue
            self.check(item, item_type, f"{path}[{key}]")


def _mismatch(path: str, wanted: str, value: Any) -> str:
    return f"{path or 'the object'}: expected {wanted}, found {describe_type(value)}"


def describe_type(value: Any) -> str:
    """`a string`, `an integer`, `null`...: how a message names what was found."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {str: "a string", int: "an integer", float: "a number", list: "a list",
            dict: "a mapping"}.get(type(value), f"a {type(value).__name__}")
