"""Where the objects of a YAML dump file are, and what they are, without parsing it.

A 50,000-pod must-gather is about 150 MB of YAML, while the checks read a few dozen objects:
parsing all of it takes minutes. This scanner finds each document of a file and each item of a
`List`, and reads from an object's own lines its `kind`, `metadata.namespace` and
`spec.nodeName` (the one field a collection selects by). The loader then parses only the pieces
a query can match. Every search starts with a literal (`\\n  kind:`), which `re` finds at
memory speed: a must-gather scans in well under a second.

The scanner vouches only for plain block-style YAML, as `oc get -o yaml`, kubectl and
must-gather write it. Anything whose meaning could reach across lines or pieces (anchors and
aliases, quoted or flow values spanning lines, directives, tabs, CR line ends, quoted or
complex keys where it reads) makes it give up: on the file, which is then parsed whole, or on a
field, which is then "unknown" and the piece parsed whatever the query. Never a wrong answer,
only a slower one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

# What a piece is indexed by. A value of None means "not known: parse the piece to learn".
INDEXED_FIELDS = ("metadata.namespace", "spec.nodeName")
UNKNOWN_FIELDS: tuple[str | None, ...] = (None,) * len(INDEXED_FIELDS)


@dataclass(frozen=True)
class Piece:
    """One object's bytes in a file: a whole document, or one item of a List document."""

    start: int
    end: int
    where: str  # how the full parse names it in problems: `f.yaml`, `f.yaml items[3]`...
    dash_column: int | None  # a List item: the column of its `-`, blanked before parsing
    kind: str | None  # None: not plainly known (or a List of its own): always parsed
    fields: tuple[str | None, ...]  # INDEXED_FIELDS: a string, "" when absent or null


class Unscannable(Exception):
    """The file holds YAML the scanner does not vouch for: parse it whole."""


# A quote where a quoted scalar may open, with no other quote after it on its line: a
# candidate for a scalar going on past its line, checked precisely. Literal first: fast.
_QUOTE_TAILS = (re.compile(rb"\"(?<=[ \[{,:\n]\")[^\"\n]*(?:\n|\Z)"),
                re.compile(rb"'(?<=[ \[{,:\n]')[^'\n]*(?:\n|\Z)"))
_OPEN_BRACKET_TAIL = (re.compile(rb"\[[^\]\n]*(?:\n|\Z)"), re.compile(rb"\{[^}\n]*(?:\n|\Z)"))
_QUOTE_START = re.compile(rb"(?:^[ ]*(?:-[ ]+)*|[:,\[{?][ ]+|[\[{,])([\"'])")
_CLOSED = {b'"': re.compile(rb"\"(?:[^\"\\\n]|\\.)*\""), b"'": re.compile(rb"'(?:[^'\n]|'')*'")}
_COLUMN_ZERO = re.compile(rb"\n[^ \n#]")
_TOP_KEY = re.compile(rb"([A-Za-z_][A-Za-z0-9_.\-/]*):(?: |\n|\Z)")
_SEPARATOR = re.compile(rb"---[ ]*(?:#[^\n]*)?(?:\n|\Z)")
_PLAIN = re.compile(rb"[A-Za-z][A-Za-z0-9._\-/]*")  # a string to YAML 1.1, unless below
_NOT_STRINGS = frozenset({b"null", b"Null", b"NULL", b"yes", b"Yes", b"YES", b"no", b"No",
                          b"NO", b"true", b"True", b"TRUE", b"false", b"False", b"FALSE",
                          b"on", b"On", b"ON", b"off", b"Off", b"OFF"})
_NULLS = frozenset({b"~", b"null", b"Null", b"NULL", b"''", b'""'})


def scan(data: bytes, source: str) -> list[Piece]:
    """The pieces of one YAML file, in file order. Raises Unscannable."""
    _refuse_odd_syntax(data)
    documents = _documents(data)
    pieces: list[Piece] = []
    for index, (start, end) in enumerate(documents):
        where = source if len(documents) == 1 else f"{source} (document {index + 1})"
        pieces += _document_pieces(data, start, end, where)
    return pieces


def _refuse_odd_syntax(data: bytes) -> None:
    if (b"\r" in data or b"\t" in data or data.startswith((b"\xef\xbb\xbf", b"%", b"..."))
            or b"\n%" in data or b"\n..." in data):
        raise Unscannable
    for marker in (b"&", b"*"):  # anchors and aliases tie pieces together
        at = data.find(marker)
        while at >= 0:
            before, after = data[at - 1:at] if at else b"\n", data[at + 1:at + 2]
            if before in (b" ", b"\n", b"[", b"{", b",") and after not in (
                    b"", b" ", b"\n", b",", b"[", b"]", b"{", b"}"):
                raise Unscannable
            at = data.find(marker, at + 1)
    if data[:1] in (b'"', b"'") and _opens_multiline_quote(_line_at(data, 0)):
        raise Unscannable
    for pattern in _QUOTE_TAILS:
        for candidate in pattern.finditer(data):
            if _opens_multiline_quote(_line_at(data, candidate.start())):
                raise Unscannable
    for pattern in _OPEN_BRACKET_TAIL:
        for candidate in pattern.finditer(data):
            line_start = data.rfind(b"\n", 0, candidate.start()) + 1
            before = data[line_start:candidate.start()].rstrip(b" ")
            if before.lstrip(b" -") == b"" or before.endswith((b":", b"-", b"?", b"[", b"{",
                                                               b",")):
                raise Unscannable  # a flow collection that goes on past its line


def _line_at(data: bytes, offset: int) -> bytes:
    start = data.rfind(b"\n", 0, offset) + 1
    end = data.find(b"\n", offset)
    return data[start:end if end >= 0 else len(data)]


def _opens_multiline_quote(line: bytes) -> bool:
    return any(not _CLOSED[quote.group(1)].match(line, quote.start(1))
               for quote in _QUOTE_START.finditer(line))


def _documents(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the documents, counted as PyYAML's load_all counts them: empty explicit
    documents too, an implicit first one only when it has content."""
    separators = [m for m in (_SEPARATOR.match(data, at) for at in _line_starts(data, b"---"))
                  if m]
    documents = []
    first_end = separators[0].start() if separators else len(data)
    if _has_content(data[:first_end]):
        documents.append((0, first_end))
    for number, separator in enumerate(separators):
        end = separators[number + 1].start() if number + 1 < len(separators) else len(data)
        documents.append((separator.end() - 1 if data[separator.end() - 1:separator.end()]
                          == b"\n" else separator.end(), end))
    return documents


def _line_starts(data: bytes, prefix: bytes) -> list[int]:
    """Offsets of the lines starting with `prefix`."""
    found = [0] if data.startswith(prefix) else []
    at = data.find(b"\n" + prefix)
    while at >= 0:
        found.append(at + 1)
        at = data.find(b"\n" + prefix, at + 1)
    return found


def _has_content(text: bytes) -> bool:
    return any(line.strip() and not line.lstrip().startswith(b"#")
               for line in text.split(b"\n"))


def _document_pieces(data: bytes, start: int, end: int, where: str) -> list[Piece]:
    """One piece per List item, or the whole document as one piece."""
    keys: dict[bytes, int] = {}  # top-level key -> offset of its line
    last_key = b""
    lines = [start] if start == 0 and data[:1] not in (b" ", b"\n", b"#") else []
    lines += [m.start() + 1 for m in _COLUMN_ZERO.finditer(data, start, end)]
    for offset in lines:
        key = _TOP_KEY.match(data, offset, end)
        if key is not None:
            if key.group(1) in keys:
                raise Unscannable  # a duplicate key: the last one wins, quietly
            keys[key.group(1)] = offset
            last_key = key.group(1)
        elif not last_key or not data.startswith((b"- ", b"-\n"), offset):
            raise Unscannable  # a flow mapping, a quoted key, a top-level scalar...
    if not keys:
        if _has_content(data[start:end]):
            raise Unscannable  # content, but no key at column 0
        return []
    kind = _scalar(data, keys[b"kind"] + len(b"kind:"), end) if b"kind" in keys else None
    if kind is not None and kind.endswith("List") and b"items" in keys:
        return _item_pieces(data, keys, end, where)
    kind, fields = _facts(data, start, end, 0, 0 if start == 0 else None)
    return [Piece(start, end, where, None, kind, fields)]


def _item_pieces(data: bytes, keys: dict[bytes, int], end: int, where: str) -> list[Piece]:
    items_line = keys[b"items"]
    region_start = data.find(b"\n", items_line, end)
    if region_start < 0 or data[items_line + len(b"items:"):region_start].strip(b" "):
        raise Unscannable  # `items: []`, `items: null`: parsed whole
    region_end = min((o - 1 for o in keys.values() if o > items_line), default=end)
    first = _pattern(rb"\n( *)-(?: |\n)").search(data, region_start, region_end)
    if first is None or _has_content(data[region_start:first.start() + 1]):
        raise Unscannable  # items is no block sequence (a mapping, null...)
    column = len(first.group(1))
    dash = b" " * column + b"-"
    if column and _pattern(rb"\n {0,%d}[^ \n#]" % (column - 1)).search(
            data, first.start(), region_end):
        raise Unscannable  # a line left of the sequence
    if column and _pattern(rb"\n {%d}(?:[^ \n#-]|-[^ \n])" % column).search(
            data, first.start(), region_end):
        raise Unscannable  # a line at the sequence's column that starts no item
    starts = [m.start() + 1 for m in _pattern(rb"\n%s(?: |\n)" % dash).finditer(
        data, first.start(), region_end)]
    pieces = []
    for position, piece_start in enumerate(starts):
        piece_end = starts[position + 1] - 1 if position + 1 < len(starts) else region_end
        kind, fields = _item_facts(data, piece_start, piece_end, column)
        pieces.append(Piece(piece_start, piece_end, f"{where} items[{position}]", column, kind,
                            fields))
    return pieces


def _item_facts(data: bytes, start: int, end: int, dash: int
                ) -> tuple[str | None, tuple[str | None, ...]]:
    """Kind and indexed fields of one List item whose keys sit two columns right of its dash
    (`- kind: Pod`); anything else is not plainly known."""
    column = dash + 2
    if data[start + dash + 1:start + column + 1][:1] != b" " or data[start + column:
                                                                     start + column + 1] == b" ":
        return None, UNKNOWN_FIELDS
    return _facts(data, start, end, column, start + column)


_PIECE_KEYS = (b"kind", *dict.fromkeys(path.split(".")[0].encode() for path in INDEXED_FIELDS))


def _facts(data: bytes, start: int, end: int, column: int, first: int | None
           ) -> tuple[str | None, tuple[str | None, ...]]:
    keys = _keys(data, start, end, column, first, _PIECE_KEYS)
    kind = _scalar(data, keys.get(b"kind", -1), end) if keys is not None else None
    if kind is None or kind.endswith("List"):
        return None, UNKNOWN_FIELDS  # a List in a List is parsed, and flattened by the loader
    assert keys is not None
    return kind, tuple(_field(data, keys, end, column, path) for path in INDEXED_FIELDS)


def _field(data: bytes, keys: dict[bytes, int], end: int, column: int, path: str
           ) -> str | None:
    """`parent.child` of the piece: a string, "" when absent or null, None when unsure."""
    parent, child = (part.encode() for part in path.split("."))
    if parent not in keys:
        return ""
    after = keys[parent]
    line_end = data.find(b"\n", after, end) if after >= 0 else -1
    if line_end < 0 or data[after:line_end].strip(b" "):
        return None  # twice, or a value on the key's own line (flow, scalar, tag)
    block_end = _dedent_pattern(column).search(data, line_end, end)
    block = (line_end, block_end.start() if block_end else end)
    first = _INDENTED_LINE.search(data, *block)
    if first is None:
        return ""  # `parent:` with nothing below: null
    children = _keys(data, *block, len(first.group(1)), None, (child,))
    if children is None:
        return None
    if child not in children:
        return ""
    return _scalar(data, children[child], block[1], null_is_empty=True)


def _keys(data: bytes, start: int, end: int, column: int, first: int | None,
          wanted: tuple[bytes, ...]) -> dict[bytes, int] | None:
    """Where the `wanted` keys of the mapping at `column` between `start` and `end` (its first
    key at offset `first`: an item's first line) have their values: the offset after the
    colon, -1 for a key given twice. None when a line at that column is no plain `key:` nor
    a sequence entry (a quoted or complex key, a flow collection, `key :`...): the mapping is
    not plainly readable. Each search is one regular expression over the block."""
    if first is not None and not _PLAIN_KEY_LINE.match(data, first, end):
        return None
    any_lines, plain_lines, wanted_lines = _key_patterns(column, wanted)
    if len(any_lines.findall(data, start, end)) != len(plain_lines.findall(data, start, end)):
        return None
    found: dict[bytes, int] = {}
    matches = [(m.group(1), m.end()) for m in wanted_lines.finditer(data, start, end)]
    if first is not None:
        key = _PLAIN_KEY_LINE.match(data, first, end)
        if key is not None and key.group(1) in wanted:
            matches.insert(0, (key.group(1), key.end()))
    for key, after in matches:
        found[key] = -1 if key in found else after
    return found


def _scalar(data: bytes, after: int, end: int, null_is_empty: bool = False) -> str | None:
    """The value after a `key:` when it is plainly a string ("" for null, if asked)."""
    if after < 0:
        return None
    line_end = data.find(b"\n", after, end)
    text = data[after:line_end if line_end >= 0 else end]
    comment = text.find(b" #")
    text = (text[:comment] if comment >= 0 else text).strip(b" ")
    if text in _NULLS:
        return "" if null_is_empty else None
    if text[:1] in (b"'", b'"') and len(text) >= 2 and text[-1:] == text[:1]:
        text = text[1:-1]
        return text.decode() if _PLAIN.fullmatch(text) else None
    if _PLAIN.fullmatch(text) and text not in _NOT_STRINGS:
        return text.decode()
    return None


_INDENTED_LINE = re.compile(rb"\n( +)[^ \n#]")
_PLAIN_KEY_LINE = re.compile(rb"([A-Za-z0-9_][A-Za-z0-9_.\-/]*):(?= |\n)")


@cache
def _pattern(source: bytes) -> re.Pattern[bytes]:
    return re.compile(source)


@cache
def _key_patterns(column: int, wanted: tuple[bytes, ...]
                  ) -> tuple[re.Pattern[bytes], re.Pattern[bytes], re.Pattern[bytes]]:
    """Lines at `column`: any but comments and sequence entries; plain `key:` ones; and those
    of the `wanted` keys."""
    indent = rb"\n {%d}" % column
    return (re.compile(indent + rb"[^ \n#-]"),
            re.compile(indent + _PLAIN_KEY_LINE.pattern),
            re.compile(indent + rb"(%s):(?= |\n)" % b"|".join(map(re.escape, wanted))))


@cache
def _dedent_pattern(column: int) -> re.Pattern[bytes]:
    """A line at `column` or left of it: the end of a block indented more."""
    return re.compile(rb"\n {0,%d}[^ \n#]" % column)
