"""`python bench/refresh_cycles.py CYCLES DUMP`: drive the exporter's refresh in-process, CYCLES
times, against a dump folder, and print the RSS seen along the way as JSON.

Each cycle is what the scheduler thread does every --interval (`Scheduler.run_once`: the whole
engine run, state swap, log line) followed by one /metrics rendering of the new state, without
the waits in between: 10,000 cycles on the real schedule would take days.
"""

from __future__ import annotations

import gc
import json
import sys
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from prometheus_client.exposition import generate_latest  # noqa: E402

from registry_doctor.doctor import engine  # noqa: E402
from registry_doctor.doctor.config import RunConfig  # noqa: E402
from registry_doctor.exporter.scheduler import Scheduler  # noqa: E402
from registry_doctor.exporter.server import ExporterServer  # noqa: E402

WARM_UP_CYCLES = 100


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main(cycles: int, dump: Path) -> dict[str, float]:
    config = RunConfig(from_dir=dump)
    checks = engine.select_checks(config=config)
    scheduler = Scheduler(partial(engine.run, config, checks), interval_seconds=60)
    server = ExporterServer("127.0.0.1", 0, scheduler,
                            {c.meta.id: c.meta.severity.value for c in checks})
    server.server_close()  # only its metrics registry is used: nothing listens
    seen = {}
    for cycle in range(1, cycles + 1):
        state = scheduler.run_once()
        if not state.last_run_ok:
            raise RuntimeError(f"cycle {cycle}: the run failed")
        generate_latest(server.registry)
        if cycle in (1, WARM_UP_CYCLES, cycles):
            gc.collect()
            seen[f"rss_after_{cycle}_mb"] = rss_mb()
    return seen


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), Path(sys.argv[2]))))
