"""What every benchmark shares: the figures of the table, child processes measured with
`wait4` (wall time and peak RSS of that child alone), and fake clusters to run against."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/run.py` puts bench/, not the repository, first
    sys.path.insert(0, str(REPO))

from bench.cluster import synthetic_cluster  # noqa: E402
from tests.kubefake import FakeKubeAPI  # noqa: E402

# The code of this checkout, whatever `registry-doctor` the interpreter has installed.
CHILD_ENV = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
KUBECTL = Path.home() / ".cache/registry-doctor/tools/bin/kubectl"


@dataclass(frozen=True)
class Figure:
    name: str
    measured: str
    goal: str
    passed: bool | None  # None: a figure shown for context, with no goal of its own


@dataclass(frozen=True)
class ChildRun:
    returncode: int
    wall_seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str


def run_child(args: Sequence[str], timeout: float = 300.0,
              env: dict[str, str] | None = None) -> ChildRun:
    """Run `args` to completion: its wall time and its own peak RSS (`os.wait4` rusage, taken
    by the small launcher bench/rusage.py; see there why not by this process)."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as folder:
        report = Path(folder) / "rusage.json"
        launcher = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "rusage.py"), str(report), "--", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env or CHILD_ENV,
            start_new_session=True)
        try:
            out, err = launcher.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)  # the launcher's group: it and the command
            launcher.communicate()
            raise RuntimeError(f"{args[:4]} did not finish within {timeout:g}s") from None
        measured = json.loads(report.read_text())
    return ChildRun(measured["returncode"], measured["wall_seconds"],
                    measured["peak_rss_kb"] / 1024, out.decode(errors="replace"),
                    err.decode(errors="replace"))


def cli(*args: str) -> list[str]:
    """`registry-doctor ARGS` as this checkout runs it."""
    return [sys.executable, "-m", "doctor.cli", *args]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


@contextmanager
def fake_cluster(pods: int, namespaces: int, secrets: int,
                 base: str = "healthy") -> Iterator[tuple[FakeKubeAPI, Path]]:
    """A running fake API server holding a synthetic cluster, and a kubeconfig for it."""
    objects, logs = synthetic_cluster(pods, namespaces, secrets, base)
    with tempfile.TemporaryDirectory(prefix="bench-") as folder, \
            FakeKubeAPI(objects=objects, logs=logs) as api:
        yield api, api.write_kubeconfig(Path(folder) / "kubeconfig")
