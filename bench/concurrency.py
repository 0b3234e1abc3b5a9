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

from bench.common import (
    KUBECTL,
    ChildRun,
    Figure,
    checked,
    cli,
    fake_cluster,
    median,
    ms,
    paired,
    ratios,
    spread,
    times,
)
from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.kube import KubeClient, KubeError, Target

LATENCY_SECONDS = 0.05
ROUNDS = 5
MAX_SERIAL_RATIO = 0.4
MAX_KUBECTL_WALL_RATIO = 0.7
MAX_KUBECTL_CPU_RATIO = 3.0


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
        cli_runs, kubectl_runs = _processes(kubeconfig, resources)
    check, serial = median(check_times), median(serial_times)
    walls = ratios([r.wall_seconds for r in cli_runs], [r.wall_seconds for r in kubectl_runs])
    cpus = ratios([r.cpu_seconds for r in cli_runs], [r.cpu_seconds for r in kubectl_runs])
    latency = f"{LATENCY_SECONDS * 1000:.0f} ms latency"
    return [
        Figure(f"check wall time, {latency} ({len(recorded)} requests)", ms(check), "", None),
        Figure(f"serial fetch of the same requests, {latency}", ms(serial), "", None),
        Figure("check / serial fetch", f"{check / serial:.2f}x", f"<= {MAX_SERIAL_RATIO}x",
               check / serial <= MAX_SERIAL_RATIO),
        Figure(f"`check` process / `kubectl get <the same {len(resources)} resources>`, "
               f"{latency}: wall", spread(walls, times), f"<= {MAX_KUBECTL_WALL_RATIO}x",
               median(walls) <= MAX_KUBECTL_WALL_RATIO,
               f"kubectl: {spread([r.wall_seconds for r in kubectl_runs], ms)}"),
        Figure("  the same pairs: CPU", spread(cpus, times), f"<= {MAX_KUBECTL_CPU_RATIO}x",
               median(cpus) <= MAX_KUBECTL_CPU_RATIO,
               f"kubectl: {spread([r.cpu_seconds for r in kubectl_runs], ms)}"),
    ]


def _serial(client: KubeClient, requests: list[tuple[str, dict[str, str]]]) -> None:
    for path, query in requests:
        try:
            client.request("GET", path, Target("get", path), timeout=30, query=query,
                           raw=path.endswith("/log"))
        except KubeError as error:  # the check reads objects that may be absent, too
            if error.status != 404:
                raise


def _processes(kubeconfig: Path, resources: list[str]
               ) -> tuple[list[ChildRun], list[ChildRun]]:
    """Both as processes, paired; kubectl's discovery cache warm (its most favourable case)."""
    with tempfile.TemporaryDirectory(prefix="bench-kubectl-") as cache:
        kubectl = [str(KUBECTL), "--kubeconfig", str(kubeconfig), "--cache-dir", cache,
                   "get", ",".join(resources), "-n", "default", "-o", "json"]
        checked(kubectl)  # fills the discovery cache
        check = cli("check", "--kubeconfig", str(kubeconfig), "--no-probes", "-o", "json")
        return paired(check, kubectl, ROUNDS)
