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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/run.py` puts bench/, not the repository, first
    sys.path.insert(0, str(REPO))

from bench.cluster import synthetic_cluster  # noqa: E402
from tests.kubefake import FakeKubeAPI  # noqa: E402

# `bench` and `tests` of this checkout; registry_doctor itself is the interpreter's install
# (`pip install -e .` of this checkout: tests/conftest.py refuses another).
CHILD_ENV = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
KUBECTL = Path.home() / ".cache/registry-doctor/tools/bin/kubectl"


@dataclass(frozen=True)
class Figure:
    name: str
    measured: str
    goal: str
    passed: bool | None  # None: a figure shown for context, with no goal of its own
    reference: str = ""  # what it is compared with, measured in the same run


@dataclass(frozen=True)
class ChildRun:
    returncode: int
    wall_seconds: float
    cpu_seconds: float
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
    return ChildRun(measured["returncode"], measured["wall_seconds"], measured["cpu_seconds"],
                    measured["peak_rss_kb"] / 1024, out.decode(errors="replace"),
                    err.decode(errors="replace"))


def cli(*args: str) -> list[str]:
    """`registry-doctor ARGS` as this checkout runs it."""
    return [sys.executable, "-m", "registry_doctor.doctor.cli", *args]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def checked(args: Sequence[str], timeout: float = 300.0) -> ChildRun:
    """`run_child`, failing on an exit code a `check` never gives (0-3 are verdicts)."""
    run = run_child(args, timeout)
    if run.returncode not in (0, 1, 2, 3):
        raise RuntimeError(f"{list(args)[:6]} exited {run.returncode}: {run.stderr[-2000:]}")
    return run


def paired(first: Sequence[str], second: Sequence[str], rounds: int,
           timeout: float = 300.0) -> tuple[list[ChildRun], list[ChildRun]]:
    """Both commands in turn, A B A B ..., after one warm-up of each: a drift in the machine's
    speed moves both sides of each pair alike."""
    checked(first, timeout)
    checked(second, timeout)
    runs: tuple[list[ChildRun], list[ChildRun]] = ([], [])
    for _ in range(rounds):
        runs[0].append(checked(first, timeout))
        runs[1].append(checked(second, timeout))
    return runs


def spread(values: Sequence[float], unit: Callable[[float], str]) -> str:
    """`min / median` of repeated measurements."""
    return f"{unit(min(values))} / {unit(median(values))}"


def ratios(first: Sequence[float], second: Sequence[float]) -> list[float]:
    """Pair by pair: first[i] / second[i]."""
    return [a / b for a, b in zip(first, second, strict=True)]


def times(value: float) -> str:
    return f"{value:.2f}x"


def mb(value: float) -> str:
    return f"{value:.0f} MB"


def seconds(value: float) -> str:
    return f"{value:.2f} s"


@contextmanager
def fake_cluster(pods: int, namespaces: int, secrets: int,
                 base: str = "healthy") -> Iterator[tuple[FakeKubeAPI, Path]]:
    """A running fake API server holding a synthetic cluster, and a kubeconfig for it."""
    objects, logs = synthetic_cluster(pods, namespaces, secrets, base)
    with tempfile.TemporaryDirectory(prefix="bench-") as folder, \
            FakeKubeAPI(objects=objects, logs=logs) as api:
        yield api, api.write_kubeconfig(Path(folder) / "kubeconfig")
