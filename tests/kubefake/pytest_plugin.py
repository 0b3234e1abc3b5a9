"""pytest fixtures for FakeKubeAPI; tests/conftest.py registers this plugin."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture
def fake_cluster(tmp_path: Path) -> Iterator[Callable[[list[dict[str, Any]]],
                                                      tuple[FakeKubeAPI, Path]]]:
    """A factory: `fake_cluster(objects)` starts a fake serving `objects` and answers it with a
    kubeconfig for it; it stops after the test."""
    started: list[FakeKubeAPI] = []

    def start(objects: list[dict[str, Any]]) -> tuple[FakeKubeAPI, Path]:
        api = FakeKubeAPI(objects).start()
        started.append(api)
        return api, api.write_kubeconfig(tmp_path / f"kubeconfig-{len(started)}")

    yield start
    for api in started:
        api.stop()
