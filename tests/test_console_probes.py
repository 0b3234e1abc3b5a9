"""The console probes against real servers: cockpit-ws from Debian (port owner, /ping
fingerprint, served chain), a plain Python listener, the OAuth test double (tests/osin.py), and
listeners that never answer (every probe keeps its timeout)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry_doctor.checks import all_checks
from registry_doctor.doctor import engine
from registry_doctor.doctor.check import ProbeResult
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import Result, Status
from registry_doctor.doctor.probe_results import ServedChain
from registry_doctor.doctor.probes import ProbeError
from registry_doctor.doctor.probes.console_port import parse_proc_net, shown_command
from registry_doctor.doctor.probes.console_route_tls import served_chain
from registry_doctor.doctor.probes.http_get import get
from registry_doctor.doctor.snapshot import collect
from registry_doctor.doctor.snapshot.offline import DumpSource
from tests.certs import CONSOLE_HOST, make_pki
from tests.cockpit import cert_folder, cockpit_ws, require_cockpit
from tests.consoledump import console_dump
from tests.osin import oauth_server
from tests.tools import free_port, server

PKI = make_pki()


def _check(check_id: str, dump: Path, **config: Any) -> Result:
    run_config = RunConfig(from_dir=dump, **config)
    report = engine.run(run_config, engine.select_checks([check_id], config=run_config))
    return report.results[0]


def _shown(result: Result) -> str:
    return f"{result.status.value}: {result.summary}\n  " + "\n  ".join(result.details)


def _host_network(obj: dict[str, Any]) -> None:
    """The stand-alone layout: the console listens on its node's port 9090."""
    if (obj["kind"], obj["metadata"]["name"]) == ("DeploymentConfig", "registry-console"):
        obj["spec"]["template"]["spec"]["hostNetwork"] = True


@pytest.fixture
def cockpit(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    require_cockpit()
    cert_folder(tmp_path / "cockpit-config", {"console.crt": PKI.chain_pem(),
                                              "console.key": PKI.leaf.key_pem()})
    with cockpit_ws(tmp_path / "cockpit-config") as running:
        yield running


# --- who holds the port (--node-local) ----------------------------------------------------

def test_real_cockpit_is_named_as_cockpit_and_as_the_holder(cockpit, tmp_path: Path) -> None:
    process, port = cockpit
    dump = console_dump(tmp_path / "dump", edit=_host_network)
    result = _check("cockpit-port-conflict", dump, node_local=True, console_port=port)
    shown = _shown(result)
    assert result.status is Status.CRIT, shown
    assert f"pid {process.pid} (/usr/lib/cockpit/cockpit-ws" in result.summary, shown
    assert "it is Cockpit (answers /ping over HTTP and HTTPS as Cockpit" in result.summary, shown


def test_cockpit_on_a_node_whose_console_uses_the_pod_network_is_a_warning(
        cockpit, tmp_path: Path) -> None:
    process, port = cockpit
    result = _check("cockpit-port-conflict", console_dump(tmp_path / "dump"), node_local=True,
                    console_port=port)
    assert result.status is Status.WARN, _shown(result)
    assert f"pid {process.pid}" in result.summary and "it is Cockpit" in result.summary


def test_a_python_listener_is_a_conflict_but_not_cockpit(tmp_path: Path) -> None:
    port = free_port()
    listener = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    with server(listener, port, tmp_path / "http.log") as process:
        dump = console_dump(tmp_path / "dump", edit=_host_network)
        result = _check("cockpit-port-conflict", dump, node_local=True, console_port=port)
    shown = _shown(result)
    assert result.status is Status.CRIT, shown
    assert f"pid {process.pid} ({sys.executable} -m http.server" in result.summary, shown
    assert "it is not Cockpit (HTTP /ping: HTTP 404, not Cockpit's fingerprint" in \
        result.summary, shown


def test_a_free_port_is_ok(tmp_path: Path) -> None:
    dump = console_dump(tmp_path / "dump", edit=_host_network)
    result = _check("cockpit-port-conflict", dump, node_local=True, console_port=free_port())
    assert result.status is Status.OK, _shown(result)
    assert any("nothing listens on port" in d for d in result.details)


def test_the_console_itself_holding_the_port_is_ok(tmp_path: Path) -> None:
    from registry_doctor.doctor.probe_results import Holder, Listener, PortHolders

    config = RunConfig(from_dir=console_dump(tmp_path / "dump", edit=_host_network),
                       node_local=True)
    check = all_checks()["cockpit-port-conflict"]
    snapshot = collect(DumpSource(config.from_dir), set(check.meta.kinds), config)
    console_uid = snapshot.items("console-pods")[0]["metadata"]["uid"]
    observed = PortHolders(9090, (Listener("0.0.0.0", 9090, 1),),
                           (Holder(4242, "/usr/libexec/cockpit-ws", console_uid),),
                           hidden=False, ping={})
    result = engine.evaluate(check, snapshot, config,
                             {"console-port": ProbeResult("console-port", observed)})
    assert result.status is Status.OK, _shown(result)
    assert any("held by the console itself (pid 4242" in d for d in result.details)


def test_a_probe_answering_the_wrong_type_is_refused_not_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe that answers the untyped dict of old instead of its result type: the check that
    reads it is unknown and says which probe answered what, no traceback, no verdict on it."""
    def untyped(snapshot: Any, config: RunConfig, timeout: float) -> dict[str, Any]:
        return {"port": 9090, "listeners": [], "holders": [], "hidden": False, "ping": {}}

    monkeypatch.setattr(engine, "probe_function", lambda probe_id: untyped)
    dump = console_dump(tmp_path / "dump", edit=_host_network)
    result = _check("cockpit-port-conflict", dump, node_local=True, console_port=free_port())
    assert result.status is Status.UNKNOWN, _shown(result)
    assert result.summary == "probe console-port answered dict, not the PortHolders this " \
                             "check reads (a bug in the probe)"


def test_proc_net_parsing_and_command_redaction() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        "   0: 0100007F:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0  "
        "      0 31337 1 0000000000000000 100 0 0 10 0\n"
        "   1: 0100007F:2382 0200007F:C350 01 00000000:00000000 00:00000000 00000000     0  "
        "      0 31338 1 0000000000000000 100 0 0 10 0\n")
    table6 = (
        "  sl  local_address                         remote_address                        st\n"
        "   0: 00000000000000000000000001000000:2382 00000000000000000000000000000000:0000 0A "
        "00000000:00000000 00:00000000 00000000     0        0 4711 1\n")
    assert [(s.address, s.port, s.inode) for s in parse_proc_net(table)] == [
        ("127.0.0.1", 9090, 31337)]
    assert [(s.address, s.connect_address) for s in parse_proc_net(table6)] == [("::1", "::1")]
    assert shown_command(["/usr/bin/tool", "--password=hunter2", "-v", "a", "b"]) == \
        "/usr/bin/tool --password=... -v a ..."


# --- the chain the console serves ---------------------------------------------------------

def test_served_chain_is_read_from_real_cockpit(cockpit, tmp_path: Path) -> None:
    _, port = cockpit
    observed = served_chain(CONSOLE_HOST, port, 5, address="127.0.0.1")
    assert len(observed.chain) == 2 and observed.handshake_error is None
    result = _judge_served(tmp_path / "same", observed, PKI.merged_pem())
    assert result.status is Status.OK, _shown(result)
    assert any("(served by Cockpit, through the passthrough route)" in d and "covers" in d
               for d in result.details), _shown(result)
    other = make_pki().merged_pem()  # the secret changed, the pod was not rolled out
    result = _judge_served(tmp_path / "stale", observed, other)
    assert result.status is Status.WARN and "the console pod predates the secret change" in \
        result.summary, _shown(result)


def test_a_misordered_chain_fails_every_handshake(tmp_path: Path) -> None:
    require_cockpit()
    cert_folder(tmp_path / "cfg", {"console.crt": PKI.intermediate.cert_pem() +
                                   PKI.leaf.cert_pem(), "console.key": PKI.leaf.key_pem()})
    with cockpit_ws(tmp_path / "cfg") as (_, port):
        observed = served_chain(CONSOLE_HOST, port, 5, address="127.0.0.1")
    assert observed.handshake_error is not None
    result = _judge_served(tmp_path, observed, PKI.merged_pem())
    assert result.status is Status.CRIT and "the TLS handshake fails" in result.summary


def _judge_served(tmp_path: Path, observed: ServedChain, secret_file: bytes) -> Result:
    """cert-chain-order on the healthy dump whose console secret holds `secret_file`, with the
    route probe's observation."""
    config = RunConfig(from_dir=console_dump(tmp_path / "dump", secret_files={
        "registry-console.cert": secret_file}))
    check = all_checks()["cert-chain-order"]
    snapshot = collect(DumpSource(config.from_dir), set(check.meta.kinds), config)
    return engine.evaluate(check, snapshot, config, {
        "console-route-tls": ProbeResult("console-route-tls", observed)})


# --- OAuth, against the test double of the master -----------------------------------------

def _provider(url: str) -> Any:
    def edit(obj: dict[str, Any]) -> None:
        if (obj["kind"], obj["metadata"]["name"]) == ("DeploymentConfig", "registry-console"):
            for env in obj["spec"]["template"]["spec"]["containers"][0]["env"]:
                if env["name"] == "OPENSHIFT_OAUTH_PROVIDER_URL":
                    env["value"] = url
    return edit


CONSOLE_URL = f"https://{CONSOLE_HOST}"


@pytest.mark.parametrize(("registered", "status", "evidence"), [
    ([CONSOLE_URL], Status.OK, "the OAuth server accepts the console's login"),
    (["https://registry-console.apps.old.example.com"], Status.CRIT,
     "answered HTTP 400 invalid_request"),
])
def test_authorize_probe_reads_the_oauth_servers_answer(
        tmp_path: Path, registered: list[str], status: Status, evidence: str) -> None:
    with oauth_server(tmp_path) as master:
        master.clients["cockpit-oauth-client"] = registered
        dump = console_dump(tmp_path / "dump", edit=_provider(master.url))
        result = _check("oauth-redirect", dump, probes=True, oauth_probe=True)
    assert result.status is status, _shown(result)
    assert any(evidence in d for d in result.details), _shown(result)
    assert any(r.startswith("/oauth/authorize?client_id=cockpit-oauth-client&redirect_uri="
                            "https%3A%2F%2Fregistry-console-default") for r in master.requests)


SERVED_HOST = "registry-console-default.apps2.example.com"


def _served_elsewhere(url: str, registered: list[str]) -> Any:
    """The provider at `url`, the OAuthClient listing `registered`, and the console route
    admitted by a router with its own subdomain (ROUTER_OVERRIDE_HOSTNAME=true): it serves
    SERVED_HOST, not spec.host."""
    def edit(obj: dict[str, Any]) -> None:
        _provider(url)(obj)
        if obj["kind"] == "OAuthClient":
            obj["redirectURIs"] = registered
        if (obj["kind"], obj["metadata"]["name"]) == ("Route", "registry-console"):
            obj["status"] = {"ingress": [{"host": SERVED_HOST, "routerName": "router",
                                          "conditions": [{"type": "Admitted",
                                                          "status": "True"}]}]}
    return edit


@pytest.mark.parametrize(("registered", "status", "answer"), [
    ([CONSOLE_URL], Status.CRIT, "answered HTTP 400 invalid_request"),  # spec.host: stale
    ([f"https://{SERVED_HOST}"], Status.OK, "answered HTTP 302"),
])
def test_authorize_probe_asks_with_the_host_the_router_serves(
        tmp_path: Path, registered: list[str], status: Status, answer: str) -> None:
    with oauth_server(tmp_path) as master:
        master.clients["cockpit-oauth-client"] = registered
        dump = console_dump(tmp_path / "dump", edit=_served_elsewhere(master.url, registered))
        result = _check("oauth-redirect", dump, probes=True, oauth_probe=True)
    assert result.status is status, _shown(result)
    assert any(f"redirect_uri https://{SERVED_HOST}/ {answer}" in d for d in result.details), \
        _shown(result)


def test_unknown_client_on_the_server_is_crit(tmp_path: Path) -> None:
    with oauth_server(tmp_path) as master:
        dump = console_dump(tmp_path / "dump", edit=_provider(master.url))
        result = _check("oauth-redirect", dump, probes=True, oauth_probe=True)
    assert result.status is Status.CRIT and "unauthorized_client" in result.summary


def test_the_authorize_probe_is_opt_in(tmp_path: Path) -> None:
    with oauth_server(tmp_path) as master:
        dump = console_dump(tmp_path / "dump", edit=_provider(master.url))
        result = _check("oauth-redirect", dump, probes=True)
    assert not any("/oauth/authorize" in r for r in master.requests)
    assert any("add --oauth-probe" in d for d in result.details)


def test_provider_url_other_than_the_issuer_is_a_warning(tmp_path: Path) -> None:
    with oauth_server(tmp_path, issuer="https://master.example.com:8443") as master:
        dump = console_dump(tmp_path / "dump", edit=_provider(master.url))
        result = _check("oauth-redirect", dump, probes=True)
    assert result.status is Status.WARN, _shown(result)
    assert "OPENSHIFT_OAUTH_PROVIDER_URL=https://master.example.com:8443" in result.summary


# --- timeouts -----------------------------------------------------------------------------

@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def _finishes(function: Any, *args: Any) -> Any:
    """Run `function` in a thread; a hang fails the test instead of blocking the suite."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function(*args)
        except ProbeError as error:
            outcome["error"] = error
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), f"{function.__name__} ignored its timeout"
    return outcome


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_http_probe_gives_up_on_a_silent_server(silent_port: int, scheme: str) -> None:
    outcome = _finishes(get, f"{scheme}://127.0.0.1:{silent_port}/ping", 0.5)
    assert "no answer within 0.5s" in str(outcome["error"])


def test_tls_probe_gives_up_on_a_silent_server(silent_port: int) -> None:
    outcome = _finishes(served_chain, CONSOLE_HOST, silent_port, 0.5, "127.0.0.1")
    assert "did not finish" in str(outcome["error"])


def test_which_probes_run_by_default() -> None:
    from registry_doctor.doctor.probes import selected_probes

    console = ["console-port", "console-cert-dir", "console-route-tls", "console-oauth",
               "console-oauth-authorize"]
    live = RunConfig()
    assert selected_probes(console, live) == ["console-oauth", "console-route-tls"]
    asked = RunConfig(node_local=True, cert_dir=Path("/tmp"), oauth_probe=True)
    assert selected_probes(console, asked) == sorted(console)
    dump = RunConfig(from_dir=Path("/tmp"), node_local=True, cert_dir=Path("/tmp"),
                     oauth_probe=True)
    assert selected_probes(console, dump) == ["console-cert-dir", "console-port"]
    off = RunConfig(node_local=True, cert_dir=Path("/tmp"), probes=False)
    assert selected_probes(console, off) == []
