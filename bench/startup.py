"""Start-up: each command paired with `registry-doctor --version` (A B A B ...), run through the
same interpreter the way the console script runs them
(`from registry_doctor.doctor.cli import main`); `python -c pass` for scale."""

from __future__ import annotations

import sys

from bench.common import REPO, Figure, median, ms, paired, ratios, spread, times

MAX_RATIO_TO_VERSION = 1.5
MAX_DEMO_CHECK_SECONDS = 0.200
# What the `registry-doctor` console script that pip writes does.
CONSOLE_SCRIPT = ("import sys; from registry_doctor.doctor.cli import main; "
                  "sys.argv[0] = 'registry-doctor'; main()")
DEMO = REPO / "doctor" / "examples" / "openshift-3.11-broken"


def _command(*args: str) -> list[str]:
    return [sys.executable, "-c", CONSOLE_SCRIPT, *args]


def measure(rounds: int) -> list[Figure]:
    version = _command("--version")
    bare, versions = paired([sys.executable, "-c", "pass"], version, rounds)
    figures = [Figure("`registry-doctor --version` wall min / median",
                      spread([r.wall_seconds for r in versions], ms), "", None,
                      f"python -c pass: {spread([r.wall_seconds for r in bare], ms)}")]
    for label, args in (("list", ("list",)), ("explain ID", ("explain", "besteffort-qos"))):
        runs, references = paired(_command(*args), version, rounds)
        walls = ratios([r.wall_seconds for r in runs], [r.wall_seconds for r in references])
        cpus = ratios([r.cpu_seconds for r in runs], [r.cpu_seconds for r in references])
        figures.append(Figure(
            f"`{label}` / `--version`, wall (CPU: {spread(cpus, times)})", spread(walls, times),
            f"<= {MAX_RATIO_TO_VERSION}x", median(walls) <= MAX_RATIO_TO_VERSION,
            f"{label}: {spread([r.wall_seconds for r in runs], ms)}"))
    demo, references = paired(_command("check", "--from-dir", str(DEMO)), version, rounds)
    walls = [r.wall_seconds for r in demo]
    figures.append(Figure(
        "`check --from-dir` the demo dump: wall min / median", spread(walls, ms),
        f"<= {ms(MAX_DEMO_CHECK_SECONDS)} median", median(walls) <= MAX_DEMO_CHECK_SECONDS,
        f"--version: {spread([r.wall_seconds for r in references], ms)}"))
    return figures
