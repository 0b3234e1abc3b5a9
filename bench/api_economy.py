"""API economy: requests and peak RSS of one full `check` (every default check, probes off)
on a small cluster and on a big one. A well-scoped tool asks the same questions of both."""

from __future__ import annotations

import json
from collections import Counter

from bench.common import Figure, cli, fake_cluster, run_child

SIZES = {"20 pods": (20, 3, 10), "50k pods/2k ns/20k secrets": (50_000, 2_000, 20_000)}
# Fixed requests of a full check: 16 until the chart's RBAC went by name (issue 12: the
# registry's and the console's three workload kinds and their two Services are GETs by name
# instead of four lists, +4) and runtime evidence arrived (issue 14: the registry's
# ReplicationControllers, +1). Events are read per registry object (its pods, workload, latest
# ReplicationController, claims), counted apart.
MAX_REQUESTS = 21
EVENTS = "fieldSelector', 'involvedObject."
MAX_RSS_MB = 120.0
LOG_READS = "pods/log"


def _one_check(pods: int, namespaces: int, secrets: int) -> tuple[list[str], list[str], float]:
    """(API requests, pod-log reads, peak RSS in MB) of one `check` run in a child process."""
    with fake_cluster(pods, namespaces, secrets) as (api, kubeconfig):
        run = run_child(cli("check", "--kubeconfig", str(kubeconfig), "--no-probes",
                            "-o", "json"))
        if run.returncode not in (0, 1, 2, 3):
            raise RuntimeError(f"check exited {run.returncode}: {run.stderr[-2000:]}")
        json.loads(run.stdout)  # a whole report came out
        requests = [f"{r.method} {r.path}?{sorted(r.query.items())}" for r in api.requests]
        logs = [r for r, rec in zip(requests, api.requests, strict=True)
                if rec.resource == LOG_READS]
        others = [r for r, rec in zip(requests, api.requests, strict=True)
                  if rec.resource != LOG_READS]
    return others, logs, run.peak_rss_mb


def measure() -> list[Figure]:
    figures, seen = [], {}
    for label, size in SIZES.items():
        requests, logs, rss = _one_check(*size)
        seen[label] = Counter(requests)
        events = [r for r in requests if EVENTS in r]
        fixed = len(requests) - len(events)
        figures += [
            Figure(f"API requests per check, {label} (discovery incl.), events apart",
                   f"{fixed} + {len(events)} events", f"<= {MAX_REQUESTS} + 1 per registry "
                   "object", fixed <= MAX_REQUESTS and len(events) <= len(set(events))),
            Figure(f"pod-log reads per check, {label}", str(len(logs)),
                   "<= 1 per registry/console pod", len(logs) == len(set(logs))),
            Figure(f"peak RSS of check, {label}", f"{rss:.1f} MB", f"<= {MAX_RSS_MB:g} MB",
                   rss <= MAX_RSS_MB),
        ]
    small, big = seen.values()
    differing = sorted(((small - big) + (big - small)).elements())
    figures.append(Figure("same requests on both clusters",
                          "yes" if not differing else f"no: {differing}"[:80], "identical",
                          not differing))
    return figures
