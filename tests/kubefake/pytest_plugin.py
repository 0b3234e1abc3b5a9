"""pytest fixtures for FakeKubeAPI; tests/conftest.py registers this plugin."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .profiles import DEFAULT, OPENSHIFT_4_14, PROFILES
from .server import FakeKubeAPI

# `pytestmark = ALL_PROFILES` (or the mark on one test) runs a test against each API profile.
ALL_PROFILES = pytest.mark.parametrize("kube_profile", sorted(PROFILES))
# The profiles a test of the 3.x fixtures (a DeploymentConfig in `default`) runs against: an
# OpenShift 4 server is recognised as OpenShift 4 (doctor/platform), whose registry is the
# operator's, so those fixtures say nothing about it; tests/fixtures/clusters/openshift4-* do.
EVERY_PROFILE = pytest.mark.parametrize(
    "kube_profile", sorted(p for p in PROFILES if p != OPENSHIFT_4_14.name))


@pytest.fixture
def kube_profile() -> str:
    """The API profile the fakes of `fake_api` and `fake_cluster` serve: OpenShift 3.11 unless a
    test parametrizes `kube_profile`."""
    return DEFAULT


@pytest.fixture
def fake_api(kube_profile: str) -> Iterator[Callable[[Path], FakeKubeAPI]]:
    """A factory: `fake_api(dump_dir)` starts a fake serving the dump; it stops after the test."""
    started: list[FakeKubeAPI] = []

    def start(dump_dir: Path) -> FakeKubeAPI:
        api = FakeKubeAPI.from_dump(dump_dir, api_profile=kube_profile)
        started.append(api.start())
        return api

    yield start
    for api in started:
        api.stop()


@pytest.fixture
def fake_cluster(tmp_path: Path, kube_profile: str) -> Iterator[Callable[[list[dict[str, Any]]],
                                                      tuple[FakeKubeAPI, Path]]]:
    """A factory: `fake_cluster(objects)` starts a fake serving `objects` and answers it with a
    kubeconfig for it; it stops after the test."""
    started: list[FakeKubeAPI] = []

    def start(objects: list[dict[str, Any]]) -> tuple[FakeKubeAPI, Path]:
        api = FakeKubeAPI(objects, api_profile=kube_profile).start()
        started.append(api)
        return api, api.write_kubeconfig(tmp_path / f"kubeconfig-{len(started)}")

    yield start
    for api in started:
        api.stop()
