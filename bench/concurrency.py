"""Concurrency: with latency injected into every API request, a full `check` against

- a serial fetch of the very same requests, one at a time over the same client (in-process,
  so neither side pays for interpreter start-up), and
- the real `kubectl get <the same resources> -o json` on the same fake (both as processes, as
  an operator runs them; kubectl's discovery cache warmed first, its most favourable case).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import KUBECTL, ChildRun, Figure, cli, fake_cluster, median, ms, run_child
from doctor import engine
from doctor.config import RunConfig
from doctor.kube import KubeClient, Target

LATENCY_SECONDS = 0.05
ROUNDS = 5
MAX_SERIAL_RATIO = 0.4
MAX_KUBECTL_RATIO = 1.0


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure() -> list[Figure]:
    with fake_cluster(20, 3, 10) as (api, kubeconfig):
        config = RunConfig(kubeconfig=kubeconfig, probes=False)
        checks = engine.select_checks(config=config)
        engine.run(config, checks)  # warm: imports, connection pool
        api.set_latency(LATENCY_SECONDS)
        check_times = []
        for _ in range(ROUNDS):
            api.clear_requests()
            check_times.append(_timed(lambda: engine.run(config, checks)))
        recorded = [(r.path, r.query) for r in api.requests]
        client = KubeClient(kubeconfig)
        serial_times = [_timed(lambda: _serial(client, recorded)) for _ in range(ROUNDS)]
        resources = sorted({r.resource for r in api.requests
                            if r.resource and "/" not in r.resource})
        cli_times, kubectl_times = _processes(kubeconfig, resources)
    check, serial = median(check_times), median(serial_times)
    cli_wall, kubectl = median(cli_times), median(kubectl_times)
    latency = f"{LATENCY_SECONDS * 1000:.0f} ms latency"
    return [
        Figure(f"check wall time, {latency} ({len(recorded)} requests)", ms(check), "", None),
        Figure(f"serial fetch of the same requests, {latency}", ms(serial), "", None),
        Figure("check / serial fetch", f"{check / serial:.2f}x", f"<= {MAX_SERIAL_RATIO}x",
               check / serial <= MAX_SERIAL_RATIO),
        Figure("`registry-doctor check` process wall time", ms(cli_wall), "", None),
        Figure(f"`kubectl get <the same {len(resources)} resources> -o json` wall time",
               ms(kubectl), "", None),
        Figure("check process / kubectl", f"{cli_wall / kubectl:.2f}x",
               f"<= {MAX_KUBECTL_RATIO}x", cli_wall / kubectl <= MAX_KUBECTL_RATIO),
    ]


def _serial(client: KubeClient, requests: list[tuple[str, dict[str, str]]]) -> None:
    for path, query in requests:
        client.request("GET", path, Target("get", path), timeout=30, query=query,
                       raw=path.endswith("/log"))


def _processes(kubeconfig: Path, resources: list[str]) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory(prefix="bench-kubectl-") as cache:
        kubectl = [str(KUBECTL), "--kubeconfig", str(kubeconfig), "--cache-dir", cache,
                   "get", ",".join(resources), "-n", "default", "-o", "json"]
        run_child(kubectl)  # fills the discovery cache
        check = cli("check", "--kubeconfig", str(kubeconfig), "--no-probes", "-o", "json")
        cli_times, kubectl_times = [], []
        for _ in range(ROUNDS):
            cli_times.append(_checked(check).wall_seconds)
            kubectl_times.append(_checked(kubectl).wall_seconds)
    return cli_times, kubectl_times


def _checked(args: list[str]) -> ChildRun:
    run = run_child(args)
    if run.returncode not in (0, 1, 2, 3):
        raise RuntimeError(f"{args[0]} exited {run.returncode}: {run.stderr[-2000:]}")
    return run
