"""The "refuses to start" verdict of doctor.registryconfig, proven against the real registry:
for each configuration (and environment) of the corpus, Debian's `docker-registry serve`
(distribution 2.8.2) either listens or exits, and registry-doctor must have said so. When it
exits, the message registry-doctor quotes must be the one the registry printed."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry_doctor.doctor.registryconfig import RegistryConfig, resolve
from tests.tools import find_tool, free_port, stop
from tests.workloads import UPSTREAM_IMAGE, configmap, registry_dc, snapshot_of

CORPUS = yaml.safe_load((Path(__file__).parent / "fixtures" / "registryconfig" /
                         "corpus.yaml").read_text())
START_TIMEOUT = 15.0  # seconds for the registry to listen or exit


def judged(text: str, env: dict[str, str]) -> RegistryConfig:
    dc = registry_dc(UPSTREAM_IMAGE, env, config_from=("ConfigMap", "registry-config"))
    snapshot = snapshot_of(dc, configmap("registry-config", {"config.yml": text}))
    return resolve(snapshot, snapshot.registry())


def run_registry(binary: str, config: Path, env: dict[str, str], log: Path) -> bool:
    """True when the registry listens, False when it exits first."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items()
                   if k != "AWS_CA_BUNDLE" and not k.startswith("REGISTRY_")}
    environment.update(env, REGISTRY_HTTP_ADDR=f"127.0.0.1:{port}")
    with log.open("wb") as out:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=out,
                                   stderr=subprocess.STDOUT, env=environment,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            if _listening(port):
                return True
            time.sleep(0.05)
        pytest.fail(f"registry neither listened nor exited within {START_TIMEOUT:g}s")
    finally:
        stop(process)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def quoted(message: str) -> list[str]:
    """What a message says the registry prints, up to the first ':' or '[' (Go prints maps in
    random order)."""
    return [re.split(r"[:\[]", q)[0].strip() for q in re.findall(r'"([^"]*)"', message)]


def assert_agrees(text: str, env: dict[str, str], tmp_path: Path) -> RegistryConfig:
    """Start the real registry on `text` and `env`: registry-doctor must say it refuses to
    start exactly when it exits, quoting words it printed. The verdict, for more checks."""
    config_file = tmp_path / "config.yml"
    config_file.write_text(text)
    log = tmp_path / "registry.log"
    started = run_registry(find_tool("docker-registry"), config_file, env, log)
    output = log.read_text(errors="replace")
    verdict = judged(text, env)
    assert verdict.unresolved is None, verdict.unresolved
    said = "\n".join(str(p) for p in verdict.fatal) or "(starts)"
    assert started == (not verdict.fatal), \
        f"registry {'started' if started else 'exited'}; registry-doctor said: {said}\n{output}"
    if not started:
        fragments = [q for p in verdict.fatal for q in quoted(p.message)]
        assert any(f and f in output for f in fragments), \
            f"none of {fragments} in the registry's output:\n{output}"
    return verdict


@pytest.mark.parametrize("entry", CORPUS, ids=[e["id"] for e in CORPUS])
def test_refuses_to_start_exactly_when_the_registry_does(entry: dict[str, Any],
                                                         tmp_path: Path) -> None:
    text = entry["config"].replace("{root}", str(tmp_path / "root"))
    assert_agrees(text, {k: str(v) for k, v in (entry.get("env") or {}).items()}, tmp_path)
