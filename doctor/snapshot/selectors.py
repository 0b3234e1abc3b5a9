"""Label and field selectors, evaluated as the API server does, for dumps read offline.

The grammar is apimachinery's: a selector the API server refuses (400 Bad Request) is refused
here too, so a dump and the live cluster give the same verdicts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Matcher = Callable[[dict[str, str]], bool]

# k8s.io/apimachinery validation: [prefix/]name; names and values alphanumeric at both ends.
_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_KEY = rf"(?:[A-Za-z0-9][-A-Za-z0-9_.]*/)?{_NAME}"
_VALUE = rf"(?:{_NAME})?"
_SET_TERM = re.compile(rf"\s*({_KEY})\s+(in|notin)\s+\(([^()]*)\)\s*")
_EQUALITY_TERM = re.compile(rf"\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*")
_NUMERIC_TERM = re.compile(rf"\s*({_KEY})\s*(>|<)\s*(-?[0-9]+)\s*")
_EXISTS_TERM = re.compile(rf"\s*(!?)\s*({_KEY})\s*")
_FIELD_TERM = re.compile(r"\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*")


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


def _set_matcher(key: str, operator: str, values: str) -> Matcher:
    allowed = {v.strip() for v in values.split(",")}
    if not all(re.fullmatch(_VALUE, v) for v in allowed):
        raise SelectorError(f"invalid value in set ({values})")
    if operator == "in":
        return lambda labels: labels.get(key) in allowed
    return lambda labels: labels.get(key) not in allowed


def _numeric_matcher(key: str, operator: str, bound: str) -> Matcher:
    def matches(labels: dict[str, str]) -> bool:
        value = labels.get(key)
        if value is None or not re.fullmatch(r"-?[0-9]+", value):
            return False
        return int(value) > int(bound) if operator == ">" else int(value) < int(bound)
    return matches


def _term_matcher(term: str) -> Matcher:
    if match := _SET_TERM.fullmatch(term):
        return _set_matcher(*match.groups())
    if match := _EQUALITY_TERM.fullmatch(term):
        key, operator, value = match.groups()
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _NUMERIC_TERM.fullmatch(term):
        return _numeric_matcher(*match.groups())
    if match := _EXISTS_TERM.fullmatch(term):
        negated, key = match.groups()
        return (lambda labels: key not in labels) if negated else (lambda labels: key in labels)
    raise SelectorError(f"unable to parse selector term {term.strip()!r}")


def label_matcher(selector: str | None) -> Matcher:
    if not selector:
        return lambda labels: True
    matchers = [_term_matcher(t) for t in _split_terms(selector)]
    return lambda labels: all(m(labels) for m in matchers)


def _field_value(obj: dict[str, Any], path: str) -> str:
    """A field as the API server compares it: booleans as `true`/`false`, absent as ''."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def field_matcher(selector: str | None) -> Callable[[dict[str, Any]], bool]:
    """Field selectors over an object: `path=value`, `path==value`, `path!=value`."""
    if not selector:
        return lambda obj: True
    terms = []
    for term in _split_terms(selector):
        match = _FIELD_TERM.fullmatch(term)
        if not match:
            raise SelectorError(f"unable to parse field selector term {term.strip()!r}")
        terms.append(match.groups())

    def matches(obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, path) == value) == (operator != "!=")
                   for path, operator, value in terms)
    return matches
