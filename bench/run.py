"""`python bench/run.py`: every benchmark, one table (figure, measured, goal, pass/fail, and
the same-run reference it is compared with).

Not part of the test suite: it takes minutes and its figures depend on the machine, which is
why every figure is repeated (min / median of `--rounds`, at least 5) and, where a reference
exists, paired with it run by run and quoted as a ratio. Exit code 1 when a figure misses its
goal. `--quick`: 5 rounds and 1,000 refresh cycles (default 10,000, about five minutes);
`--only NAME` runs one group (repeatable). Needs Debian's prometheus-node-exporter for the
exporter's external peer (the figure says when it is missing) and kubectl in
~/.cache/registry-doctor/tools/bin (scripts/test.sh installs it).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    api_economy,
    concurrency,
    dump_scale,
    exporter_bench,
    hung_probes,
    log_memory,
    startup,
)
from bench.common import Figure

MIN_ROUNDS = 5


def _groups(rounds: int, refresh_cycles: int) -> dict[str, Callable[[], list[Figure]]]:
    return {
        "dump": lambda: dump_scale.measure(rounds),
        "startup": lambda: startup.measure(rounds),
        "exporter": lambda: exporter_bench.measure(rounds, refresh_cycles),
        "logs": lambda: log_memory.measure(rounds),
        "api": api_economy.measure,
        "concurrency": concurrency.measure,
        "hung-probes": hung_probes.measure,
    }


def table(figures: list[Figure]) -> str:
    rows = [("figure", "measured", "goal", "result", "same-run reference")] + [
        (f.name, f.measured, f.goal or "-",
         "-" if f.passed is None else "pass" if f.passed else "FAIL", f.reference)
        for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    parser.add_argument("--refresh-cycles", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", action="append", choices=sorted(_groups(0, 0)))
    options = parser.parse_args(argv)
    if options.rounds < MIN_ROUNDS:
        parser.error(f"--rounds: at least {MIN_ROUNDS} (a median of fewer says little)")
    cycles = min(options.refresh_cycles, 1_000) if options.quick else options.refresh_cycles
    rounds = MIN_ROUNDS if options.quick else options.rounds
    figures: list[Figure] = []
    for name, measure in _groups(rounds, cycles).items():
        if options.only and name not in options.only:
            continue
        started = time.monotonic()
        print(f"running {name}...", file=sys.stderr, flush=True)
        figures += measure()
        print(f"  {name} took {time.monotonic() - started:.0f} s", file=sys.stderr)
    print(table(figures))
    return 1 if any(f.passed is False for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
