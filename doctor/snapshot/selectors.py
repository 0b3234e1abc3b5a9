"""Label and field selectors, evaluated as the API server does, for dumps read offline."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Matcher = Callable[[dict[str, str]], bool]

_SET_TERM = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQUALITY_TERM = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")
_EXISTS_TERM = re.compile(r"^\s*(!?)([\w./-]+)\s*$")


class SelectorError(ValueError):
    pass


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside a set's parentheses."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]


def _term_matcher(term: str) -> Matcher:
    if match := _SET_TERM.match(term):
        key, operator, values = match.groups()
        allowed = {v.strip() for v in values.split(",") if v.strip()}
        if operator == "in":
            return lambda labels: labels.get(key) in allowed
        return lambda labels: labels.get(key) not in allowed
    if match := _EQUALITY_TERM.match(term):
        key, operator, value = match.groups()
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS_TERM.match(term):
        negated, key = match.groups()
        return (lambda labels: key not in labels) if negated else (lambda labels: key in labels)
    raise SelectorError(f"unable to parse selector term {term.strip()!r}")


def label_matcher(selector: str | None) -> Matcher:
    if not selector:
        return lambda labels: True
    matchers = [_term_matcher(t) for t in _split_terms(selector)]
    return lambda labels: all(m(labels) for m in matchers)


def _field_value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def field_matcher(selector: str | None) -> Callable[[dict[str, Any]], bool]:
    """Field selectors over an object: `path=value`, `path==value`, `path!=value`."""
    if not selector:
        return lambda obj: True
    terms = []
    for term in _split_terms(selector):
        match = _EQUALITY_TERM.match(term)
        if not match:
            raise SelectorError(f"unable to parse field selector term {term.strip()!r}")
        terms.append(match.groups())

    def matches(obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, path) == value) == (operator != "!=")
                   for path, operator, value in terms)
    return matches
