"""The storage checks against the fake API server: the registry's secrets are read by name,
never listed, and a secret it may not read costs only the checks that need it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import Status
from tests.casedump import discover_cases, materialize
from tests.kubefake import FakeKubeAPI

STORAGE_CHECKS = ["registry-config", "ephemeral-storage", "nfs-scaling", "s3-reachability"]


def case_dump(name: str, tmp_path: Path) -> Path:
    case = next(c for c in discover_cases() if c.id == name)
    return materialize(case, tmp_path / "dump")


def test_only_the_referenced_secret_is_read(fake_api: Callable[[Path], FakeKubeAPI],
                                            tmp_path: Path) -> None:
    api = fake_api(case_dump("s3-reachability/env-overrides", tmp_path))
    config = RunConfig(kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"), probes=False)
    report = engine.run(config, engine.select_checks(STORAGE_CHECKS, config=config))
    assert report.result("s3-reachability").status is Status.OK
    secret_requests = [(r.verb, r.path) for r in api.requests if r.resource == "secrets"]
    assert secret_requests == [("get", "/api/v1/namespaces/default/secrets/registry-s3")]


def test_a_forbidden_secret_makes_the_config_checks_unknown(
        fake_api: Callable[[Path], FakeKubeAPI], tmp_path: Path) -> None:
    api = fake_api(case_dump("registry-config/s3-config-from-secret", tmp_path))
    api.forbid("secrets", "get")
    config = RunConfig(kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"), probes=False)
    report = engine.run(config, engine.select_checks(
        [*STORAGE_CHECKS, "besteffort-qos"], config=config))
    for check in STORAGE_CHECKS:
        result = report.result(check)
        assert result.status is Status.UNKNOWN, result
        assert "forbidden: get secrets/registry-config in default" in result.summary
    assert report.result("besteffort-qos").status is not Status.UNKNOWN
