"""Finding and running the real components tests use (registry, Cockpit, Prometheus, kubectl).

A test that needs a component that is not installed fails in CI (CI=true) and skips with the
reason elsewhere. Servers bind 127.0.0.1 on a free port and are stopped by their PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

INSTALL_HINT = "run scripts/test.sh (or scripts/fetch-kube-tools.sh for kubectl and helm)"


def missing(what: str) -> None:
    """Fail in CI, skip elsewhere: a real component is not available."""
    message = f"{what} is not installed ({INSTALL_HINT})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def tools_dir() -> Path:
    """Where scripts/fetch-kube-tools.sh installs kubectl and helm (its default when unset)."""
    configured = os.environ.get("REGISTRY_DOCTOR_TOOLS")
    return Path(configured) if configured else Path.home() / ".cache/registry-doctor/tools"


def find_tool(name: str, *extra_dirs: str) -> str:
    """Path of an executable: the project's tool cache, extra dirs, then PATH."""
    for folder in (tools_dir() / "bin", *map(Path, extra_dirs)):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        missing(name)
    return found  # type: ignore[return-value]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen | None = None,
                  timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} "
                               "before listening")
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:g}s")


def stop(process: subprocess.Popen) -> None:
    """Stop a server we started, by its PID; never by name."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def server(args: Sequence[str], port: int, log: Path, env: dict[str, str] | None = None,
           ready_timeout: float = 30.0, host: str = "127.0.0.1") -> Iterator[subprocess.Popen]:
    """Run `args` until the block ends; ready once `host:port` accepts connections (any
    127.0.0.0/8 address works on Linux loopback: several "pods" on one port)."""
    with log.open("wb") as out:
        process = subprocess.Popen(list(args), stdout=out, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)
    try:
        try:
            wait_for_port(port, process, ready_timeout, host)
        except RuntimeError as error:
            raise RuntimeError(f"{error}; its output:\n{log.read_text(errors='replace')}") \
                from None
        yield process
    finally:
        stop(process)
