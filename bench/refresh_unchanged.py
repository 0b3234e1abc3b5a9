"""`python bench/refresh_unchanged.py DUMP ROUNDS`: what the exporter's scheduler does every
--interval (`engine.run` from the dump folder), first on a fresh process, then ROUNDS times
more on the unchanged folder; prints the durations as JSON."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig


def main(dump: Path, rounds: int) -> dict[str, object]:
    config = RunConfig(from_dir=dump)
    checks = engine.select_checks(config=config)
    durations = []
    for _ in range(rounds + 1):
        started = time.perf_counter()
        engine.run(config, checks)
        durations.append(time.perf_counter() - started)
    return {"first_seconds": durations[0], "refresh_seconds": durations[1:]}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), int(sys.argv[2]))))
