"""Label and field selectors with the syntax and semantics of k8s.io/apimachinery."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_KEY = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EXISTS = re.compile(rf"(!?)\s*({_KEY})")
_SET = re.compile(rf"({_KEY})\s+(in|notin)\s+\(([^()]*)\)")
_EQUALITY = re.compile(rf"({_KEY})\s*(==|=|!=)\s*({_VALUE})")
_NUMERIC = re.compile(rf"({_KEY})\s*(>|<)\s*(-?[0-9]+)")
_OPERATORS = {"==": "=", "=": "=", "!=": "!="}


class SelectorError(ValueError):
    pass


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # =, !=, in, notin, exists, !, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator in ("exists", "!"):
            return (self.key in labels) == (self.operator == "exists")
        if self.operator in ("=", "in"):
            return value in self.values
        if self.operator in ("!=", "notin"):
            return value not in self.values
        number, bound = _as_int(value), int(self.values[0])
        if number is None:
            return False
        return number > bound if self.operator == "gt" else number < bound


def _as_int(value: str | None) -> int | None:
    return int(value) if value is not None and re.fullmatch(r"-?[0-9]+", value) else None


def parse_label_selector(text: str) -> list[Requirement]:
    return [_parse_requirement(term.strip()) for term in _split_terms(text) if term.strip()]


def _split_terms(text: str) -> list[str]:
    """Split on the commas outside parentheses."""
    terms, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


def _parse_requirement(term: str) -> Requirement:
    if match := _SET.fullmatch(term):
        values = tuple(v.strip() for v in match[3].split(","))
        if not all(re.fullmatch(_VALUE, v) for v in values):
            raise SelectorError(f"unable to parse requirement: invalid value in {term!r}")
        return Requirement(match[1], match[2], values)
    if match := _EQUALITY.fullmatch(term):
        return Requirement(match[1], _OPERATORS[match[2]], (match[3],))
    if match := _NUMERIC.fullmatch(term):
        return Requirement(match[1], "gt" if match[2] == ">" else "lt", (match[3],))
    if match := _EXISTS.fullmatch(term):
        return Requirement(match[2], "!" if match[1] else "exists")
    raise SelectorError(f"unable to parse requirement: {term!r}")


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # = or !=
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        actual = field_value(obj, self.field)
        return (actual == self.value) == (self.operator == "=")


def parse_field_selector(text: str) -> list[FieldRequirement]:
    requirements = []
    for term in _split_unescaped(text, ","):
        if not term:
            continue
        for operator in ("!=", "==", "="):
            field, found, value = _partition_unescaped(term, operator)
            if found:
                requirements.append(FieldRequirement(field.strip(), _OPERATORS[operator],
                                                     _unescape(value)))
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
    return requirements


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], "", False
    for char in text:
        if char == separator and not escaped:
            parts.append(current)
            current = ""
            continue
        current += char
        escaped = char == "\\" and not escaped
    return [*parts, current]


def _partition_unescaped(term: str, operator: str) -> tuple[str, bool, str]:
    escaped = False
    for index, char in enumerate(term):
        if not escaped and term.startswith(operator, index):
            return term[:index], True, term[index + len(operator):]
        escaped = char == "\\" and not escaped
    return term, False, ""


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """A field's value as the API server compares it: a string, "" when absent."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
