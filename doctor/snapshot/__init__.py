"""The cluster snapshot: every collection the selected checks need, fetched once and shared.

Only this package talks to Kubernetes (through a `Source`: the live API or a dump folder).
A collection that cannot be fetched is recorded with its cause; the checks that read it report
`unknown` with that cause while the others still run.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.snapshot.kinds import (
    CATALOGUE,
    LOG_COLLECTIONS,
    Collection,
    Query,
    ScopeUnavailable,
    closure,
    known_collections,
)
from registry_doctor.doctor.workload import Workload, as_dict, as_list

if TYPE_CHECKING:
    from registry_doctor.doctor.platform import Installation

# Enough for every independent collection of a full run at once (10 today): the run takes
# as many round trips as its longest chain of scopes, not more.
MAX_PARALLEL_REQUESTS = 16


class CollectError(Exception):
    """A request failed; the message is the cause shown to the user, e.g.
    'forbidden: list pods in default'. `source_failed`: the source gave no answer about the
    objects (API server unreachable, credentials rejected, server error), unlike a 403."""

    def __init__(self, message: str, source_failed: bool = False) -> None:
        super().__init__(message)
        self.source_failed = source_failed


class UndeclaredRead(Exception):
    """A check or planner read a collection its metadata does not declare: a bug, not an empty
    collection (the collector fetches only what is declared, so the read would quietly see
    nothing whenever no other selected check happens to declare it)."""


class Source(Protocol):
    def describe(self) -> dict[str, Any]: ...

    def fetch(self, collection: Collection, query: Query, timeout: float) -> list[dict]: ...

    def pod_log(self, namespace: str, pod: str, tail_lines: int, timeout: float) -> str: ...

    def api_groups(self, timeout: float) -> frozenset[str]:
        """The API groups the cluster serves (a dump: those of the objects it holds), from
        which the platform is recognised before anything is collected; raises CollectError."""
        ...
    def previous_log(self, namespace: str, pod: str, container: str, tail_lines: int,
                     timeout: float) -> str | None:
        """The log tail of the container's previous instance; None when it has none."""


@dataclass
class Snapshot:
    config: RunConfig
    source: dict[str, Any]
    collections: dict[str, list[dict]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    # The collections among `errors` that failed because the source did not answer: a run
    # with any is blind, not a judgement of the cluster (the exporter keeps its last report).
    source_failures: dict[str, str] = field(default_factory=dict)
    logs: dict[tuple[str, str], str] = field(default_factory=dict)  # (namespace, pod) -> tail
    # (namespace, pod, container) -> the tail of a restarted container's previous instance
    previous_logs: dict[tuple[str, str, str], str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # unreadable input, e.g. dump files
    # Set on a reader's view (`for_reader`): the collections it may read, and who it is.
    readable: frozenset[str] | None = None
    reader: str = ""
    platform: str = "openshift3"  # the platform it is judged as (doctor.platform.choose)

    def for_reader(self, reader: str, declared: Iterable[str]) -> Snapshot:
        """The same snapshot, readable only in `declared` and what their scopes depend on (a
        check that declares the registry pods may read the workload that selects them)."""
        return replace(self, readable=frozenset(closure(set(declared))), reader=reader)

    def items(self, collection: str) -> list[dict]:
        self._may_read(collection)
        return self.collections.get(collection, [])

    def error(self, collection: str) -> str | None:
        self._may_read(collection)
        return self.errors.get(collection)

    def _may_read(self, collection: str) -> None:
        if collection not in known_collections():
            raise ValueError(f"unknown snapshot collection: {collection}")
        if self.readable is not None and collection not in self.readable:
            raise UndeclaredRead(f"{self.reader} reads snapshot collection {collection}, which "
                                 "it does not declare (META.kinds, or the planner's reads)")

    def named(self, collection: str, name: str) -> dict | None:
        return next((o for o in self.items(collection) if o["metadata"]["name"] == name), None)

    def installation(self) -> Installation:
        """The registry installation as the platform's adapter locates it, read through this
        snapshot (or view)."""
        from registry_doctor.doctor.platform import installation

        return installation(self)

    def registry(self) -> Workload | None:
        return self.installation().registry

    def console(self) -> Workload | None:
        return self.installation().console


@dataclass(frozen=True)
class _LogRead:
    """One pod's log tail, read as soon as its pods collection is in."""

    collection: str  # "registry-logs" or "console-logs"
    pod: tuple[str, str]  # namespace, name
    previous: str | None = None  # a container: the tail of its previous instance


def collect(source: Source, wanted: Iterable[str], config: RunConfig,
            platform: str = "openshift3", deadline: float | None = None) -> Snapshot:
    """Fetch `wanted` collections (and what their scopes need), concurrently where independent;
    pod logs as soon as their pods are known. `platform`: what the snapshot is judged as.
    `deadline` (time.monotonic): when the run must be done, by default config.timeout from
    now."""
    unknown = set(wanted) - known_collections()
    if unknown:  # a typo in a check's metadata must not quietly read nothing
        raise ValueError(f"unknown snapshot collections: {', '.join(sorted(unknown))}")
    snapshot = Snapshot(config=config, source=source.describe(), platform=platform)
    deadline = time.monotonic() + config.timeout if deadline is None else deadline
    names = closure(set(wanted))
    pending = {n for n in names if n in CATALOGUE and CATALOGUE[n].serves(platform)}
    logs_of = {pods: logs for logs, pods in LOG_COLLECTIONS.items() if logs in names}
    running: dict[Future, str | _LogRead] = {}
    lost_logs: dict[str, list[str]] = {}
    # Not a `with` block: leaving one waits for every thread, even one stuck past the deadline.
    pool = ThreadPoolExecutor(MAX_PARALLEL_REQUESTS, thread_name_prefix="collect")
    try:
        while pending or running:
            for name in sorted(pending):
                if not any(d in pending or d in running.values() for d in CATALOGUE[name].needs):
                    pending.discard(name)
                    running[pool.submit(_gather, source, CATALOGUE[name], snapshot,
                                        deadline)] = name
            done, _ = wait(running, timeout=max(deadline - time.monotonic(), 0) + 1,
                           return_when=FIRST_COMPLETED)
            if not done:  # a source ignored its timeout: give up on what is still out
                for job in [*running.values(), *pending]:
                    name = job.collection if isinstance(job, _LogRead) else job
                    snapshot.errors[name] = snapshot.source_failures[name] = \
                        f"timed out after {config.timeout:g}s reading {name}"
                return snapshot
            for future in done:
                job = running.pop(future)
                if isinstance(job, _LogRead):
                    _store_log(snapshot, job, future, lost_logs)
                    continue
                _store(snapshot, job, future)
                if job in logs_of:
                    running.update(_read_logs(source, snapshot, logs_of[job], job, deadline,
                                              pool))
        for log_collection, failures in lost_logs.items():
            snapshot.errors[log_collection] = "; ".join(sorted(failures))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        # Described again once read: a dump names the problems of what the reads parsed.
        snapshot.source = source.describe()
    return snapshot


def _store(snapshot: Snapshot, name: str, future: Future) -> None:
    try:
        snapshot.collections[name] = future.result()
    except CollectError as error:
        snapshot.collections[name] = []
        snapshot.errors[name] = str(error)
        if error.source_failed:
            snapshot.source_failures[name] = str(error)


def _gather(source: Source, collection: Collection, snapshot: Snapshot,
            deadline: float) -> list[dict]:
    try:
        queries = collection.scope(snapshot.collections, snapshot.config)
    except ScopeUnavailable as error:
        raise CollectError(str(error)) from None
    if not queries:
        _raise_for_failed_needs(collection, snapshot)
    items: dict[tuple[str, str], dict] = {}
    for query in queries:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CollectError(f"timed out: run deadline reached before "
                               f"{query.describe(collection.resource)}")
        for obj in source.fetch(collection, query, remaining):
            metadata = obj["metadata"]
            items[(str(metadata.get("namespace", "")), metadata["name"])] = obj
    return list(items.values())


def _raise_for_failed_needs(collection: Collection, snapshot: Snapshot) -> None:
    """An empty scope is only trustworthy when everything it was computed from was fetched."""
    failed = [(d, snapshot.errors[d]) for d in collection.needs if d in snapshot.errors]
    if failed:
        causes = "; ".join(cause for _, cause in failed)
        raise CollectError(f"cannot scope {collection.name}: {causes}")


def _read_logs(source: Source, snapshot: Snapshot, log_collection: str, pods_collection: str,
               deadline: float, pool: ThreadPoolExecutor) -> dict[Future, _LogRead]:
    """One bounded tail per running pod, and one per restarted container of its previous
    instance: a crash's cause is in the log of the container that crashed."""
    pods = snapshot.items(pods_collection)
    reads = [_LogRead(log_collection, _pod_key(p, snapshot.config)) for p in pods
             if as_dict(p.get("status")).get("phase") == "Running"]
    reads += [_LogRead(log_collection, _pod_key(p, snapshot.config), container)
              for p in pods for container in restarted_containers(p)]
    tail = snapshot.config.log_tail_lines
    return {(pool.submit(source.pod_log, *read.pod, tail, max(deadline - time.monotonic(), 0.1))
             if read.previous is None else
             pool.submit(source.previous_log, *read.pod, read.previous, tail,
                         max(deadline - time.monotonic(), 0.1))): read for read in reads}


def restarted_containers(pod: dict[str, Any]) -> list[str]:
    """Containers of a pod that ran before: a last termination, or waiting in
    CrashLoopBackOff. Only these have a previous instance whose log can be read."""
    names = []
    for status in as_list(as_dict(pod.get("status")).get("containerStatuses")):
        status = as_dict(status)
        crash_loop = as_dict(as_dict(status.get("state")).get("waiting")).get("reason") \
            == "CrashLoopBackOff"
        if isinstance(status.get("name"), str) and (
                crash_loop or as_dict(status.get("lastState")).get("terminated")):
            names.append(status["name"])
    return names


def _store_log(snapshot: Snapshot, read: _LogRead, future: Future,
               lost: dict[str, list[str]]) -> None:
    """A failure is recorded, but it is evidence lost, not fatal."""
    try:
        text = future.result()
    except CollectError as error:
        what = read.pod[1] if read.previous is None else \
            f"{read.pod[1]} previous container {read.previous}"
        lost.setdefault(read.collection, []).append(f"{what}: {error}")
        return
    if read.previous is None:
        snapshot.logs[read.pod] = text
    elif text is not None:
        snapshot.previous_logs[(*read.pod, read.previous)] = text


def _pod_key(pod: dict[str, Any], config: RunConfig) -> tuple[str, str]:
    """(namespace, name) of a pod; a dump's pod may lack a namespace, or hold a bad one."""
    namespace = pod["metadata"].get("namespace")
    return (namespace if isinstance(namespace, str) and namespace else config.namespace,
            pod["metadata"]["name"])
