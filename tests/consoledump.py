"""Dumps for the console tests: the healthy cluster with the console changed in code, for the
tests that build their certificates or ports at run time (fixture cases cover the rest)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

from registry_doctor.doctor.snapshot.dump import load_dump, write_dump
from tests.casedump import FIXTURES

Edit = Callable[[dict[str, Any]], None]


def console_dump(out: Path, image: str | None = None, secret_files: dict[str, bytes] | None = None,
                 edit: Edit | None = None) -> Path:
    """The healthy dump with the console DC running `image`, its console-secret holding
    `secret_files`, and `edit` applied to every object."""
    dump = load_dump(FIXTURES / "clusters" / "healthy")
    for obj in dump.objects:
        name = (obj["kind"], obj["metadata"]["name"])
        if image and name == ("DeploymentConfig", "registry-console"):
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = image
        if secret_files is not None and name == ("Secret", "console-secret"):
            obj["data"] = {k: base64.b64encode(v).decode() for k, v in secret_files.items()}
        if edit:
            edit(obj)
    write_dump(out, {"objects": dump.objects}, dump.logs, include_secrets=True)
    return out
