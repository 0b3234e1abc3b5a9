from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.kubefake.pytest_plugin"]

REPO = Path(__file__).resolve().parent.parent
CLUSTERS = REPO / "tests" / "fixtures" / "clusters"


@pytest.fixture
def clusters() -> Path:
    return CLUSTERS
