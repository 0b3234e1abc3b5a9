"""The file cockpit-ws says it loaded is the file doctor.cockpit says it chooses.

The real cockpit-ws 287 (Debian) is started on folders whose files compete across `.crt` and
`.cert` and across letter case; its own log line `Using certificate: PATH` (cockpit-project/
cockpit `src/ws/main.c`, logged with G_MESSAGES_DEBUG=cockpit-ws) must be found by
`logged_certificate` and name the file `choose` picks: the last in plain byte order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from registry_doctor.doctor.cockpit import CockpitVersion, choose, logged_certificate
from tests.certs import make_pki
from tests.cockpit import cert_folder, cockpit_ws, require_cockpit

COCKPIT_287 = CockpitVersion(287, "Cockpit 287", launcher=False)

COMPETITIONS = {
    "cert-after-crt": ("a-console.crt", "b-console.cert"),
    "crt-after-cert": ("a-console.cert", "b-console.crt"),
    "operator-after-self-signed": ("0-self-signed.cert", "console.crt"),
    "lower-case-after-upper-case": ("a-console.crt", "Z-console.crt"),
}


@pytest.mark.parametrize("names", COMPETITIONS.values(), ids=COMPETITIONS)
def test_cockpit_ws_logs_the_file_doctor_chooses(names: tuple[str, ...], tmp_path: Path) -> None:
    require_cockpit()
    pki = make_pki()
    files = {}
    for name in names:  # Cockpit 287 wants every key beside its certificate, as NAME.key
        files[name] = pki.chain_pem()
        files[name.rsplit(".", 1)[0] + ".key"] = pki.leaf.key_pem()
    folder = cert_folder(tmp_path, files)
    with cockpit_ws(tmp_path, debug=True):
        log = (tmp_path / "cockpit-ws.log").read_text(errors="replace")
    found = logged_certificate(log)
    assert found is not None, log
    path, line = found
    assert "Using certificate: " in line
    assert path == f"{folder}/{choose(files, COCKPIT_287).certificate}", log


def test_without_debug_cockpit_287_does_not_name_its_certificate(tmp_path: Path) -> None:
    """Why a 287 console's log may lack the line: evidence missing is not evidence against."""
    require_cockpit()
    pki = make_pki()
    cert_folder(tmp_path, {"console.crt": pki.chain_pem(), "console.key": pki.leaf.key_pem()})
    with cockpit_ws(tmp_path):
        log = (tmp_path / "cockpit-ws.log").read_text(errors="replace")
    assert logged_certificate(log) is None, log


def test_the_console_image_format_is_read() -> None:
    """The console image (Cockpit 195, no journal in the pod) prints through cockpitlog.c's
    handler: `INFO: cockpit-ws: MESSAGE`; the last line wins after a restart in one log."""
    log = ("INFO: cockpit-ws: Using certificate: /etc/cockpit/ws-certs.d/0-self-signed.cert\n"
           "MESSAGE: cockpit-ws: some other line\n"
           "INFO: cockpit-ws: Using certificate: /etc/cockpit/ws-certs.d/tls.cert\n")
    assert logged_certificate(log) == (
        "/etc/cockpit/ws-certs.d/tls.cert",
        "INFO: cockpit-ws: Using certificate: /etc/cockpit/ws-certs.d/tls.cert")
