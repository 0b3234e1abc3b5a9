"""Malformed objects never crash the console checks: every field they read is replaced by
values of the wrong type, and each check must still reach a verdict (not an internal error)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from tests.consoledump import console_dump

CONSOLE_CHECKS = ["cert-chain-order", "cockpit-port-conflict", "oauth-redirect"]
WRONG = [None, 7, "text", [], {}, [None, 5], {"a": None}]
# (kind, name, path to the field); a path step is a key or a list index
FIELDS = [
    ("DeploymentConfig", "registry-console", ("spec", "template", "spec", "containers")),
    ("DeploymentConfig", "registry-console", ("spec", "template", "spec", "containers", 0,
                                              "env")),
    ("DeploymentConfig", "registry-console", ("spec", "template", "spec", "containers", 0,
                                              "env", 0, "value")),
    ("DeploymentConfig", "registry-console", ("spec", "template", "spec", "containers", 0,
                                              "image")),
    ("DeploymentConfig", "registry-console", ("spec", "template", "spec", "containers", 0,
                                              "ports")),
    ("DeploymentConfig", "registry-console", ("spec", "template", "spec", "containers", 0,
                                              "volumeMounts")),
    ("DeploymentConfig", "registry-console", ("spec", "template", "spec", "containers", 0,
                                              "volumeMounts", 0, "mountPath")),
    ("DeploymentConfig", "registry-console", ("spec", "template", "spec", "volumes")),
    ("DeploymentConfig", "registry-console", ("spec", "template", "spec", "volumes", 0,
                                              "secret")),
    ("DeploymentConfig", "registry-console", ("spec", "template", "spec", "hostNetwork")),
    ("Route", "registry-console", ("spec",)),
    ("Route", "registry-console", ("spec", "host")),
    ("Route", "registry-console", ("spec", "tls")),
    ("Route", "registry-console", ("spec", "path")),
    ("Route", "docker-registry", ("spec", "host")),
    ("OAuthClient", "cockpit-oauth-client", ("redirectURIs",)),
    ("Secret", "console-secret", ("data",)),
    ("Pod", "registry-console-2-q8xvd", ("spec",)),
    ("Pod", "registry-console-2-q8xvd", ("status",)),
    ("Pod", "registry-console-2-q8xvd", ("status", "conditions")),
    ("Pod", "registry-console-2-q8xvd", ("status", "containerStatuses")),
    ("Pod", "router-1-n4c7p", ("spec", "containers", 0, "ports")),
]


def _replace(obj: Any, path: tuple, value: Any) -> None:
    for step in path[:-1]:
        obj = obj[step]
    obj[path[-1]] = value


@pytest.mark.parametrize(("kind", "name", "path"), FIELDS,
                         ids=[f"{k}/{n}:{'.'.join(map(str, p))}" for k, n, p in FIELDS])
def test_wrong_types_get_a_verdict(tmp_path: Path, kind: str, name: str, path: tuple) -> None:
    for position, value in enumerate(WRONG):
        def edit(obj: dict[str, Any], value: Any = value) -> None:
            if (obj["kind"], obj["metadata"]["name"]) == (kind, name):
                _replace(obj, path, value)

        config = RunConfig(from_dir=console_dump(tmp_path / str(position), edit=edit))
        report = engine.run(config, engine.select_checks(CONSOLE_CHECKS, config=config))
        for result in report.results:
            assert "internal error" not in result.summary, (value, result.summary)
