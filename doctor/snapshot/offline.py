"""A `Source` over a dump folder: the same queries as live mode, answered from files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from doctor.snapshot import CollectError
from doctor.snapshot.dump import Dump, load_dump
from doctor.snapshot.kinds import Collection, Query
from doctor.snapshot.selectors import SelectorError, field_matcher, label_matcher
from doctor.workload import as_dict


class DumpSource:
    def __init__(self, root: Path, dump: Dump | None = None) -> None:
        self.root = root
        self.dump = dump if dump is not None else load_dump(root)

    def describe(self) -> dict[str, Any]:
        return {"type": "dump", "path": str(self.root), "problems": list(self.dump.problems)}

    def fetch(self, collection: Collection, query: Query, timeout: float) -> list[dict]:
        try:
            labels = label_matcher(query.label_selector)
            fields = field_matcher(query.field_selector)
        except SelectorError as error:
            raise CollectError(f"{query.describe(collection.resource)}: {error}") from None
        return [
            obj for obj in self.dump.objects
            if _is_kind(obj, collection) and _in_scope(obj, collection, query)
            and labels(_labels(obj)) and fields(obj)
        ]

    def pod_log(self, namespace: str, pod: str, tail_lines: int, timeout: float) -> str:
        text = self.dump.logs.get((namespace, pod))
        if text is None:
            raise CollectError(f"no log for pod {namespace}/{pod} in the dump")
        return "\n".join(text.splitlines()[-tail_lines:])


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
