"""Big dumps: `check --from-dir` on a 50,000-pod must-gather-style YAML dump (bench/big_dump.py)
paired with a live `check` of the same cluster on the fake API server, and what `serve` pays
to refresh from that dump when nothing in it changed (bench/refresh_unchanged.py)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from bench.big_dump import BASE, realistic_pod, write_big_dump
from bench.common import (
    REPO,
    Figure,
    checked,
    cli,
    mb,
    median,
    paired,
    ratios,
    seconds,
    spread,
    times,
)
from registry_doctor.doctor.snapshot.dump import load_dump
from tests.kubefake import FakeKubeAPI

PODS, NAMESPACES = 50_000, 2_000
MAX_SECONDS = 5.0
MAX_RSS_MB = 250.0
MAX_LIVE_RATIO = 1.5
MAX_REFRESH_SECONDS = 0.5


def big_dump_folder(pods: int = PODS, namespaces: int = NAMESPACES) -> Path:
    """The dump, written once per machine (about 150 MB, half a minute) and reused."""
    folder = Path(tempfile.gettempdir()) / "registry-doctor-bench" / f"dump-{pods}-{namespaces}"
    complete = folder / "COMPLETE"  # no object or log suffix: the loader ignores it
    if not complete.exists():
        print(f"  writing {folder} (once)...", file=sys.stderr, flush=True)
        write_big_dump(folder, pods, namespaces)
        complete.touch()
    return folder


def _same_cluster_live(pods: int, namespaces: int) -> FakeKubeAPI:
    """The dump's cluster on the fake: the base fixture's objects and the same pods."""
    base = load_dump(BASE)
    names = [f"project-{i}" for i in range(namespaces)]
    objects = [*base.objects,
               *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                 for n in ["default", *names]),
               *(realistic_pod(names[i % namespaces], i) for i in range(pods))]
    return FakeKubeAPI(objects=objects, logs=base.logs)


def _verdicts(output: str) -> dict[str, tuple[str, str]]:
    return {r["check"]: (r["status"], r["summary"]) for r in json.loads(output)["results"]}


def measure(rounds: int) -> list[Figure]:
    folder = big_dump_folder()
    offline = cli("check", "--from-dir", str(folder), "-o", "json")
    with _same_cluster_live(PODS, NAMESPACES) as api, \
            tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        kubeconfig = api.write_kubeconfig(Path(scratch) / "kubeconfig")
        live = cli("check", "--kubeconfig", str(kubeconfig), "--no-probes", "--timeout", "600",
                   "-o", "json")
        dump_runs, live_runs = paired(offline, live, rounds, timeout=600)
    walls = [r.wall_seconds for r in dump_runs]
    rss = [r.peak_rss_mb for r in dump_runs]
    live_ratio = ratios(walls, [r.wall_seconds for r in live_runs])
    same = _verdicts(dump_runs[0].stdout) == _verdicts(live_runs[0].stdout)
    size = f"{PODS // 1000}k-pod YAML dump"
    figures = [
        Figure(f"check --from-dir, {size}: wall min / median", spread(walls, seconds),
               f"<= {MAX_SECONDS:g} s", median(walls) <= MAX_SECONDS),
        Figure(f"check --from-dir, {size}: CPU min / median",
               spread([r.cpu_seconds for r in dump_runs], seconds), "", None),
        Figure(f"check --from-dir, {size}: peak RSS min / median", spread(rss, mb),
               f"<= {MAX_RSS_MB:g} MB", median(rss) <= MAX_RSS_MB),
        Figure(f"check --from-dir / live check of the same cluster (wall, {rounds} pairs)",
               spread(live_ratio, times), f"<= {MAX_LIVE_RATIO}x",
               median(live_ratio) <= MAX_LIVE_RATIO,
               f"live: {spread([r.wall_seconds for r in live_runs], seconds)}"),
        Figure("  same verdicts offline and live", "yes" if same else "NO", "identical", same),
    ]
    return figures + _refresh(folder, rounds)


def _refresh(folder: Path, rounds: int) -> list[Figure]:
    run = checked([sys.executable, str(REPO / "bench" / "refresh_unchanged.py"), str(folder),
                   str(rounds)], timeout=600)
    seen = json.loads(run.stdout)
    refreshes = seen["refresh_seconds"]
    return [Figure(f"serve --from-dir refresh, unchanged {PODS // 1000}k-pod dump",
                   spread(refreshes, seconds), f"<= {MAX_REFRESH_SECONDS} s",
                   median(refreshes) <= MAX_REFRESH_SECONDS,
                   f"first run {seconds(seen['first_seconds'])}")]
