"""Files generated from the checks' metadata (docs blocks, alert rules, chart RBAC): one way
to rewrite them, and one way (`--check`) for tests and CI to refuse stale copies."""

from __future__ import annotations

from pathlib import Path


def sync(wanted: dict[Path, str], argv: list[str], command: str) -> int:
    """Write every file whose text differs from `wanted`; with `--check` only name them and
    answer 1 when any is stale."""
    check_only = "--check" in argv
    stale = [path for path, text in wanted.items()
             if not path.exists() or path.read_text() != text]
    for path in stale:
        if check_only:
            print(f"out of date: {path.name} (run {command})")
        else:
            path.write_text(wanted[path])
            print(f"rewritten: {path.name}")
    return 1 if stale and check_only else 0
