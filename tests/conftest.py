from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CLUSTERS = REPO / "tests" / "fixtures" / "clusters"


@pytest.fixture
def clusters() -> Path:
    return CLUSTERS
