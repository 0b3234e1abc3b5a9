"""The malformed-input corpus, generated deterministically from the fixture clusters.

Each entry is a dump folder: a base cluster (tests/fixtures/clusters/<base>) plus bad files,
or the base's objects with one field replaced. What an entry promises:

- `problem`: patterns that one single input-problem line must all match (file, object, field);
- `same_verdicts`: the bad input is extra (a garbage file beside good ones), so every check
  must reach the same verdict as on the base alone.

Categories: broken YAML and JSON, documents and Lists with garbage, encodings and binary
files, huge files, odd file system entries, truncated fixture files, every field the checks
read replaced by a value of each wrong type, and odd values of the right type.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import random
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from registry_doctor.doctor.snapshot.dump import MAX_FILE_BYTES, load_dump
from registry_doctor.doctor.snapshot.shape import SCHEMA_FILE
from tests.conftest import CLUSTERS
from tests.robustness.tracking import FieldPath, Identity, fields_read, identity

Maker = Callable[[Path], None]  # writes something odd (a sparse file, a link) at a path


@dataclass(frozen=True)
class Entry:
    id: str  # category/name
    base: str = "healthy"
    files: dict[str, bytes | Maker] = field(default_factory=dict)
    replaces: tuple[str, ...] = ()  # base files left out
    problem: tuple[str, ...] = ()
    same_verdicts: bool = False
    mentions: tuple[str, str] | None = None  # (check id, pattern its summary or details show)

    @property
    def category(self) -> str:
        return self.id.partition("/")[0]

    def write(self, folder: Path) -> Path:
        shutil.copytree(CLUSTERS / self.base, folder, symlinks=False,
                        ignore=lambda _, names: [n for n in names if n in self.replaces])
        for relative, content in self.files.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if callable(content):
                content(path)
            else:
                path.write_bytes(content)
        return folder


def _garbage(name: str, text: str | bytes, *problem: str) -> Entry:
    """A bad file beside the base's good ones: named in a problem, verdicts unchanged."""
    content = text.encode() if isinstance(text, str) else text
    return Entry(f"{name}", files={f"extra/{name.split('/')[1]}": content},
                 problem=(re.escape(f"extra/{name.split('/')[1]}"), *problem),
                 same_verdicts=True)


BROKEN_YAML = {
    "unclosed-flow": "kind: Pod\nmetadata: {name: x\n",
    "unclosed-list": "items: [a, b\n",
    "mapping-in-scalar": "kind: Pod: Deployment\n",
    "tab-indent": "kind: Pod\nmetadata:\n\tname: x\n",
    "bad-indent": "kind: Pod\n metadata:\n   name: x\n  spec: {}\n",
    "dash-then-key": "- a\nb: c\n",
    "unknown-tag": "!!python/object/apply:os.system ['true']\n",
    "custom-tag": "kind: !Secret Pod\nmetadata: {name: x}\n",
    "undefined-alias": "kind: Pod\nmetadata: *nowhere\n",
    "duplicate-anchor-use": "a: &x 1\nb: *y\n",
    "unterminated-quote": "kind: \"Pod\nmetadata: {name: x}\n",
    "unterminated-single-quote": "kind: 'Pod\n",
    "bad-escape": "kind: \"Po\\qd\"\n",
    "stray-colon-key": ": x\n::\n",
    "block-scalar-bad": "data: |\n  a\n b\n",
    "directive-garbage": "%YAML 9.9\n--- \nkind: Pod\n",
    "two-directives": "%YAML 1.1\n%YAML 1.1\n---\na: 1\n",
    "document-end-garbage": "kind: Pod\n... trailing\n",
    "control-char": "kind: Pod\x07\nmetadata: {name: x}\n",
    "nul-byte": "kind: Pod\x00\n",
    "second-doc-broken": "kind: Pod\nmetadata: {name: ok}\n---\nkind: [\n",
    "complex-key": "? [a, b]\n: c\n",
}

BROKEN_JSON = {
    "trailing-comma": '{"kind": "Pod", "metadata": {"name": "x"},}',
    "single-quotes": "{'kind': 'Pod'}",
    "unquoted-key": '{kind: "Pod"}',
    "truncated": '{"kind": "Pod", "metadata": {"name": "x"',
    "two-values": '{"kind": "Pod"} {"kind": "Pod"}',
    "comment": '// a dump\n{"kind": "Pod"}',
    "bom": '\ufeff{"kind": "Pod", "metadata": {"name": "x"}}',
    "empty": "",
    "whitespace": "   \n\t ",
    "deep-array": "[" * 100_000 + "]" * 100_000,
    "deep-object": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "bad-unicode-escape": '{"kind": "\\ud800\\uzzzz"}',
    "yaml-in-json": "kind: Pod\nmetadata:\n  name: x\n",
}

# Documents that parse but are not Kubernetes objects: (text, what the message says)
NOT_OBJECTS = {
    "scalar": ("42\n", "found an integer"),
    "string": ("just some text\n", "found a string"),
    "list": ("- kind: Pod\n", "found a list"),
    "no-kind": ("metadata: {name: x}\n", "not a Kubernetes object"),
    "kind-int": ("kind: 7\nmetadata: {name: x}\n", "not a Kubernetes object"),
    "metadata-string": ("kind: Pod\nmetadata: x\n", "not a Kubernetes object"),
    "metadata-list": ("kind: Pod\nmetadata: [name]\n", "not a Kubernetes object"),
    "no-name": ("kind: Pod\nmetadata: {namespace: default}\n", "metadata.name"),
    "name-int": ("kind: Pod\nmetadata: {name: 12}\n", "metadata.name"),
    "name-null": ("kind: Pod\nmetadata: {name: null}\n", "metadata.name"),
    "name-list": ("kind: Pod\nmetadata: {name: [a]}\n", "metadata.name"),
    "items-string": ("kind: List\nitems: nope\n", "items of List is not a list"),
    "items-mapping": ("kind: PodList\nitems: {a: 1}\n", "items of PodList is not a list"),
    "items-int": ("kind: List\nitems: 3\n", "items of List is not a list"),
    "item-int": ("kind: List\nitems: [1]\n", r"items\[0\]: expected a Kubernetes object"),
    "item-null-then-string": ("kind: List\nitems: [null, x]\n", r"items\[0\]: .*found null"),
    "item-list": ("kind: List\nitems: [[]]\n", r"items\[0\]"),
    "item-without-kind": ("kind: List\nitems: [{metadata: {name: a}}]\n", r"items\[0\]"),
    "item-name-int": ("kind: List\nitems: [{kind: Pod, metadata: {name: 1}}]\n",
                      r"items\[0\]: Pod has no string metadata.name"),
    "nested-list-garbage": ("kind: List\nitems: [{kind: List, items: [7]}]\n",
                            r"items\[0\] items\[0\]"),
    "second-document-garbage": ("kind: Pod\nmetadata: {name: fine-pod}\n---\n7\n",
                                r"\(document 2\): expected a Kubernetes object"),
    "recursive-list": ("&a [*a]\n", "refers to the value that contains it"),
    # PyYAML's own parser gives up (recursion), libyaml's parses it: either way, said so.
    "deep-flow": ("a: " + "[" * 5000 + "]" * 5000 + "\n",
                  "not valid YAML|not a Kubernetes object"),
    "deep-block": ("".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "v\n",
                   "not a Kubernetes object"),
    "garbage-among-many": ("kind: List\nitems:\n" + "- 1\n" * 5000, "and 4980 more problems"),
}


def _yaml_cases() -> Iterator[Entry]:
    for name, text in BROKEN_YAML.items():
        yield _garbage(f"yaml/{name}.yaml", text, "not valid YAML")


def _json_cases() -> Iterator[Entry]:
    for name, text in BROKEN_JSON.items():
        yield _garbage(f"json/{name}.json", text, "not valid JSON")


def _not_object_cases() -> Iterator[Entry]:
    for name, (text, message) in NOT_OBJECTS.items():
        yield _garbage(f"documents/{name}.yaml", text, message)


def _binary_cases() -> Iterator[Entry]:
    rng = random.Random(9)
    for index in range(12):
        noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096)))
        suffix = (".yaml", ".yml", ".json")[index % 3]
        yield _garbage(f"binary/noise-{index}{suffix}", b"\xff" + noise, "not UTF-8 text")
    encoded = "kind: Pod\nmetadata: {name: x}\n"
    yield _garbage("binary/utf-16.yaml", encoded.encode("utf-16"), "not UTF-8 text")
    yield _garbage("binary/latin-1.yaml", "kind: Pod\nmetadata: {name: caf\xe9}\n"
                   .encode("latin-1"), "not UTF-8 text")
    yield _garbage("binary/gzip.yaml", bytes.fromhex("1f8b0800000000000003") + b"\x00" * 20,
                   "not UTF-8 text")
    yield _garbage("binary/elf.json", b"\x7fELF\x02\x01\x01" + bytes(100), "not valid JSON")


def _sparse(size: int) -> Maker:
    def make(path: Path) -> None:
        with path.open("wb") as out:
            out.truncate(size)
    return make


def _huge_cases() -> Iterator[Entry]:
    for name, size in (("just-over", MAX_FILE_BYTES + 1), ("65-MiB", 65 * 2**20),
                       ("1-GiB", 2**30)):
        for suffix in (".yaml", ".json"):
            file = f"extra/huge-{name}{suffix}"
            yield Entry(f"huge/{name}{suffix}", files={file: _sparse(size)},
                        problem=(re.escape(file), "MiB, skipped"), same_verdicts=True)
    log = "logs/default/docker-registry-3-7kq2x.log"
    yield Entry("huge/registry-log", files={log: _sparse(MAX_FILE_BYTES + 1)},
                problem=(re.escape(log), "MiB, skipped"), same_verdicts=True)


def _link(target: str) -> Maker:
    return lambda path: path.symlink_to(target)


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _filesystem_cases() -> Iterator[Entry]:
    cases: dict[str, dict[str, bytes | Maker]] = {
        "dangling-link": {"extra/gone.yaml": _link("/nonexistent/registry-doctor.yaml")},
        "link-loop": {"extra/loop/self": _link("..")},
        "link-to-device": {"extra/zero.yaml": _link("/dev/zero")},
        "fifo": {"extra/pipe.yaml": _fifo},
        "directory-named-yaml": {"extra/dir.yaml/readme.txt": b"not a dump file"},
        "hidden-file": {"extra/.hidden.yaml": b"kind: [\n"},
        "unicode-name": {"extra/\u00e9t\u00e9 \u2603.yaml": b"kind: [\n"},
        "newline-name": {"extra/line\nbreak.yaml": b"kind: [\n"},
        "log-outside-logs": {"extra/orphan.log": b"\xff\xfe"},
        "log-not-utf8": {"logs/default/docker-registry-3-7kq2x.log": b"level=info \xff\xfe\n"},
        "log-for-unknown-pod": {"logs/nowhere/nobody.log": b"hello\n"},
        "empty-yaml": {"extra/empty.yaml": b""},
        "only-comments": {"extra/comments.yaml": b"# nothing here\n# at all\n"},
        "only-separators": {"extra/separators.yaml": b"---\n---\n...\n"},
    }
    for name, files in cases.items():
        yield Entry(f"filesystem/{name}", files=files, same_verdicts=True)


def _truncation_cases() -> Iterator[Entry]:
    for base in ("healthy", "broken"):
        for path in sorted((CLUSTERS / base).glob("*.yaml")):
            text = path.read_bytes()
            for cut in range(1, 12):
                yield Entry(f"truncated/{base}-{path.stem}-{cut}of12", base=base,
                            files={path.name: text[:len(text) * cut // 12]})


# Values of each JSON type for replacing a field; null is valid anywhere (it means unset).
WRONG_VALUES: dict[str, Any] = {"string": "garbage", "list": ["garbage"], "integer": 7,
                                "null": None, "mapping": {"garbage": 1}, "boolean": True}
# Where a boolean is a trap of its own: Python's bool is an int, the API server's is not.
NUMERIC = {"integer", "number", "intstr", "quantity"}
ODD_STRINGS = {"empty": "", "long": "x" * 100_000,
               "control": "a\x00b\nc\r\n\u202e\u2603\U0001f600"}
ODD_NUMBERS = {"negative": -1, "huge": 2**70}


@cache
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


def api_type(kind: str, path: FieldPath) -> str | None:
    """The type the API server decodes at `path` of a `kind` ("string", "[V1Container]",
    "{quantity}", "V1PodSpec"...); None for a field it does not know."""
    types = _schema()["types"]
    current = _schema()["kinds"].get(kind)
    for part in path:
        if current is None:
            return None
        if current.startswith("["):
            current = current[1:-1] if isinstance(part, int) else None
        elif current.startswith("{"):
            current = current[1:-1]
        elif current in types:
            current = types[current].get(part) if isinstance(part, str) else None
        else:
            return None
    return current


_ADMITS = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
           "intstr": (int, str), "quantity": (int, float, str), "any": (object,)}


def admits(expected: str, value: Any) -> bool:
    """Would the API server decode `value` as `expected`? (null always means unset.)"""
    if value is None:
        return True
    if expected.startswith("["):
        return isinstance(value, list)
    if expected.startswith("{") or expected not in _ADMITS:
        return isinstance(value, dict)
    if isinstance(value, bool) and expected in ("integer", "number", "intstr", "quantity"):
        return False
    return isinstance(value, _ADMITS[expected])


def _holds(node: Any, part: str | int) -> bool:
    """Can `part` index `node` (a key of a mapping, an index within a list)?"""
    if isinstance(node, dict):
        return isinstance(part, str)
    return isinstance(node, list) and isinstance(part, int) and part < len(node)


def _replaced(objects: list[dict[str, Any]], target: Identity, path: FieldPath,
              value: Any) -> list[dict[str, Any]] | None:
    """A copy of `objects` with `path` of the target object set to `value`; None when the
    path cannot hold it (a parent is missing, or not a mapping or list)."""
    objects = copy.deepcopy(objects)
    node: Any = next(o for o in objects if identity(o) == target)
    for part in path[:-1]:
        if not _holds(node, part) or (isinstance(node, dict) and part not in node):
            return None
        node = node[part]
    if not _holds(node, path[-1]):
        return None
    node[path[-1]] = value
    return objects


def _dump_entry(entry_id: str, base: str, objects: list[dict[str, Any]],
                problem: tuple[str, ...] = ()) -> Entry:
    """The base's objects, changed, as one JSON List; the base's logs stay."""
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}).encode()
    replaces = tuple(p.name for p in (CLUSTERS / base).glob("*.yaml"))
    return Entry(entry_id, base=base, files={"objects.json": document}, replaces=replaces,
                 problem=problem)


def _field_pattern(path: FieldPath) -> str:
    """`spec.template.spec.containers[0].resources` as the loader names it, `[key]` for map
    keys included: the parts in order, separated by `.` or brackets."""
    return r"[.\[\]]+".join(re.escape(str(p)) for p in path) + r"\b"


def _expected_problem(kind: str, target: Identity, path: FieldPath, value: Any
                      ) -> tuple[str, ...]:
    if path in (("kind",), ("metadata",)):
        return ("objects.json", "not a Kubernetes object")
    if path == ("metadata", "name"):
        return ("objects.json", "metadata.name")
    expected = api_type(kind, path)
    if expected is None or admits(expected, value):
        return ()
    _, namespace, name = target
    shown = f"{namespace}/{name}" if namespace and path != ("metadata", "namespace") else name
    return ("objects.json", re.escape(f"{kind} {shown}:"), _field_pattern(path))


def _wrong_type_cases() -> Iterator[Entry]:
    for base in ("healthy", "broken"):
        objects = load_dump(CLUSTERS / base).objects
        for target, paths in sorted(fields_read(CLUSTERS / base).items()):
            for path in sorted(paths, key=str):
                for type_name, value in WRONG_VALUES.items():
                    if type_name == "boolean" and api_type(target[0], path) not in NUMERIC:
                        continue  # elsewhere a boolean is just another wrong scalar
                    changed = _replaced(objects, target, path, value)
                    if changed is None or _same_type(objects, target, path, value):
                        continue
                    where = "/".join(str(p) for p in (*target, *path))
                    yield _dump_entry(f"wrong-type/{base}/{where}={type_name}", base, changed,
                                      _expected_problem(target[0], target, path, value))


def _same_type(objects: list[dict[str, Any]], target: Identity, path: FieldPath,
               value: Any) -> bool:
    node: Any = next(o for o in objects if identity(o) == target)
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    return type(node) is type(value)


def _odd_value_cases() -> Iterator[Entry]:
    objects = load_dump(CLUSTERS / "healthy").objects
    for target, paths in sorted(fields_read(CLUSTERS / "healthy").items()):
        for path in sorted(paths, key=str):
            kind = api_type(target[0], path)
            odd = ODD_STRINGS if kind in ("string", "quantity", "intstr") else \
                ODD_NUMBERS if kind in ("integer", "number") else {}
            for label, value in odd.items():
                changed = _replaced(objects, target, path, value)
                if changed is not None:
                    where = "/".join(str(p) for p in (*target, *path))
                    yield _dump_entry(f"odd-value/{where}={label}", "healthy", changed)


CONSOLE_SECRET = "console-secret.yaml"
CONSOLE_FILE = "registry-console.cert"


def _console_pem() -> bytes:
    secret = yaml.safe_load((CLUSTERS / "healthy" / CONSOLE_SECRET).read_text())
    return base64.b64decode(secret["data"][CONSOLE_FILE])


def _pem_variants(pem: bytes) -> Iterator[tuple[str, bytes]]:
    blocks = re.findall(rb"-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----\n", pem, re.S)
    certificates = [b for b in blocks if b.startswith(b"-----BEGIN CERTIFICATE")]
    key = next(b for b in blocks if b"PRIVATE KEY" in b.split(b"\n")[0])
    yield "empty", b""
    yield "whitespace", b"\n \n"
    for cut in range(1, 8):
        yield f"truncated-{cut}of8", pem[:len(pem) * cut // 8]
    yield "end-label-wrong", pem.replace(b"-----END CERTIFICATE-----", b"-----END KEY-----", 1)
    yield "begin-lower-case", pem.replace(b"BEGIN CERTIFICATE", b"begin certificate")
    yield "no-end-line", pem.replace(b"-----END CERTIFICATE-----\n", b"", 1)
    yield "bad-base64", pem.replace(b"MII", b"M!I", 1)
    yield "base64-of-noise", b"".join(_pem_block("CERTIFICATE", bytes(range(256)))
                                      for _ in range(2)) + key
    der = base64.b64decode(b"".join(certificates[0].split(b"\n")[1:-2]))
    yield "der", der
    yield "der-in-pem-file", der + key
    yield "key-only", key
    yield "certificates-only", b"".join(certificates)
    yield "key-first", key + b"".join(certificates)
    yield "reversed-chain", b"".join(reversed(certificates)) + key
    yield "duplicated", pem + pem
    yield "crlf", pem.replace(b"\n", b"\r\n")
    yield "over-1-MiB", pem * (2**20 // len(pem) + 2)
    yield "binary-noise", bytes(random.Random(3).randrange(256) for _ in range(3000))
    yield "encrypted-header", pem.replace(key.split(b"\n")[0] + b"\n", key.split(b"\n")[0]
                                          + b"\nProc-Type: 4,ENCRYPTED\n"
                                          b"DEK-Info: AES-128-CBC,00\n\n")


def _pem_block(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der)
    return f"-----BEGIN {label}-----\n".encode() + body + f"-----END {label}-----\n".encode()


def _pem_cases() -> Iterator[Entry]:
    """The console's certificate file replaced by damaged PEM (the Secret stays valid)."""
    secret = yaml.safe_load((CLUSTERS / "healthy" / CONSOLE_SECRET).read_text())
    for name, data in _pem_variants(_console_pem()):
        secret["data"][CONSOLE_FILE] = base64.b64encode(data).decode()
        yield Entry(f"pem/{name}", files={CONSOLE_SECRET: yaml.safe_dump(secret).encode()},
                    mentions=("cert-chain-order", re.escape(CONSOLE_FILE)))
    secret["data"][CONSOLE_FILE] = "not base64 at all!"
    yield Entry("pem/secret-value-not-base64",
                files={CONSOLE_SECRET: yaml.safe_dump(secret).encode()},
                mentions=("cert-chain-order", re.escape(CONSOLE_FILE)))


def corpus() -> list[Entry]:
    generators = (_yaml_cases, _json_cases, _not_object_cases, _binary_cases, _huge_cases,
                  _filesystem_cases, _truncation_cases, _wrong_type_cases, _odd_value_cases,
                  _pem_cases)
    return [entry for generate in generators for entry in generate()]
