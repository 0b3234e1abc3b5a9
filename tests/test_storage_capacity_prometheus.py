"""storage-capacity against the real Prometheus (Debian's): it scrapes a small HTTP server
that serves the kubelet's volume statistics with values set here, and the check runs with
--prometheus-url against it, over a dump of the healthy cluster whose registry claim is named
after each scenario. The same Prometheus scrapes `serve` and evaluates the shipped rules."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from registry_doctor.doctor.snapshot.dump import load_dump, write_dump
from tests.certs import issue
from tests.exporting import CLUSTERS, TARGET, poll
from tests.test_exporter_prometheus import PrometheusAPI, rules_without_hold, series
from tests.tools import find_tool, free_port, server

pytestmark = pytest.mark.slow  # waits on scrapes

GIB = 2 ** 30
CAPACITY = 100 * GIB
INODES = 6_553_600
# claim -> (used bytes at the first scrape, bytes added at each scrape, inodes used)
CLAIMS = {
    "registry-ok": (30 * GIB, 0, 100_000),
    "registry-full": (95 * GIB, 0, 100_000),
    "registry-growing": (10 * GIB, 100 * 2 ** 20, 100_000),  # 100 MiB a second (1s scrapes)
    "registry-inodes": (20 * GIB, 0, 6_300_000),
}


class KubeletMetrics(BaseHTTPRequestHandler):
    """/metrics as the kubelet serves its volume statistics (text format 0.0.4)."""

    scrapes = 0

    def do_GET(self) -> None:
        type(self).scrapes += 1
        lines = []
        for name in ("used_bytes", "capacity_bytes", "inodes_used", "inodes"):
            lines.append(f"# TYPE kubelet_volume_stats_{name} gauge")
            for claim, (used, growth, inodes_used) in CLAIMS.items():
                value = {"used_bytes": used + growth * self.scrapes, "capacity_bytes": CAPACITY,
                         "inodes_used": inodes_used, "inodes": INODES}[name]
                lines.append(f'kubelet_volume_stats_{name}{{namespace="default",'
                             f'persistentvolumeclaim="{claim}"}} {value}')
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Stack(NamedTuple):
    url: str  # the Prometheus
    api: PrometheusAPI
    exporter_port: int  # scraped too, with the shipped rules (`for:` 0s)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("prometheus")
    kubelet = ThreadingHTTPServer(("127.0.0.1", 0), KubeletMetrics)  # a port of its own
    threading.Thread(target=kubelet.serve_forever, daemon=True).start()
    port, exporter_port = free_port(), free_port()
    config = folder / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_without_hold(folder / "rules.yml"))],
        "scrape_configs": [
            {"job_name": "kubelet", "static_configs": [
                {"targets": [f"127.0.0.1:{kubelet.server_address[1]}"]}]},
            {"job_name": "registry-doctor", "static_configs": [
                {"targets": [f"127.0.0.1:{exporter_port}"]}]}]}))
    args = [find_tool("prometheus"), f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"]
    try:
        with server(args, port, folder / "prometheus.log"):
            api = PrometheusAPI(port)
            poll(lambda: api.query('count_over_time(kubelet_volume_stats_used_bytes'
                                   '{persistentvolumeclaim="registry-growing"}[1m]) >= 3'),
                 "three scrapes of the kubelet's statistics")
            yield Stack(f"http://127.0.0.1:{port}", api, exporter_port)
    finally:
        kubelet.shutdown()
        kubelet.server_close()


@pytest.fixture
def prometheus_url(stack: Stack) -> str:
    return stack.url


def dump_with_claim(folder: Path, claim: str) -> Path:
    """The healthy cluster with its registry claim renamed `claim`."""
    dump = load_dump(CLUSTERS / "healthy")
    text = json.dumps(dump.objects).replace('"registry-claim"', json.dumps(claim))
    write_dump(folder, {"objects": json.loads(text)}, dump.logs, include_secrets=True)
    return folder


def check(tmp_path: Path, claim: str, url: str, *flags: str) -> tuple[dict, str]:
    done = subprocess.run(
        [sys.executable, "-m", "registry_doctor.doctor.cli", "check", "-c", "storage-capacity",
         "--from-dir", str(dump_with_claim(tmp_path / claim, claim)), "--prometheus-url", url,
         *flags, "-o", "json"], capture_output=True, text=True, timeout=120, check=False)
    return json.loads(done.stdout)["results"][0], done.stdout + done.stderr


def test_a_claim_with_room_is_ok(tmp_path: Path, prometheus_url: str) -> None:
    result, _ = check(tmp_path, "registry-ok", prometheus_url)
    assert result["status"] == "ok", result
    assert result["summary"] == "claim registry-ok uses 30% of its bytes and 2% of its inodes"
    assert f"source: Prometheus {prometheus_url}" in result["details"]
    assert "bytes: 30.0 GiB used of 100.0 GiB (30%)" in result["details"]
    assert "growth over the last day: 0.0 GiB/day: not filling" in result["details"]


def test_a_full_claim_is_crit_and_names_the_fix(tmp_path: Path, prometheus_url: str) -> None:
    result, _ = check(tmp_path, "registry-full", prometheus_url)
    assert result["status"] == "crit", result
    assert result["summary"].startswith("claim registry-full uses 95% of its bytes")
    fix = result["remediation"]["summary"]
    assert "oc adm prune images --keep-tag-revisions=3" in fix, fix
    assert "oc patch pvc/registry-full -n default" in fix, fix


def test_inodes_running_out_is_crit_with_space_left(tmp_path: Path, prometheus_url: str) -> None:
    result, _ = check(tmp_path, "registry-inodes", prometheus_url)
    assert result["status"] == "crit", result
    assert result["summary"] == "claim registry-inodes uses 20% of its bytes and 96% of its inodes"


def test_growth_that_fills_the_claim_within_a_week_warns(tmp_path: Path,
                                                         prometheus_url: str) -> None:
    result, _ = check(tmp_path, "registry-growing", prometheus_url)
    assert result["status"] == "warn", result
    assert "; the last day's growth fills it in 0.0 days" in result["summary"]


def test_a_claim_prometheus_does_not_know_is_unknown(tmp_path: Path,
                                                     prometheus_url: str) -> None:
    result, _ = check(tmp_path, "registry-elsewhere", prometheus_url)
    assert result["status"] == "unknown", result
    assert "has no kubelet_volume_stats_* series for claim registry-elsewhere" \
        in result["summary"]


def test_credentials_in_the_url_are_refused_unshown(tmp_path: Path,
                                                   prometheus_url: str) -> None:
    with_credentials = prometheus_url.replace("http://", "http://admin:s3cr3t-pw@")
    done = subprocess.run(
        [sys.executable, "-m", "registry_doctor.doctor.cli", "check", "-c", "storage-capacity",
         "--from-dir", str(CLUSTERS / "healthy"), "--prometheus-url", with_credentials],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 64, done.stdout + done.stderr
    assert "credentials in the URL are not supported" in done.stderr
    assert "s3cr3t-pw" not in done.stdout + done.stderr


def test_a_prometheus_that_does_not_answer_is_unknown(tmp_path: Path) -> None:
    result, _ = check(tmp_path, "registry-ok", f"http://127.0.0.1:{free_port()}")
    assert result["status"] == "unknown", result
    assert "cannot measure claim registry-ok: GET http://127.0.0.1:" in result["summary"]


def test_the_exporter_publishes_the_claims_usage_and_the_filling_alert_fires(
        tmp_path: Path, stack: Stack) -> None:
    """`serve` publishes the statistics with the registry's labels; the shipped
    RegistryDoctorStorageFillingUp (predict_linear over them) fires for a store growing
    100 MiB a second (its timing and a quiet store's silence: promtool's rule tests)."""
    dump = dump_with_claim(tmp_path / "dump", "registry-growing")
    args = [sys.executable, "-m", "registry_doctor.doctor.cli", "serve", "--check",
            "storage-capacity", "--listen", f"127.0.0.1:{stack.exporter_port}", "--interval",
            "1s", "--from-dir", str(dump), "--prometheus-url", stack.url]
    with server(args, stack.exporter_port, tmp_path / "exporter.log"):
        target = {"instance": f"127.0.0.1:{stack.exporter_port}", "job": "registry-doctor",
                  **TARGET}
        capacity = poll(lambda: stack.api.query("registry_doctor_storage_capacity_bytes"),
                        "the claim's capacity from the exporter")
        assert capacity == {series(check="storage-capacity", **target): float(CAPACITY)}
        assert set(stack.api.query("registry_doctor_storage_inodes")) == set(capacity)
        alert = poll(lambda: next((a for a in stack.api.get("alerts")["alerts"]
                                   if a["labels"]["alertname"] ==
                                   "RegistryDoctorStorageFillingUp"
                                   and a["state"] == "firing"), None),
                     "RegistryDoctorStorageFillingUp firing")
        assert alert["labels"] == {"alertname": "RegistryDoctorStorageFillingUp",
                                   "severity": "warning", **TARGET}
        assert alert["annotations"]["runbook_url"] == "docs/checks/storage-capacity.md"


# OpenShift cluster monitoring's Prometheus sits behind an oauth-proxy: https, and a bearer
# token of an account allowed to view it. Stood in for by a proxy that wants one token.
TOKEN = "sha256~registry-doctor-test-token-4f9b2c"


class OAuthProxy(BaseHTTPRequestHandler):
    """https in front of the real Prometheus: 403 without the bearer token, else its answer."""

    upstream = ""

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            body, status = b"<html>Forbidden</html>", 403
        else:
            with urllib.request.urlopen(self.upstream + self.path, timeout=30) as answer:
                body, status = answer.read(), answer.status
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def behind_proxy(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[str, Path, Path]]:
    """The proxy's URL, a file holding the token, and the CA that signed the proxy's
    certificate."""
    folder = tmp_path_factory.mktemp("oauth-proxy")
    ca = issue("monitoring CA", ca=True)
    served = issue("prometheus-k8s", ca, hosts=("127.0.0.1",))
    (folder / "ca.crt").write_bytes(ca.cert_pem())
    (folder / "tls.pem").write_bytes(served.cert_pem() + served.key_pem())
    (folder / "token").write_text(TOKEN + "\n")
    handler = type("Proxy", (OAuthProxy,), {"upstream": stack.url})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(folder / "tls.pem")
    proxy.socket = tls.wrap_socket(proxy.socket, server_side=True)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{proxy.server_address[1]}", folder / "token", folder / "ca.crt"
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_a_prometheus_behind_an_oauth_proxy_is_read_with_the_token_over_verified_https(
        tmp_path: Path, behind_proxy: tuple[str, Path, Path]) -> None:
    url, token, ca = behind_proxy
    result, output = check(tmp_path, "registry-full", url, "--prometheus-token-file",
                           str(token), "--prometheus-ca-file", str(ca))
    assert result["status"] == "crit", result
    assert f"source: Prometheus {url}" in result["details"]
    assert TOKEN not in output
    refused, output = check(tmp_path, "registry-ok", url, "--prometheus-ca-file", str(ca))
    assert refused["status"] == "unknown", refused
    assert "answered HTTP 403 instead of the query: it wants credentials" in refused["summary"]
    untrusted, output = check(tmp_path, "registry-ok", url, "--prometheus-token-file",
                              str(token))  # the system's CAs do not know the proxy's
    assert untrusted["status"] == "unknown", untrusted
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted["summary"] or \
        "certificate verify failed" in untrusted["summary"], untrusted["summary"]
    assert TOKEN not in output


def test_a_token_is_never_sent_in_clear(tmp_path: Path, behind_proxy: tuple[str, Path, Path],
                                        prometheus_url: str) -> None:
    _, token, _ = behind_proxy
    done = subprocess.run(
        [sys.executable, "-m", "registry_doctor.doctor.cli", "check", "-c", "storage-capacity",
         "--from-dir", str(CLUSTERS / "healthy"), "--prometheus-url", prometheus_url,
         "--prometheus-token-file", str(token)],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 64, done.stdout + done.stderr
    assert "--prometheus-token-file needs an https --prometheus-url" in done.stderr
    assert TOKEN not in done.stdout + done.stderr
