"""cert-chain-order agrees with the real Cockpit 287 on a corpus of certificate folders.

Each folder is mounted (as the console's secret) into a dump whose console runs Cockpit 287,
and judged by the check through the engine. The same files are handed to the real Cockpit:
`cockpit-certificate-ensure --check`, then cockpit-ws itself and a browser-like handshake (trust:
the case's root; name: the console route host). What Cockpit does decides the allowed verdicts:

- Cockpit would serve its default 0-self-signed.cert -> warn;
- ensure --check refuses, cockpit-ws exits, or the browser refuses the handshake -> crit
  (the one exception: a file holding only the server certificate, refused for want of its
  issuer, which the doctor cannot see either; it must say so, at warn or crit);
- everything accepted -> ok or warn (warn: what Cockpit does not check, e.g. expiry in 20 days).

Each case also names the defect the doctor's evidence must mention.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import Result, Status
from tests.certs import CONSOLE_HOST, DAY, NOW, Issued, issue, make_pki, new_key
from tests.cockpit import (
    browser_handshake,
    cert_folder,
    cockpit_ws,
    ensure_check,
    require_cockpit,
)
from tests.consoledump import console_dump

COCKPIT_287 = "quay.io/cockpit/ws:287"


@dataclass(frozen=True)
class CertCase:
    name: str
    files: dict[str, bytes]
    trusted: bytes  # what the browser trusts
    mentions: str  # the finding the doctor's details must contain


def _split(issued: Issued, *chain: Issued, key: bytes | None = None,
           name: str = "console") -> dict[str, bytes]:
    return {f"{name}.crt": b"".join(c.cert_pem() for c in (issued, *chain)),
            f"{name}.key": key if key is not None else issued.key_pem()}


def _self_signed_default() -> dict[str, bytes]:
    """What cockpit-certificate-ensure generates: 0-self-signed.cert/.key, 395 days."""
    made = issue("localhost", ca=True, hosts=("localhost",), validity=(NOW - DAY, NOW + 395 * DAY))
    return {"0-self-signed.cert": made.cert_pem(), "0-self-signed.key": made.key_pem()}


def corpus() -> list[CertCase]:
    pki, rsa = make_pki(), make_pki(key_kind="rsa")
    root, inter, leaf = pki.root, pki.intermediate, pki.leaf
    trusted = root.cert_pem()
    by_root = issue(CONSOLE_HOST, root, hosts=(CONSOLE_HOST,))
    expired = make_pki(validity=(NOW - 400 * DAY, NOW - DAY))
    expiring = make_pki(validity=(NOW - 300 * DAY, NOW + 20 * DAY))
    future = make_pki(validity=(NOW + 10 * DAY, NOW + 400 * DAY))
    other_host = issue("other.apps.example.com", inter, hosts=("other.apps.example.com",))
    no_san = issue(CONSOLE_HOST, inter)
    own = issue(CONSOLE_HOST, hosts=(CONSOLE_HOST,))
    stranger = issue("unrelated CA", ca=True)
    stale = issue(CONSOLE_HOST, inter, hosts=(CONSOLE_HOST,), validity=(NOW - 400 * DAY,
                                                                         NOW - DAY))
    return [
        CertCase("good", _split(leaf, inter), trusted, "covers"),
        CertCase("good-rsa-pkcs1", _split(rsa.leaf, rsa.intermediate,
                                          key=rsa.leaf.key_pem("pkcs1")),
                 rsa.root.cert_pem(), "unencrypted PKCS#1 key"),
        CertCase("good-ec-sec1", _split(leaf, inter, key=leaf.key_pem("sec1")), trusted,
                 "unencrypted SEC1 key"),
        CertCase("with-root", _split(leaf, inter, root), trusted, "covers"),
        CertCase("repeated-intermediate", _split(leaf, inter, inter), trusted, "repeats"),
        CertCase("leaf-only", _split(leaf), trusted, "holds only the server certificate"),
        CertCase("leaf-signed-by-root", _split(by_root), trusted,
                 "holds only the server certificate"),
        CertCase("misordered", _split(inter, leaf, key=leaf.key_pem()), trusted,
                 "server certificate is not first"),
        CertCase("intermediates-reversed", _split(leaf, root, inter), trusted,
                 "misordered chain"),
        CertCase("stranger", _split(leaf, inter, stranger), trusted, "stranger"),
        CertCase("wrong-key", _split(leaf, inter, key=Issued(leaf.cert, new_key()).key_pem()),
                 trusted, "matches none of the certificates"),
        CertCase("encrypted-pkcs8", _split(leaf, inter, key=leaf.key_pem(password=b"secret")),
                 trusted, "encrypted PKCS#8"),
        CertCase("encrypted-pkcs1", _split(rsa.leaf, rsa.intermediate,
                                           key=rsa.leaf.key_pem("pkcs1", b"secret")),
                 rsa.root.cert_pem(), "encrypted PKCS#1"),
        CertCase("key-missing", {"console.crt": pki.chain_pem()}, trusted, "is missing"),
        CertCase("merged", {"console.cert": pki.merged_pem()}, trusted, "merged certificate"),
        CertCase("not-pem", {"console.crt": b"hello\n", "console.key": leaf.key_pem()}, trusted,
                 "No PEM-encoded certificate found"),
        CertCase("expired", _split(expired.leaf, expired.intermediate),
                 expired.root.cert_pem(), "expired on"),
        CertCase("expiring", _split(expiring.leaf, expiring.intermediate),
                 expiring.root.cert_pem(), "expires in"),
        CertCase("not-yet-valid", _split(future.leaf, future.intermediate),
                 future.root.cert_pem(), "not valid before"),
        CertCase("wrong-host", _split(other_host, inter), trusted, "does not cover"),
        CertCase("no-subject-alt-name", _split(no_san, inter), trusted, "no subjectAltName"),
        CertCase("operator-self-signed", _split(own), own.cert_pem(), "is self-signed"),
        CertCase("shadowed-by-expired", {**_split(leaf, inter),
                                         **_split(stale, inter, name="zz-old")},
                 trusted, "console.crt is shadowed by zz-old.crt"),
        CertCase("shadowing-a-stale-file", {**_split(stale, inter, name="a-old"),
                                            **_split(leaf, inter)},
                 trusted, "a-old.crt is shadowed by console.crt"),
        CertCase("self-signed-default", _self_signed_default(), trusted,
                 "Cockpit's generated self-signed certificate"),
        CertCase("shadowed-by-self-signed", {**_split(leaf, inter, name="0-console"),
                                             **_self_signed_default()},
                 trusted, "0-console.crt is shadowed by 0-self-signed.cert"),
        CertCase("empty", {}, trusted, "no *.cert or *.crt file"),
    ]


CASES = corpus()


@dataclass(frozen=True)
class CockpitOutcome:
    ensure: str  # cockpit-certificate-ensure --check: exit code and output
    cockpit_refused: str | None  # ensure --check failed, or cockpit-ws exited
    browser_refused: str | None  # cockpit-ws served, the browser-like client refused
    default_self_signed: bool  # Cockpit serves its own 0-self-signed.cert
    issuer_unseen: bool  # refused only because the lone server certificate's issuer is unknown

    def allowed(self) -> set[Status]:
        if self.cockpit_refused:
            return {Status.CRIT}
        if self.default_self_signed:  # browsers refuse it by design: the issue's warn
            return {Status.WARN}
        if self.browser_refused:
            return {Status.CRIT, Status.WARN} if self.issuer_unseen else {Status.CRIT}
        return {Status.OK, Status.WARN}

    def __str__(self) -> str:
        return f"{self.cockpit_refused or self.browser_refused or 'accepted'} ({self.ensure})"


def cockpit_outcome(root: Path, case: CertCase) -> CockpitOutcome:
    check = ensure_check(root)
    ensure = f"exit {check.returncode}: {(check.stdout + check.stderr).strip()}"
    default = check.returncode == 0 and "/0-self-signed.cert" in check.stdout
    if check.returncode != 0:
        return CockpitOutcome(ensure, "cockpit-certificate-ensure --check failed", None,
                              default, False)
    try:
        with cockpit_ws(root) as (_, port):
            handshake = browser_handshake(port, CONSOLE_HOST, case.trusted)
    except RuntimeError as exited:
        return CockpitOutcome(ensure, f"cockpit-ws: {exited}", None, default, False)
    lone = sum(data.count(b"BEGIN CERTIFICATE") for n, data in case.files.items()
               if n.endswith(".crt")) == 1
    unseen = lone and handshake.served == 1 and "unable to get local issuer" in \
        (handshake.error or "")
    return CockpitOutcome(ensure, None, handshake.error, default, unseen)


def judged(case: CertCase, tmp_path: Path) -> Result:
    dump = console_dump(tmp_path / "dump", image=COCKPIT_287, secret_files=case.files)
    config = RunConfig(from_dir=dump)
    report = engine.run(config, engine.select_checks(["cert-chain-order"], config=config))
    return report.results[0]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_verdict_agrees_with_cockpit(case: CertCase, tmp_path: Path) -> None:
    require_cockpit()
    cert_folder(tmp_path, case.files)
    outcome = cockpit_outcome(tmp_path, case)
    result = judged(case, tmp_path)
    shown = f"{result.status.value}: {result.summary}\n  " + "\n  ".join(result.details)
    assert result.status in outcome.allowed(), \
        f"Cockpit: {outcome}\ndoctor: {shown}"
    assert any(case.mentions in d for d in result.details), shown

