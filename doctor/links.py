"""Absolute links to the docs pages a check or finding names (`docs/checks/<id>.md`).

No public site hosts them, so nothing is invented: `REGISTRY_DOCTOR_DOCS_URL` (e.g. an
internal mirror of the docs folder) is the base when set, else the page of this source tree
when it is there, else there is no absolute link and callers show the relative path."""

from __future__ import annotations

import os
from pathlib import Path

DOCS_URL_VARIABLE = "REGISTRY_DOCTOR_DOCS_URL"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def docs_url(path: str) -> str | None:
    """`path` is relative to the repository root, e.g. `docs/checks/besteffort-qos.md`."""
    base = os.environ.get(DOCS_URL_VARIABLE, "").strip()
    if base:
        return base.rstrip("/") + "/" + path.removeprefix("docs/")
    local = _SOURCE_ROOT / path
    return local.as_uri() if local.is_file() else None
