"""No secret of the console reaches any output: the OAuthClient's secret and the private keys in
the console's certificate secret or in a --cert-dir folder, in every output format, on every
console fixture case and on the demo dump."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.render import FORMATS, render
from registry_doctor.doctor.snapshot.dump import load_dump
from tests.casedump import FIXTURES, discover_cases, materialize
from tests.certs import make_pki

CONSOLE_CHECKS = ["cert-chain-order", "cockpit-port-conflict", "oauth-redirect"]
CASES = [c for c in discover_cases() if c.check in CONSOLE_CHECKS]
_KEY_BLOCK = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----(.*?)-----END", re.S)


def secrets_in(dump: Path) -> set[str]:
    """Every secret string of the dump: OAuthClient secrets, each secret value as stored, and
    each line of every private key inside them."""
    found = set()
    for obj in load_dump(dump).objects:
        if obj["kind"] == "OAuthClient" and obj.get("secret"):
            found.add(str(obj["secret"]))
        if obj["kind"] == "Secret":
            for value in (obj.get("data") or {}).values():
                found.add(value[:60])
                for block in _KEY_BLOCK.findall(base64.b64decode(value)):
                    found.update(line.decode() for line in block.split() if len(line) >= 16)
    return found


def _outputs(config: RunConfig) -> str:
    report = engine.run(config, engine.select_checks(CONSOLE_CHECKS, config=config))
    return "\n".join(render(report, fmt) for fmt in FORMATS)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_no_secret_in_any_output_of_a_case(case, tmp_path: Path) -> None:
    dump = materialize(case, tmp_path / "dump")
    shown = _outputs(RunConfig(from_dir=dump))
    leaked = [s for s in secrets_in(dump) if s in shown]
    assert not leaked, f"{case.id} shows secrets: {leaked}"


def test_no_secret_in_the_demo_or_from_a_cert_dir(tmp_path: Path) -> None:
    demo = FIXTURES / "clusters" / "broken"
    pki = make_pki()
    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / "console.cert").write_bytes(pki.merged_pem())
    shown = _outputs(RunConfig(from_dir=demo, cert_dir=folder))
    assert "--cert-dir" in shown
    key_lines = {line.decode() for line in _KEY_BLOCK.findall(pki.leaf.key_pem())[0].split()}
    leaked = [s for s in secrets_in(demo) | key_lines if s in shown]
    assert not leaked and secrets_in(demo), leaked
