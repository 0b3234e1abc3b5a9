"""Start-up: `registry-doctor --version` and `--help` against `python -c pass`, run through the
same interpreter the way the console script runs them (`from doctor.cli import main`)."""

from __future__ import annotations

import sys

from bench.common import Figure, median, ms, run_child

ROUNDS = 21
MAX_MEDIAN_SECONDS = 0.150
# What the `registry-doctor` console script that pip writes does.
CONSOLE_SCRIPT = "import sys; from doctor.cli import main; sys.argv[0] = 'registry-doctor'; main()"


def _median_wall(args: list[str]) -> float:
    walls = []
    for _ in range(ROUNDS):
        run = run_child(args)
        if run.returncode != 0:
            raise RuntimeError(f"{args} exited {run.returncode}: {run.stderr[-2000:]}")
        walls.append(run.wall_seconds)
    return median(walls)


def measure() -> list[Figure]:
    bare = _median_wall([sys.executable, "-c", "pass"])
    figures = [Figure("`python -c pass` median wall time", ms(bare), "", None)]
    for flag in ("--version", "--help"):
        wall = _median_wall([sys.executable, "-c", CONSOLE_SCRIPT, flag])
        figures.append(Figure(f"`registry-doctor {flag}` median wall time (python + "
                              f"{ms(wall - bare)})", ms(wall), f"<= {ms(MAX_MEDIAN_SECONDS)}",
                              wall <= MAX_MEDIAN_SECONDS))
    return figures
