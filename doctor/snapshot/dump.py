"""Reading and writing cluster dumps: folders of Kubernetes objects as `oc get -o yaml` and
must-gather write them.

A dump is every `*.yaml`, `*.yml` and `*.json` file below a folder, each holding one object, a
multi-document YAML stream or a `List`. Pod logs may sit beside them as
`logs/<namespace>/<pod>.log`, and a restarted container's previous log where `oc adm inspect`
puts it (`previous_log_key`). A file that does not parse is reported and skipped; the rest of
the dump still loads.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The redaction marker is part of the dump format: readers of a dump import it from here.
from registry_doctor.doctor.snapshot.redact import REDACTED as REDACTED
from registry_doctor.doctor.snapshot.redact import REDACTED_ANNOTATION as REDACTED_ANNOTATION
from registry_doctor.doctor.snapshot.redact import redact, redact_text
from registry_doctor.doctor.snapshot.redact import redact_secret as redact_secret
from registry_doctor.doctor.snapshot.shape import describe_type, type_problems

OBJECT_SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 64 * 1024 * 1024  # a dump file larger than this is not a Kubernetes object list
MAX_PROBLEMS_PER_FILE = 20
ALIAS_SLACK = 10_000  # values beyond the file's length that aliases may add


@dataclass
class Dump:
    objects: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[tuple[str, str], str] = field(default_factory=dict)  # (namespace, pod) -> text
    # (namespace, pod, container) -> the log of the container's previous instance
    previous_logs: dict[tuple[str, str, str], str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # "file: what is wrong"


# libyaml's parser when PyYAML has it: 7x faster on a must-gather, same documents.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _SafeLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader that keeps timestamps as strings, as the API server sends them."""


_SafeLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_documents(text: str, source: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Objects in one file's text, with List items flattened, and the problems found."""
    problems: list[str] = []
    try:
        if source.endswith(".json"):
            documents = [json.loads(text)]
        else:
            documents = list(yaml.load_all(text, Loader=_SafeLoader))
            size = _expanded_size(documents, {}) if "*" in text else 0
            if size == math.inf:
                return [], [f"{source}: refused: a YAML alias refers to the value that "
                            "contains it (*name inside &name): it never ends"]
            if size > len(text) + ALIAS_SLACK:
                return [], [f"{source}: refused: its YAML aliases (*name) expand to more "
                            "values than the file has characters (an alias bomb?)"]
    except (yaml.YAMLError, json.JSONDecodeError, RecursionError) as error:
        return [], [f"{source}: not valid {'JSON' if source.endswith('.json') else 'YAML'}: "
                    f"{_parse_error(error)}"]
    objects: list[dict[str, Any]] = []
    for index, document in enumerate(documents):
        where = source if len(documents) == 1 else f"{source} (document {index + 1})"
        if document is None:
            continue
        objects.extend(_flatten(document, where, problems))
    if len(problems) > MAX_PROBLEMS_PER_FILE:  # a List of garbage must not flood the report
        extra = len(problems) - MAX_PROBLEMS_PER_FILE
        problems = [*problems[:MAX_PROBLEMS_PER_FILE], f"{source}: ... and {extra} more problems"]
    return objects, problems


def _expanded_size(value: Any, seen: dict[int, float]) -> float:
    """How many values `value` holds once every alias is expanded (PyYAML shares an aliased
    value instead of copying it, so loading is cheap; whoever walks it pays the expansion).
    Linear in the distinct values: each is counted once and remembered."""
    if not isinstance(value, dict | list):
        return 1
    if id(value) not in seen:
        seen[id(value)] = math.inf  # a cycle (`&a [*a]`) never ends
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        seen[id(value)] = 1 + sum(_expanded_size(item, seen) for item in items)
    return seen[id(value)]


def _parse_error(error: Exception) -> str:
    """Where and what, without the parser's quote of the offending line: a broken Secret
    file must not print its values."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        context = f" ({error.context})" if error.context else ""
        return f"{where}{error.problem or 'cannot parse'}{context}"
    if isinstance(error, yaml.reader.ReaderError):
        return f"{error.reason} (position {error.position})"
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} (line {error.lineno}, column {error.colno})"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return _one_line(error)


def parse_object(text: str, where: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The objects of one document cut from a file by doctor.snapshot.scan (one List item, or a
    whole document without anchors), named `where` in problems. Raises yaml.YAMLError."""
    document = yaml.load(text, Loader=_SafeLoader)
    problems: list[str] = []
    return ([] if document is None else _flatten(document, where, problems)), problems


def _flatten(document: Any, where: str, problems: list[str]) -> list[dict[str, Any]]:
    if not isinstance(document, dict):
        problems.append(f"{where}: expected a Kubernetes object (a mapping), "
                        f"found {describe_type(document)}")
        return []
    kind = document.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in document:
        items = document["items"]
        if not isinstance(items, list):
            problems.append(f"{where}: field items of {kind} is not a list")
            return []
        found: list[dict[str, Any]] = []
        for position, item in enumerate(items):
            found.extend(_flatten(item, f"{where} items[{position}]", problems))
        return found
    if not isinstance(kind, str) or not isinstance(document.get("metadata"), dict):
        problems.append(f"{where}: not a Kubernetes object (needs string kind and "
                        "mapping metadata)")
        return []
    if not isinstance(document["metadata"].get("name"), str):
        problems.append(f"{where}: {kind} has no string metadata.name")
        return []
    problems.extend(f"{where}: {kind} {_identity(document)}: {problem}"
                    for problem in type_problems(document))
    return [document]


def _identity(obj: dict[str, Any]) -> str:
    namespace = obj["metadata"].get("namespace")
    name = obj["metadata"]["name"]
    return f"{namespace}/{name}" if isinstance(namespace, str) and namespace else name


def dump_files(root: Path) -> list[tuple[Path, str]]:
    """The files of a dump folder with their paths relative to it, sorted. A symbolic link is
    followed only when it stays inside the folder: a dump is someone else's data, and a link
    to /etc or a home folder must not be read (nor, through a snapshot, copied). Each folder
    is read once, so link loops end."""
    top = root.resolve()
    found: list[tuple[Path, str]] = []
    seen: set[tuple[int, int]] = set()  # (device, inode) of the folders read
    pending = [(str(root), "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            status = os.stat(folder)
            if (status.st_dev, status.st_ino) in seen:
                continue
            seen.add((status.st_dev, status.st_ino))
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink() and not Path(entry.path).resolve().is_relative_to(top):
                continue
            relative = prefix + entry.name
            if entry.is_dir():
                pending.append((entry.path, relative + "/"))
            elif entry.is_file():
                found.append((Path(entry.path), relative))
    # Sorted part by part, as paths compare.
    return sorted(found, key=lambda file: file[1].split("/"))


PREVIOUS_LOG = "previous.log"
# `oc adm inspect` asks for timestamps (PodLogOptions.Timestamps): each line starts with one.
TIMESTAMP_BYTES = len("2019-06-03T09:38:31.204377812+00:00 ")  # the longest one
_LOG_TIMESTAMP = re.compile(rb"(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d) ")


def previous_log_key(relative: str) -> tuple[str, str, str] | None:
    """(namespace, pod, container) of a previous container's log in the layout `oc adm
    inspect` writes: namespaces/<ns>/pods/<pod>/<container>/<container>/logs/previous.log
    (openshift/oc pkg/cli/admin/inspect/pod.go, gatherContainerLogs)."""
    parts = relative.split("/")
    if len(parts) >= 8 and parts[-8] == "namespaces" and parts[-6] == "pods" \
            and parts[-4] == parts[-3] and parts[-2:] == ["logs", PREVIOUS_LOG]:
        return parts[-7], parts[-5], parts[-4]
    return None


def previous_log_path(namespace: str, pod: str, container: str) -> str:
    return f"namespaces/{namespace}/pods/{pod}/{container}/{container}/logs/{PREVIOUS_LOG}"


def without_timestamps(data: bytes) -> bytes:
    """A log as the API serves it without `timestamps=true`."""
    return _LOG_TIMESTAMP.sub(b"", data)


def load_dump(root: Path) -> Dump:
    dump = Dump()
    for path, relative in dump_files(root):
        if path.suffix in OBJECT_SUFFIXES:
            text = _read_text(path, relative, dump.problems)
            if text is not None:
                objects, problems = parse_documents(text, relative)
                dump.objects.extend(objects)
                dump.problems.extend(problems)
        elif path.suffix == ".log" and len(path.parts) >= 3 and path.parent.parent.name == "logs":
            # Logs are read as the live API returns them: a stray byte does not hide the rest.
            text = _read_text(path, relative, dump.problems, errors="replace")
            if text is not None:
                dump.logs[(path.parent.name, path.stem)] = text
        elif (key := previous_log_key(relative)) is not None:
            text = _read_text(path, relative, dump.problems, errors="replace")
            if text is not None:
                dump.previous_logs[key] = without_timestamps(text.encode()).decode()
    return dump


def _read_text(path: Path, relative: str, problems: list[str],
               errors: str = "strict") -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            problems.append(f"{relative}: larger than {MAX_FILE_BYTES // 2**20} MiB, skipped")
            return None
        return path.read_bytes().decode("utf-8", errors)
    except UnicodeDecodeError as error:
        problems.append(f"{relative}: not UTF-8 text ({error.reason} at byte {error.start})")
    except OSError as error:
        problems.append(f"{relative}: cannot read: {error.strerror}")
    return None


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def write_dump(out: Path, collections: dict[str, list[dict[str, Any]]],
               logs: dict[tuple[str, str], str], include_secrets: bool = False,
               previous_logs: dict[tuple[str, str, str], str] | None = None) -> list[Path]:
    """Write collections as `<collection>.yaml` Lists (readable by `load_dump`) plus logs,
    previous containers' logs in `oc adm inspect`'s layout.
    Secret values are redacted unless `include_secrets`; then only the owner can read the
    folder and the files (0700, 0600)."""
    _make_folder(out, include_secrets)
    written = []
    for name, objects in sorted(collections.items()):
        if not include_secrets:
            objects = [redact(o) for o in objects]
        path = out / f"{name}.yaml"
        _write(path, yaml.dump({"apiVersion": "v1", "kind": "List", "items": objects},
                               Dumper=_Dumper, sort_keys=False), include_secrets)
        written.append(path)
    for (namespace, pod), text in sorted(logs.items()):
        text = text if include_secrets else redact_text(text)  # keys, URL credentials
        path = out / "logs" / namespace / f"{pod}.log"
        _make_folder(path.parent.parent, include_secrets)
        _make_folder(path.parent, include_secrets)
        _write(path, text, include_secrets)
        written.append(path)
    for (namespace, pod, container), text in sorted((previous_logs or {}).items()):
        text = text if include_secrets else redact_text(text)
        path = out / previous_log_path(namespace, pod, container)
        for folder in reversed(path.relative_to(out).parents[:-1]):
            _make_folder(out / folder, include_secrets)
        _write(path, text, include_secrets)
        written.append(path)
    return written


def _make_folder(folder: Path, private: bool) -> None:
    """A private folder is made 0700; an existing one others can enter is refused, not
    changed: its other files are not ours to hide or expose."""
    if not private:
        folder.mkdir(parents=True, exist_ok=True)
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=0o700)
        folder.chmod(0o700)  # mkdir's mode passes through the umask
    except FileExistsError:
        if not folder.is_dir() or folder.is_symlink():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder") from None
        if folder.stat().st_mode & 0o077:
            raise PermissionError(errno.EACCES, "others can read this folder: "
                                  "--include-secrets writes to a new folder or to one only "
                                  "its owner can read (chmod 700)") from None


def _write(path: Path, text: str, private: bool) -> None:
    """The file's text; a private file is 0600 from its creation on, and never written
    through a symlink."""
    if not private:
        path.write_text(text)
        return
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(descriptor, 0o600)  # a file that existed keeps its mode through O_CREAT
        file.write(text)
