"""Keeps docs/checks/<id>.md in step with each check's metadata.

Each page starts with a block generated from the check's `META`, between two markers; the prose
after it is written by hand. `python -m registry_doctor.doctor.docs` rewrites the blocks, `--check`
only compares them (the test suite does that), so docs and metadata cannot drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

from registry_doctor.doctor.generated import sync
from registry_doctor.doctor.model import CheckMeta

BEGIN = ("<!-- generated from the check's metadata by `python -m registry_doctor.doctor.docs`: "
         "do not edit -->")
END = "<!-- end of generated block -->"


def meta_block(meta: CheckMeta) -> str:
    from registry_doctor.doctor.platform import adapter

    probes = ", ".join(f"`{p}`" for p in meta.probes) or "none"
    opt_in = f"\n- **Opt-in:** runs only with `--{meta.opt_in.replace('_', '-')}`" \
        if meta.opt_in else ""
    return "\n".join([
        BEGIN,
        f"# `{meta.id}`: {meta.title}",
        "",
        f"- **Severity when failing:** {meta.severity.value}",
        f"- **Reads:** {', '.join(f'`{k}`' for k in meta.kinds)}",
        f"- **Live probes:** {probes}{opt_in}",
        f"- **Platforms:** {meta.platforms_line}",
        *(f"- **Option** `{o.line.partition(':')[0]}`:{o.line.partition(':')[2]}"
          for o in meta.options),
        "",
        meta.description,
        "",
        f"**Remediation:** {meta.remediation_for()}",
        *(f"\n**Remediation on {platform}:** "
          f"{meta.remediation_for(adapter(platform).doc_names, platform)}"
          for platform in sorted(meta.platform_remediation)),
        END,
    ])


def synced_text(meta: CheckMeta, current: str | None) -> str:
    """The page with its generated block replaced (or a new page with a prose stub heading)."""
    block = meta_block(meta)
    if current and BEGIN in current and END in current:
        before, _, rest = current.partition(BEGIN)
        _, _, after = rest.partition(END)
        return before + block + after
    return block + "\n\n## How it decides\n\n## How to fix it\n"


def main(argv: list[str]) -> int:
    from registry_doctor.checks import METADATA_FILE, all_checks, metadata_json

    docs = Path(__file__).resolve().parent.parent / "docs" / "checks"
    pages = {check.meta: docs / f"{check.meta.id}.md" for check in all_checks().values()}
    wanted = {page: synced_text(meta, page.read_text() if page.exists() else None)
              for meta, page in pages.items()}
    wanted[METADATA_FILE] = metadata_json(list(pages))  # what `list` and `explain` read
    return sync(wanted, argv, "python -m registry_doctor.doctor.docs")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
