"""A dump folder read as the queries need it: each YAML file scanned once (doctor.snapshot.scan),
an object parsed only when a query can match it, and every file remembered by path,
modification time and size, so the exporter's next run re-reads only the files that changed.

What the full parse (`dump.load_dump`) would build, this builds the same objects of, for
every query: pieces the scanner cannot place, JSON files and any file it does not vouch for are
parsed whole. One difference is deliberate: problems (type errors, unparsable pieces) are
reported for what was parsed, so an odd pod in a namespace no check reads goes unmentioned.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from registry_doctor.doctor.snapshot.dump import (
    MAX_FILE_BYTES,
    MAX_PROBLEMS_PER_FILE,
    OBJECT_SUFFIXES,
    dump_files,
    parse_documents,
    parse_object,
    previous_log_key,
)
from registry_doctor.doctor.snapshot.scan import (
    INDEXED_FIELDS,
    UNKNOWN_FIELDS,
    Piece,
    Unscannable,
    scan,
)

Stamp = tuple[int, int, int]  # st_mtime_ns, st_size, st_ino


@dataclass
class DumpFile:
    """One object file: its pieces, and what has been parsed of them."""

    path: Path
    relative: str
    stamp: Stamp
    pieces: list[Piece]
    whole: bool  # parsed as one: not scannable, JSON, or a piece of it did not parse
    objects: list[list[dict[str, Any]] | None] = field(default_factory=list)
    problems: list[list[str]] = field(default_factory=list)
    read_problem: str | None = None
    # kind -> namespace ("default" for none; None: not known) -> indexes of its pieces
    by_kind: dict[str | None, dict[str | None, list[int]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Nothing parsed yet of the current pieces."""
        self.objects = [None] * len(self.pieces)
        self.problems = [[] for _ in self.pieces]
        self.by_kind = {}
        for index, piece in enumerate(self.pieces):
            namespace = piece.fields[0]
            self.by_kind.setdefault(piece.kind, {}).setdefault(
                namespace or "default" if namespace is not None else None, []).append(index)

    def candidates(self, want: Want) -> list[int]:
        """Indexes of the pieces that may hold objects `want` admits, in file order: those of
        its kind in its namespace (or any), and those of no known kind."""
        of_kind = self.by_kind.get(want.kind, {})
        if want.namespace is None:
            found = [i for indexes in of_kind.values() for i in indexes]
        else:
            found = [*of_kind.get(want.namespace, ()), *of_kind.get(None, ())]
        found += [i for indexes in self.by_kind.get(None, {}).values() for i in indexes]
        return sorted(found)

    def all_problems(self) -> list[str]:
        found = [p for problems in self.problems for p in problems]
        if self.read_problem:
            found.insert(0, self.read_problem)
        if len(found) > MAX_PROBLEMS_PER_FILE:  # as parse_documents caps a file's problems
            extra = len(found) - MAX_PROBLEMS_PER_FILE
            found = [*found[:MAX_PROBLEMS_PER_FILE],
                     f"{self.relative}: ... and {extra} more problems"]
        return found


@dataclass(frozen=True)
class Want:
    """What a query can match: a kind, and where known a namespace and field values."""

    kind: str
    namespace: str | None  # None: any
    fields: dict[str, str]  # path -> value an equality field selector asks for

    def admits(self, piece: Piece) -> bool:
        if piece.kind != self.kind:
            return False
        for path, known in zip(INDEXED_FIELDS, piece.fields, strict=True):
            if known is None:
                continue
            if path == "metadata.namespace" and self.namespace is not None \
                    and (known or "default") != self.namespace:
                return False
            if path in self.fields and known != self.fields[path]:
                return False
        return True


# Scanned files of the dump folders read lately in this process, by resolved folder: `serve`
# reads the same folder every interval; a process reading many folders keeps only the last few.
_FOLDERS: dict[Path, dict[str, DumpFile]] = {}
MAX_CACHED_FOLDERS = 4
_LOCK = threading.Lock()


class DumpIndex:
    """The files of one dump folder as of now, their pieces parsed on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        known = _FOLDERS.get(root.resolve(), {})
        self.files: list[DumpFile] = []
        self.logs: dict[tuple[str, str], Path] = {}  # (namespace, pod) -> log file
        # (namespace, pod, container) -> its previous instance's log file
        self.previous_logs: dict[tuple[str, str, str], Path] = {}
        for path, relative in dump_files(root):
            if path.suffix in OBJECT_SUFFIXES:
                self.files.append(_current(path, relative, known.get(relative)))
            elif path.suffix == ".log" and len(path.parts) >= 3 \
                    and path.parent.parent.name == "logs":
                if self._readable_log(path, relative):
                    self.logs[(path.parent.name, path.stem)] = path
            elif (key := previous_log_key(relative)) is not None \
                    and self._readable_log(path, relative):
                self.previous_logs[key] = path
        _FOLDERS.pop(root.resolve(), None)  # the newest last: the oldest goes first
        _FOLDERS[root.resolve()] = {f.relative: f for f in self.files}
        while len(_FOLDERS) > MAX_CACHED_FOLDERS:
            del _FOLDERS[next(iter(_FOLDERS))]

    def _readable_log(self, path: Path, relative: str) -> bool:
        """Logs are read at their tail when asked; one too big for the full parse is skipped
        here as there, with the same problem, so both readings judge alike."""
        try:
            too_big = path.stat().st_size > MAX_FILE_BYTES
        except OSError as error:
            self.files.append(_unreadable(path, relative, (0, 0, 0),
                                          f"cannot read: {error.strerror}"))
            return False
        if too_big:
            self.files.append(_unreadable(path, relative, (0, 0, 0),
                                          f"larger than {MAX_FILE_BYTES // 2**20} MiB, skipped"))
        return not too_big

    def objects(self, want: Want) -> Iterator[dict[str, Any]]:
        """Every object of `want.kind` the full parse would give that `want` admits (and
        maybe more: the caller filters), in dump order."""
        with _LOCK:
            for dump_file in self.files:
                _parse(dump_file, [i for i in dump_file.candidates(want)
                                   if dump_file.objects[i] is None
                                   and want.admits(dump_file.pieces[i])])
        for dump_file in self.files:
            for index in dump_file.candidates(want):
                objects = dump_file.objects[index]
                if objects is not None:
                    yield from (o for o in objects if o.get("kind") == want.kind)

    def problems(self) -> list[str]:
        return [p for dump_file in self.files for p in dump_file.all_problems()]

    def one_of_each_kind(self) -> list[dict[str, Any]]:
        """One object of every kind the folder holds (what says which API groups it comes
        from), parsing one piece per kind rather than the folder."""
        kinds = {k for dump_file in self.files for k in dump_file.by_kind if k is not None}
        found = [next(self.objects(Want(kind, None, {})), None) for kind in sorted(kinds)]
        unplaced = [o for dump_file in self.files
                    for indexes in dump_file.by_kind.get(None, {}).values() for i in indexes
                    for o in dump_file.objects[i] or ()]
        return [o for o in found if o is not None] + unplaced


def _current(path: Path, relative: str, cached: DumpFile | None) -> DumpFile:
    """The file's entry: the cached one while the file is unchanged, else read and scanned."""
    try:
        status = path.stat()
    except OSError as error:
        return _unreadable(path, relative, (0, 0, 0), f"cannot read: {error.strerror}")
    stamp = (status.st_mtime_ns, status.st_size, status.st_ino)
    if cached is not None and cached.stamp == stamp:
        return cached
    if status.st_size > MAX_FILE_BYTES:
        return _unreadable(path, relative, stamp,
                           f"larger than {MAX_FILE_BYTES // 2**20} MiB, skipped")
    try:
        data = path.read_bytes()
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return _unreadable(path, relative, stamp,
                           f"not UTF-8 text ({error.reason} at byte {error.start})")
    except OSError as error:
        return _unreadable(path, relative, stamp, f"cannot read: {error.strerror}")
    try:
        if relative.endswith(".json"):
            raise Unscannable
        dump_file = DumpFile(path, relative, stamp, scan(data, relative), whole=False)
    except Unscannable:
        dump_file = DumpFile(path, relative, stamp, [_whole_piece(data, relative)], whole=True)
    # What the scanner could not place is parsed now: its kind decides which queries want it.
    _parse(dump_file, [i for i, p in enumerate(dump_file.pieces) if p.kind is None], data)
    return dump_file


def _whole_piece(data: bytes, relative: str) -> Piece:
    return Piece(0, len(data), relative, None, None, UNKNOWN_FIELDS)


def _unreadable(path: Path, relative: str, stamp: Stamp, problem: str) -> DumpFile:
    dump_file = DumpFile(path, relative, stamp, [], whole=True)
    dump_file.read_problem = f"{relative}: {problem}"
    return dump_file


def _parse(dump_file: DumpFile, indexes: list[int], data: bytes | None = None) -> None:
    """Parse these pieces of the file (read again from disk unless given)."""
    if not indexes:
        return
    if data is None:
        data = _read_again(dump_file)
        if data is None:
            return
    if dump_file.whole:
        objects, problems = parse_documents(data.decode("utf-8"), dump_file.relative)
        dump_file.objects, dump_file.problems = [objects], [problems]
        return
    for index in indexes:
        piece = dump_file.pieces[index]
        text = data[piece.start:piece.end].decode("utf-8")
        if piece.dash_column is not None:  # a List item: its mapping, at its own indentation
            text = f"{text[:piece.dash_column]} {text[piece.dash_column + 1:]}"
        try:
            dump_file.objects[index], dump_file.problems[index] = parse_object(text, piece.where)
        except (yaml.YAMLError, RecursionError):
            # The full parse fails on the whole file: do the same, with its message.
            _become_whole(dump_file, data)
            return


def _become_whole(dump_file: DumpFile, data: bytes) -> None:
    dump_file.pieces = [_whole_piece(data, dump_file.relative)]
    dump_file.whole = True
    dump_file.reset()
    _parse(dump_file, [0], data)


def _read_again(dump_file: DumpFile) -> bytes | None:
    """The file's bytes, if it is still what was scanned; a file changed since is parsed
    whole from what it holds now."""
    try:
        with dump_file.path.open("rb") as stream:
            status = os.fstat(stream.fileno())
            data = stream.read()
    except OSError as error:
        dump_file.read_problem = f"{dump_file.relative}: cannot read: {error.strerror}"
        return None
    if (status.st_mtime_ns, status.st_size, status.st_ino) != dump_file.stamp:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as error:
            dump_file.read_problem = (f"{dump_file.relative}: not UTF-8 text ({error.reason} "
                                      f"at byte {error.start})")
            dump_file.pieces = []
            dump_file.reset()
            return None
        dump_file.stamp = (status.st_mtime_ns, status.st_size, status.st_ino)
        _become_whole(dump_file, data)
        return None
    return data
