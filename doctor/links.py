"""Absolute links to the docs pages a check or finding names (`docs/checks/<id>.md`).

No public site hosts them, so nothing is invented: `REGISTRY_DOCTOR_DOCS_URL` (e.g. an
internal mirror of the docs folder) is the base when set, else the page installed with the
package, else there is no absolute link and callers show the relative path. The pages are the
package's `docs` folder: `registry_doctor/docs/` of the wheel (pyproject's package-dir puts the
repository's docs/ there, next to doctor/), docs/ itself in a source checkout."""

from __future__ import annotations

import os
from pathlib import Path

DOCS_URL_VARIABLE = "REGISTRY_DOCTOR_DOCS_URL"
# doctor/ and docs/ are siblings both in the repository and installed (registry_doctor/).
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DOCS_FOLDER = _PACKAGE_ROOT / "docs"


def docs_url(path: str) -> str | None:
    """`path` is relative to the repository root, e.g. `docs/checks/besteffort-qos.md`."""
    base = os.environ.get(DOCS_URL_VARIABLE, "").strip()
    if base:
        return base.rstrip("/") + "/" + path.removeprefix("docs/")
    local = docs_page(path)
    return local.as_uri() if local else None


def docs_page(path: str) -> Path | None:
    """The installed page for `docs/...` (as the output names it), if it is there."""
    local = DOCS_FOLDER / path.removeprefix("docs/")
    return local if path.startswith("docs/") and local.is_file() else None


def page_names() -> list[str]:
    """Every page by the name `registry-doctor docs` takes: `exporter`, `checks/<id>`."""
    return sorted(p.relative_to(DOCS_FOLDER).with_suffix("").as_posix()
                  for p in DOCS_FOLDER.rglob("*.md"))


def find_page(name: str) -> Path | None:
    """A page by its name, a check id or the path the output shows (`docs/checks/<id>.md`)."""
    stem = name.removeprefix("docs/").removesuffix(".md")
    for candidate in (stem, f"checks/{stem}"):
        if candidate in page_names():
            return DOCS_FOLDER / f"{candidate}.md"
    return None
