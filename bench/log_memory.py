"""Registry log tails: what 20 registry replicas with 1 MB logs each add to the peak RSS of one
`check`, paired with the same cluster whose logs are empty; from a dump folder and live from
the fake API server. Each tail is bounded in lines and bytes (doctor.snapshot.kinds)."""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.big_dump import BASE
from bench.common import Figure, cli, median, paired, spread
from registry_doctor.doctor.snapshot.dump import load_dump, write_dump
from tests.kubefake import FakeKubeAPI

REPLICAS = 20
LOG_BYTES = 2**20
MAX_ADDED_MB = 2.0
LINE = ('time="2024-03-01T10:00:00Z" level=info msg="response completed" go.version=go1.9 '
        'http.request.method=GET http.request.uri="/v2/project/app/blobs/sha256:{:064x}" '
        'http.response.status=200\n')
Cluster = tuple[list[dict[str, Any]], dict[tuple[str, str], str]]


def _cluster(log_bytes: int) -> Cluster:
    """The healthy fixture with its registry pod as REPLICAS replicas, each logging about
    `log_bytes`."""
    base = load_dump(BASE)
    pod = next(o for o in base.objects if o["kind"] == "Pod"
               and o["metadata"]["name"].startswith("docker-registry-"))
    objects = [o for o in base.objects if o is not pod]
    logs = {key: text for key, text in base.logs.items() if key[1] != pod["metadata"]["name"]}
    lines = log_bytes // len(LINE.format(0))
    for replica in range(REPLICAS):
        copied = copy.deepcopy(pod)
        copied["metadata"]["name"] = f"docker-registry-3-r{replica:02d}"
        objects.append(copied)
        logs[("default", copied["metadata"]["name"])] = "".join(
            LINE.format(replica * lines + i) for i in range(lines))
    return objects, logs


@contextmanager
def _offline(cluster: Cluster, folder: Path) -> Iterator[list[str]]:
    write_dump(folder, {"objects": cluster[0]}, cluster[1], include_secrets=True)
    yield cli("check", "--from-dir", str(folder), "-o", "json")


@contextmanager
def _live(cluster: Cluster, folder: Path) -> Iterator[list[str]]:
    folder.mkdir(parents=True)
    with FakeKubeAPI(objects=cluster[0], logs=cluster[1]) as api:
        kubeconfig = api.write_kubeconfig(folder / "kubeconfig")
        yield cli("check", "--kubeconfig", str(kubeconfig), "--no-probes", "-o", "json")


def measure(rounds: int) -> list[Figure]:
    figures = []
    logged, quiet = _cluster(LOG_BYTES), _cluster(0)
    for label, source in (("--from-dir", _offline), ("live", _live)):
        with tempfile.TemporaryDirectory(prefix="bench-logs-") as scratch, \
                source(logged, Path(scratch) / "logged") as with_logs, \
                source(quiet, Path(scratch) / "quiet") as without_logs:
            runs, references = paired(with_logs, without_logs, rounds)
        added = [a - b for a, b in zip([r.peak_rss_mb for r in runs],
                                       [r.peak_rss_mb for r in references], strict=True)]
        figures.append(Figure(
            f"peak RSS added by {REPLICAS} registry replicas with 1 MB logs, check {label}",
            spread(added, lambda v: f"{v:+.1f} MB"), f"<= {MAX_ADDED_MB:g} MB",
            median(added) <= MAX_ADDED_MB,
            f"empty logs: {spread([r.peak_rss_mb for r in references], _mb1)}"))
    return figures


def _mb1(value: float) -> str:
    return f"{value:.1f} MB"
