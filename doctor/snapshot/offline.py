"""A `Source` over a dump folder: the same queries as live mode, answered from files.

The folder is read lazily (doctor.snapshot.dumpindex): a query parses only the objects it can
match, and log tails are read from the end of their files, bounded as live mode bounds them.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, BinaryIO

from registry_doctor.doctor.snapshot import CollectError
from registry_doctor.doctor.snapshot.dump import TIMESTAMP_BYTES, Dump, without_timestamps
from registry_doctor.doctor.snapshot.dumpindex import DumpIndex, Want
from registry_doctor.doctor.snapshot.kinds import LOG_TAIL_BYTES, Collection, Query
from registry_doctor.doctor.snapshot.scan import INDEXED_FIELDS
from registry_doctor.doctor.snapshot.selectors import SelectorError, field_matcher, label_matcher
from registry_doctor.doctor.workload import as_dict

_BLOCK_BYTES = 64 * 1024  # how far back a log tail is looked for at a time


class DumpSource:
    """`dump`: the folder fully parsed beforehand (`load_dump`), the reference the lazy reading
    is tested against; without it, the folder is read as the queries need."""

    def __init__(self, root: Path, dump: Dump | None = None) -> None:
        self.root = root
        self.dump = dump
        self.index = DumpIndex(root) if dump is None else None

    def describe(self) -> dict[str, Any]:
        problems = self.dump.problems if self.index is None else self.index.problems()
        return {"type": "dump", "path": str(self.root), "problems": list(problems)}

    def fetch(self, collection: Collection, query: Query, timeout: float) -> list[dict]:
        try:
            labels = label_matcher(query.label_selector)
            fields = field_matcher(query.field_selector)
        except SelectorError as error:
            raise CollectError(f"{query.describe(collection.resource)}: {error}") from None
        candidates = self.dump.objects if self.index is None else self.index.objects(
            _want(collection, query))
        return [
            obj for obj in candidates
            if _is_kind(obj, collection) and _in_scope(obj, collection, query)
            and labels(_labels(obj)) and fields(obj)
        ]

    def pod_log(self, namespace: str, pod: str, tail_lines: int, timeout: float) -> str:
        if self.index is None:
            text = self.dump.logs.get((namespace, pod))
            data = None if text is None else _tail(io.BytesIO(text.encode()), tail_lines)
        else:
            path = self.index.logs.get((namespace, pod))
            data = None if path is None else _read_tail(path, tail_lines)
        if data is None:
            raise CollectError(f"no log for pod {namespace}/{pod} in the dump")
        return _as_served(data)

    def previous_log(self, namespace: str, pod: str, container: str, tail_lines: int,
                     timeout: float) -> str | None:
        """A dump without the previous instance's log has none, as the API answers when the
        runtime kept none."""
        key = (namespace, pod, container)
        if self.index is None:
            text = self.dump.previous_logs.get(key)
            data = None if text is None else _tail(io.BytesIO(text.encode()), tail_lines)
        else:
            # The file's lines carry timestamps the answer has not: read enough for the
            # bound to apply to the lines without them.
            path = self.index.previous_logs.get(key)
            data = None if path is None else _read_tail(
                path, tail_lines, LOG_TAIL_BYTES + TIMESTAMP_BYTES * max(tail_lines, 0))
            data = None if data is None else without_timestamps(data)[:LOG_TAIL_BYTES]
        return None if data is None else _as_served(data)

    def api_groups(self, timeout: float) -> frozenset[str]:
        objects = self.dump.objects if self.index is None else self.index.one_of_each_kind()
        versions = (o.get("apiVersion") for o in objects)
        return frozenset(v.rpartition("/")[0] for v in versions if isinstance(v, str))


def _as_served(data: bytes) -> str:
    """Read as the API server's log endpoint is read: a stray byte does not hide the rest."""
    return "\n".join(data.decode("utf-8", "replace").splitlines())


def _want(collection: Collection, query: Query) -> Want:
    """What the index may skip for this query: other kinds, other namespaces, and other values
    of an indexed field an equality field selector names."""
    namespace = query.namespace if collection.namespaced else None
    asked: dict[str, str] = {}
    for term in (query.field_selector or "").split(","):
        path, operator, value = term.partition("==") if "==" in term else term.partition("=")
        if operator and not path.endswith("!") and path.strip() in INDEXED_FIELDS:
            asked[path.strip()] = value.strip()
    return Want(collection.kind, namespace, asked)


def _read_tail(path: Path, lines: int, limit: int = LOG_TAIL_BYTES) -> bytes | None:
    try:
        with path.open("rb") as stream:
            return _tail(stream, lines, limit)
    except OSError:
        return None


def _tail(stream: BinaryIO, lines: int, limit: int = LOG_TAIL_BYTES) -> bytes:
    """The last `lines` lines, then at most `limit` bytes of them: what the kubelet answers
    to tailLines and limitBytes. Read from the end a block at a time, so memory stays bounded
    whatever the log's size."""
    end = stream.seek(0, os.SEEK_END)
    stream.seek(end if lines <= 0 else _start_of_last_lines(stream, end, lines))
    return stream.read(limit)


def _start_of_last_lines(stream: BinaryIO, end: int, lines: int) -> int:
    stream.seek(max(end - 1, 0))
    line_ends = lines + (stream.read(1) == b"\n")  # the last line's own end starts no line
    position = end
    while position > 0:
        block_start = max(0, position - _BLOCK_BYTES)
        stream.seek(block_start)
        block = stream.read(position - block_start)
        at = len(block)
        while (at := block.rfind(b"\n", 0, at)) >= 0:
            line_ends -= 1
            if line_ends == 0:
                return block_start + at + 1
        position = block_start
    return 0


def _is_kind(obj: dict[str, Any], collection: Collection) -> bool:
    if obj.get("kind") != collection.kind:
        return False
    # `oc get -o yaml` of old clusters writes `apiVersion: v1` for OpenShift kinds too.
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    return group in (collection.group, "")


def _in_scope(obj: dict[str, Any], collection: Collection, query: Query) -> bool:
    metadata = obj["metadata"]
    if query.name is not None and metadata["name"] != query.name:
        return False
    if collection.namespaced and query.namespace is not None:
        return (metadata.get("namespace") or "default") == query.namespace
    return True


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in as_dict(obj["metadata"].get("labels")).items()}
