"""Locating the real command-line tools the tests drive (kubectl, helm)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

INSTALL_SCRIPT = "scripts/fetch-kube-tools.sh"


def tools_dir() -> Path:
    """Where scripts/fetch-kube-tools.sh installs the tools (its default when unset)."""
    configured = os.environ.get("REGISTRY_DOCTOR_TOOLS")
    return Path(configured) if configured else Path.home() / ".cache/registry-doctor/tools"


def find_tool(name: str) -> Path:
    """The tool from $REGISTRY_DOCTOR_TOOLS/bin, else from PATH.

    A missing tool fails the test on CI (CI=true) and skips it elsewhere.
    """
    installed = tools_dir() / "bin" / name
    if installed.is_file() and os.access(installed, os.X_OK):
        return installed
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    reason = (f"{name} is not installed in {installed.parent} nor on PATH; "
              f"run {INSTALL_SCRIPT} to install it")
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)
