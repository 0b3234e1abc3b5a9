"""registry-tls beyond its fixture cases: a certificate relative to today (expiring, with its
expiry metric), and the live probe against a real TLS server (`openssl s_server`) standing in
for the registry's Service."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import Result, Status
from registry_doctor.doctor.probes.registry_tls import handshake_targets
from registry_doctor.doctor.snapshot import collect
from registry_doctor.doctor.snapshot.dump import load_dump
from registry_doctor.doctor.snapshot.offline import DumpSource
from tests.casedump import Case, discover_cases, materialize
from tests.certs import DAY, NOW, Issued, issue
from tests.registry_tls_fixtures import (
    ALL_NAMES,
    SECRET_FILE,
    healthy_objects,
    ingress,
    plain_http_dc,
    registry_secret,
    route,
    server,
    signer,
)
from tests.tools import find_tool, free_port
from tests.tools import server as server_process

CA = signer()
# The probe tests' Service is at 127.0.0.1: the certificate names that as its clusterIP.
PROBE_NAMES = (*ALL_NAMES[:-1], "127.0.0.1")
LEAF = server(CA, PROBE_NAMES)


def _dump(folder: Path, objects: dict[str, Any], remove: tuple[str, ...] = ()) -> Path:
    """The healthy cluster with `objects` (file name -> object or YAML text) laid over it."""
    overlay = folder / "overlay"
    overlay.mkdir(parents=True)
    for name, content in objects.items():
        text = content if isinstance(content, str) else yaml.safe_dump(content)
        (overlay / name).write_text(text)
    case = Case("registry-tls", folder.name, overlay, {"base": "healthy", "remove": list(remove)})
    return materialize(case, folder / "dump")


def _run(dump: Path, **config: Any) -> Result:
    report = engine.run(RunConfig(from_dir=dump, **config),
                        engine.select_checks(["registry-tls"]))
    return report.results[0]


def _shown(result: Result) -> str:
    return f"{result.status.value}: {result.summary}\n  " + "\n  ".join(result.details)


def test_a_certificate_expiring_within_30_days_warns_and_reports_its_expiry(
        tmp_path: Path) -> None:
    ca = signer((NOW - 300 * DAY, NOW + 900 * DAY))
    leaf = server(ca, validity=(NOW - 300 * DAY, NOW + 20 * DAY))
    secret = registry_secret(leaf, ca, "a certificate expiring in 20 days")
    result = _run(_dump(tmp_path, {SECRET_FILE: secret}))
    assert result.status is Status.WARN, _shown(result)
    assert "certificate 1 (docker-registry-default.apps.example.com) expires in 19 days" in \
        result.summary, _shown(result)
    assert dict(result.metrics) == {
        ("certificate_not_after_timestamp_seconds", (("role", "registry"),)):
            leaf.cert.not_valid_after_utc.timestamp()}
    shown = _shown(result)
    assert "PRIVATE KEY" not in shown and leaf.key_pem().decode().splitlines()[1] not in shown


def test_the_probe_targets_the_service_and_each_served_tls_route_host(tmp_path: Path) -> None:
    edge = route({"termination": "edge"}, [ingress("a.apps.example.com", True),
                                           ingress("b.apps.example.com", False, "Rejected")])
    edge["metadata"]["name"] = "registry-edge"
    plain = route(None)
    plain["metadata"]["name"] = "registry-plain"
    dump = _dump(tmp_path, {"edge.yaml": edge, "plain.yaml": plain})
    config = RunConfig(from_dir=dump)
    snapshot = collect(DumpSource(dump), {"deploymentconfigs", "services", "routes"}, config)
    snapshot.platform = "openshift3"
    assert [(t.kind, t.address, t.host, t.port, t.registry_serves)
            for t in handshake_targets(snapshot)] == [
        ("service", "172.30.1.1", "docker-registry.default.svc", 5000, True),
        ("route", "docker-registry-default.apps.example.com",
         "docker-registry-default.apps.example.com", 443, True),
        ("route", "a.apps.example.com", "a.apps.example.com", 443, False),
    ]


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Any]:
    """Start `openssl s_server` on 127.0.0.1 serving a leaf and its chain; stopped by PID."""
    openssl = find_tool("openssl")
    servers = ExitStack()

    def start(leaf: Issued, chain: Issued) -> int:
        folder = tmp_path / "s_server"
        folder.mkdir()
        (folder / "cert.pem").write_bytes(leaf.cert_pem())
        (folder / "key.pem").write_bytes(leaf.key_pem())
        (folder / "chain.pem").write_bytes(chain.cert_pem())
        port = free_port()
        servers.enter_context(server_process(
            [openssl, "s_server", "-accept", f"127.0.0.1:{port}", "-quiet",
             "-cert", str(folder / "cert.pem"), "-key", str(folder / "key.pem"),
             "-cert_chain", str(folder / "chain.pem")], port, folder / "s_server.log"))
        return port

    with servers:
        yield start


def _service_at(port: int) -> dict[str, Any]:
    service = copy.deepcopy(healthy_objects()["Service"])
    service["spec"]["clusterIP"] = "127.0.0.1"
    service["spec"]["ports"] = [{"name": "5000-tcp", "port": port, "protocol": "TCP",
                                 "targetPort": 5000}]
    return service


def _probed(tmp_path: Path, port: int) -> Result:
    dump = _dump(tmp_path, {SECRET_FILE: registry_secret(LEAF, CA, "the served certificate"),
                            "service.yaml": _service_at(port)},
                 remove=("Route/default/docker-registry",))
    return _run(dump, probes=True)


def test_the_chain_the_service_serves_is_quoted_with_its_expiry(tls_server: Any,
                                                                 tmp_path: Path) -> None:
    port = tls_server(LEAF, CA)
    result = _probed(tmp_path / "same", port)
    assert result.status is Status.OK, _shown(result)
    assert any(f"service docker-registry (docker-registry.default.svc:{port} at 127.0.0.1) "
               "serves certificate 1 (docker-registry-default.apps.example.com) <- certificate 2 "
               "(openshift-signer@1558520000); it stops verifying on 2045-01-01" in d
               for d in result.details), _shown(result)


def test_a_service_serving_another_certificate_than_the_secret_warns(tls_server: Any,
                                                                      tmp_path: Path) -> None:
    # the secret was replaced, the pods not rolled out: they serve another certificate
    port = tls_server(server(CA, PROBE_NAMES), CA)
    result = _probed(tmp_path, port)
    assert result.status is Status.WARN, _shown(result)
    assert "not certificate 1 (docker-registry-default.apps.example.com) of the mounted " \
           "secret: the pods predate the secret change" in result.summary


def test_an_expired_served_chain_is_crit(tls_server: Any, tmp_path: Path) -> None:
    old = signer((NOW - 400 * DAY, NOW - DAY))
    port = tls_server(server(old, PROBE_NAMES, (NOW - 400 * DAY, NOW - DAY)), old)
    result = _probed(tmp_path, port)
    assert result.status is Status.CRIT, _shown(result)
    assert f"(docker-registry.default.svc:{port} at 127.0.0.1) served: certificate 1" in \
        result.summary
    assert "x509: certificate has expired or is not yet valid" in result.summary


def test_an_unreachable_service_is_noted_not_judged(tmp_path: Path) -> None:
    result = _probed(tmp_path, free_port())  # nothing listens
    assert result.status is Status.OK, _shown(result)
    assert any("not reached from here: cannot connect to docker-registry.default.svc" in d
               for d in result.details), _shown(result)


def test_a_route_serving_a_chain_without_its_host_is_crit_and_its_expiry_reported(
        tmp_path: Path) -> None:
    """An edge route's chain is the router's: judged for its host and dates, reported as
    role registry-route, never compared with the registry's own certificate."""
    from registry_doctor.checks import all_checks
    from registry_doctor.doctor.check import ProbeResult
    from registry_doctor.doctor.config import RunConfig
    from registry_doctor.doctor.probe_results import (
        HandshakeTarget,
        RegistryChains,
        ServedChain,
        TargetChain,
    )

    router = server(CA, ("*.apps.other.example.com",))
    dump = _dump(tmp_path, {"dc.yaml": plain_http_dc(),
                            "route.yaml": route({"termination": "edge"})},
                 remove=("Secret/default/registry-certificates",))
    host = "docker-registry-default.apps.example.com"
    observed = RegistryChains((TargetChain(
        HandshakeTarget("route", "route docker-registry (edge)", host, host, 443,
                        registry_serves=False),
        ServedChain(host, 443, (der(router), der(CA)))),))
    config = RunConfig(from_dir=dump)
    check = all_checks()["registry-tls"]
    snapshot = collect(DumpSource(dump), set(check.meta.kinds), config)
    result = engine.evaluate(check, snapshot, config,
                             {"registry-tls": ProbeResult("registry-tls", observed)})
    assert result.status is Status.CRIT, _shown(result)
    assert "clients fail with \"x509: certificate is valid for *.apps.other.example.com, not " \
           "docker-registry-default.apps.example.com\"" in result.summary
    assert dict(result.metrics) == {
        ("certificate_not_after_timestamp_seconds", (("role", "registry-route"),)):
            router.cert.not_valid_after_utc.timestamp()}


def der(issued: Issued) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return issued.cert.public_bytes(Encoding.DER)


def test_a_redacted_snapshot_judges_the_registry_certificate_as_the_original(
        tmp_path: Path) -> None:
    """`registry-doctor snapshot` keeps the certificate and the key's public half: the copy
    gets the same verdicts, and the key is not in it."""
    from tests.robustness.test_secrets import assert_same_diagnosis

    source = _dump(tmp_path, {SECRET_FILE: registry_secret(LEAF, CA, "as served")})
    assert_same_diagnosis(source, tmp_path / "out", "registry-tls")
    [copied] = [o for o in load_dump(tmp_path / "out").objects
                if o["metadata"]["name"] == "registry-certificates"]
    key = base64.b64decode(copied["data"]["registry.key"]).decode()
    assert "REDACTED PRIVATE KEY" in key
    assert not set(LEAF.key_pem().decode().splitlines()[1:-1]) & set(key.splitlines())


def test_hostnames_are_matched_as_go_clients_match_them() -> None:
    from registry_doctor.doctor.pem import certificate_from_der
    from registry_doctor.doctor.registry_tls import hostname_error

    wildcard = certificate_from_der(der(server(CA, ("*.apps.example.com", "10.0.0.1"))), 1)
    assert wildcard is not None
    assert hostname_error(wildcard, "registry.apps.example.com") is None
    assert hostname_error(wildcard, "a.b.apps.example.com") == \
        "x509: certificate is valid for *.apps.example.com, not a.b.apps.example.com"
    assert hostname_error(wildcard, "10.0.0.1") is None
    assert hostname_error(wildcard, "10.0.0.2") == \
        "x509: certificate is valid for 10.0.0.1, not 10.0.0.2"
    common_name_only = certificate_from_der(der(issue("registry.example.com", CA)), 1)
    assert common_name_only is not None and not common_name_only.has_san
    assert hostname_error(common_name_only, "registry.example.com") is None  # Go < 1.15
    assert hostname_error(common_name_only, "172.30.1.1") == \
        "x509: cannot validate certificate for 172.30.1.1 because it doesn't contain any IP SANs"


CASES = [c for c in discover_cases() if c.check == "registry-tls"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_no_key_of_a_case_reaches_any_output(case: Case, tmp_path: Path) -> None:
    from registry_doctor.doctor.render import FORMATS, render
    from tests.test_console_secrets import secrets_in

    dump = materialize(case, tmp_path / "dump")
    config = RunConfig(from_dir=dump)
    report = engine.run(config, engine.select_checks(["registry-tls"], config=config))
    shown = "\n".join(render(report, fmt) for fmt in FORMATS)
    leaked = [s for s in secrets_in(dump) if s in shown]
    assert not leaked, f"{case.id} shows secrets: {leaked}"


def test_the_probe_runs_with_live_probes_like_the_other_tls_probes() -> None:
    from registry_doctor.doctor.probes import selected_probes

    assert selected_probes(["registry-tls"], RunConfig()) == ["registry-tls"]
    assert selected_probes(["registry-tls"], RunConfig(probes=False)) == []
    assert selected_probes(["registry-tls"], RunConfig(from_dir=Path("/tmp"))) == []
    assert selected_probes(["registry-tls"], RunConfig(from_dir=Path("/tmp"), probes=True)) == \
        ["registry-tls"]


def _with_env(dc: dict[str, Any], keep: str) -> dict[str, Any]:
    """`dc` whose registry container sets, of the two TLS variables, only `keep`."""
    container = dc["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [e for e in container["env"]
                        if not e["name"].startswith("REGISTRY_HTTP_TLS")]
    container["env"].append({"name": keep, "value": "/etc/secrets/registry.x"})
    return dc


def test_a_certificate_without_a_key_stops_the_registry(tmp_path: Path) -> None:
    dc = _with_env(copy.deepcopy(healthy_objects()["DeploymentConfig"]),
                   "REGISTRY_HTTP_TLS_CERTIFICATE")
    result = _run(_dump(tmp_path, {"dc.yaml": dc}))
    assert result.status is Status.CRIT, _shown(result)
    assert "no http.tls.key (REGISTRY_HTTP_TLS_KEY) goes with it: the registry exits" in \
        result.summary


def test_a_key_without_a_certificate_is_ignored_like_the_registry_does(tmp_path: Path) -> None:
    dc = _with_env(plain_http_dc(), "REGISTRY_HTTP_TLS_KEY")
    result = _run(_dump(tmp_path, {"dc.yaml": dc, "route.yaml": route({"termination": "edge"})},
                        remove=("Secret/default/registry-certificates",)))
    assert result.status is Status.OK, _shown(result)
    assert any("(env REGISTRY_HTTP_TLS_KEY of dc/docker-registry alone is ignored)" in d
               for d in result.details), _shown(result)
