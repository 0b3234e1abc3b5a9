"""pytest fixtures for FakeKubeAPI; tests/conftest.py registers this plugin."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .server import FakeKubeAPI


@pytest.fixture
def fake_api() -> Iterator[Callable[[Path], FakeKubeAPI]]:
    """A factory: `fake_api(dump_dir)` starts a fake serving the dump; it stops after the test."""
    started: list[FakeKubeAPI] = []

    def start(dump_dir: Path) -> FakeKubeAPI:
        api = FakeKubeAPI.from_dump(dump_dir)
        started.append(api.start())
        return api

    yield start
    for api in started:
        api.stop()
