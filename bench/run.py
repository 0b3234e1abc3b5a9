"""`python bench/run.py`: every benchmark, one table (figure, measured, goal, pass/fail).

Not part of the test suite: it takes minutes and its figures depend on the machine. Exit code
1 when a figure misses its goal. `--refresh-cycles N` shortens the exporter's memory run
(default 10,000 cycles, about five minutes); `--only NAME` runs one group.
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
    exporter_bench,
    hung_probes,
    startup,
)
from bench.common import Figure


def _groups(refresh_cycles: int) -> dict[str, Callable[[], list[Figure]]]:
    return {
        "api": api_economy.measure,
        "concurrency": concurrency.measure,
        "startup": startup.measure,
        "exporter": lambda: exporter_bench.measure(refresh_cycles),
        "hung-probes": hung_probes.measure,
    }


def table(figures: list[Figure]) -> str:
    rows = [("figure", "measured", "goal", "result")] + [
        (f.name, f.measured, f.goal or "-",
         "-" if f.passed is None else "pass" if f.passed else "FAIL") for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refresh-cycles", type=int, default=10_000)
    parser.add_argument("--only", action="append", choices=sorted(_groups(0)))
    options = parser.parse_args(argv)
    figures: list[Figure] = []
    for name, measure in _groups(options.refresh_cycles).items():
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
