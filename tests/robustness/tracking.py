"""Which fields of which objects the checks and the fix planners read: run them over a dump
whose objects record every key and index read from them. The corpus replaces exactly those
fields."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from registry_doctor.checks import all_checks
from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.fix.model import FixOptions
from registry_doctor.doctor.fix.plan import make_plan, planner_reads
from registry_doctor.doctor.snapshot.dump import Dump, load_dump
from registry_doctor.doctor.snapshot.offline import DumpSource

FieldPath = tuple[str | int, ...]
Identity = tuple[str, str, str]  # kind, namespace ("" when cluster-scoped), name
Record = Callable[[FieldPath], None]


class _ReadDict(dict):
    """A mapping that records the path of every key read through it."""

    def __init__(self, data: dict, path: FieldPath, record: Record) -> None:
        super().__init__(data)
        self._path, self._record = path, record

    def _read(self, key: Any) -> Any:
        self._record((*self._path, key))
        return recording(super().__getitem__(key), (*self._path, key), self._record)

    def __getitem__(self, key: Any) -> Any:
        return self._read(key)

    def get(self, key: Any, default: Any = None) -> Any:
        if super().__contains__(key):
            return self._read(key)
        self._record((*self._path, key))  # asked for and absent: a field the checks read
        return default

    def items(self) -> list[tuple[Any, Any]]:  # type: ignore[override]
        return [(key, self._read(key)) for key in list(self.keys())]

    def values(self) -> list[Any]:  # type: ignore[override]
        return [self._read(key) for key in list(self.keys())]


class _ReadList(list):
    def __init__(self, data: list, path: FieldPath, record: Record) -> None:
        super().__init__(data)
        self._path, self._record = path, record

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return super().__getitem__(index)
        self._record((*self._path, index))
        return recording(super().__getitem__(index), (*self._path, index), self._record)

    def __iter__(self) -> Iterator[Any]:
        for index in range(len(self)):
            yield self[index]


def recording(value: Any, path: FieldPath, record: Record) -> Any:
    if isinstance(value, dict) and not isinstance(value, _ReadDict):
        return _ReadDict(value, path, record)
    if isinstance(value, list) and not isinstance(value, _ReadList):
        return _ReadList(value, path, record)
    return value


def identity(obj: dict[str, Any]) -> Identity:
    metadata = obj["metadata"]
    return obj["kind"], str(metadata.get("namespace") or ""), metadata["name"]


def fields_read(dump_dir: Path) -> dict[Identity, set[FieldPath]]:
    """Every field every check (opt-in ones included) and the fix planners of the failing
    ones read, per object of the dump."""
    dump = load_dump(dump_dir)
    read: dict[Identity, set[FieldPath]] = {}
    objects = [recording(obj, (), read.setdefault(identity(obj), set()).add)
               for obj in dump.objects]
    config = RunConfig(from_dir=dump_dir, node_pod_scan=True)  # every path, the node scan too
    checks = engine.select_checks(list(all_checks()), config=config)
    report, snapshot = engine.inspect(config, checks, DumpSource(dump_dir, Dump(objects,
                                                                                dump.logs)),
                                      also=planner_reads(checks))
    make_plan(report.results, snapshot, config, FixOptions(allow_disruptive=True), checks)
    return read
