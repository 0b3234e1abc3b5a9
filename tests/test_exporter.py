"""The exporter in-process and as `registry-doctor serve`: metrics of the cached report,
endpoints, concurrency during refreshes, failed runs, logs, shutdown and flags."""

from __future__ import annotations

import io
import json
import logging
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from registry_doctor.checks.ephemeral_storage import volume_info
from registry_doctor.doctor import __version__
from registry_doctor.doctor.kube import KubeError
from registry_doctor.doctor.model import Report, Result, Status
from registry_doctor.exporter import logs
from registry_doctor.exporter.collector import FACTS
from registry_doctor.exporter.scheduler import Scheduler
from tests.exporting import (
    CLUSTERS,
    REPO,
    TARGET,
    Scrape,
    dump_run,
    http_get,
    in_process,
    poll,
    scrape_until,
    serve_command,
)
from tests.kubefake import FakeKubeAPI
from tests.test_cli import kubeconfig_for
from tests.tools import find_tool, free_port, server, stop

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def report_of(*results: Result, generated: str = "2026-11-26T10:00:00+00:00") -> Report:
    return Report(generated=generated, source={"type": "dump"}, results=results)


def test_metrics_of_the_broken_dump() -> None:
    with in_process(dump_run("broken")) as exporter:
        report = exporter.scheduler.run_once().report
        scrape = exporter.scrape()
    assert scrape.statuses() == {"besteffort-qos": "crit"}
    assert {s["status"] for s in scrape.series("registry_doctor_check_status")} == \
        {s.value for s in Status}
    assert scrape.series("registry_doctor_check_info") == [{
        "check": "besteffort-qos", "severity": "crit",
        "title": "Registry pods have compute resource requests"}]
    assert scrape.value("registry_doctor_runs_total") == 1
    assert scrape.value("registry_doctor_run_errors_total") == 0
    assert scrape.value("registry_doctor_up") == 1
    assert scrape.value("registry_doctor_run_interval_seconds") == 3600
    assert scrape.value("registry_doctor_run_duration_seconds") == report.duration_seconds
    assert scrape.value("registry_doctor_last_run_timestamp_seconds") == \
        exporter.scheduler.state.finished_at
    for family in ("registry_doctor_check_status", "registry_doctor_check_info"):
        # HELP is constant (no run time in it): the age is last_run_timestamp_seconds.
        assert scrape.families[family].documentation.endswith(
            "(from the last completed run; scrapes never run checks)")
        assert report.generated[:10] not in scrape.families[family].documentation
    [build] = scrape.series("registry_doctor_build_info")
    assert build["version"] == __version__
    assert (build["python"], build["platform"]) == (platform.python_version(), sys.platform)


def test_promtool_finds_nothing_wrong_in_real_output() -> None:
    with in_process(dump_run("broken")) as exporter:
        exporter.scheduler.run_once()
        text = exporter.get("/metrics")[1]
    done = subprocess.run([find_tool("promtool"), "check", "metrics"], input=text,
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_openmetrics_on_request() -> None:
    with in_process(dump_run("broken")) as exporter:
        exporter.scheduler.run_once()
        _, body, headers = http_get(exporter.url + "/metrics", "application/openmetrics-text")
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")
    assert 'registry_doctor_check_status{check="besteffort-qos",status="crit"} 1.0' in body


def test_check_facts_become_gauges_with_their_check_label() -> None:
    console = (("role", "console"),)
    cert = Result("cert-chain-order", "Console certificate chain", Status.OK, "valid",
                  metrics={("certificate_not_after_timestamp_seconds", console): 1_800_000_000})
    s3 = Result("s3-reachability", "S3 bucket reachable", Status.WARN, "slow",
                metrics={"s3_probe_duration_seconds": 0.25, "s3_retries_total_ratio": 0.5})
    push = (("target", "service"), ("phase", "push"))
    canary = Result("push-pull-canary", "Canary", Status.OK, "pushed", metrics={
        ("canary_phase_duration_seconds", push): 0.03, ("canary_phase_success", push): 1.0})
    storage = Result("ephemeral-storage", "Storage", Status.OK, "on a claim",
                     metrics=volume_info("default", "registry-claim"))
    capacity = Result("storage-capacity", "Capacity", Status.WARN, "85% full", metrics={
        "storage_used_bytes": 85e9, "storage_capacity_bytes": 100e9,
        "storage_inodes_used": 1e5, "storage_inodes": 6.5e6})
    with in_process(lambda: report_of(cert, s3, canary, storage, capacity),
                    severities={}) as exporter:
        exporter.scheduler.run_once()
        scrape = exporter.scrape()
    assert scrape.value("registry_doctor_registry_volume_info", check="ephemeral-storage",
                        claim_namespace="default", persistentvolumeclaim="registry-claim") == 1
    assert scrape.value("registry_doctor_canary_phase_duration_seconds",
                        check="push-pull-canary", target="service", phase="push") == 0.03
    assert scrape.value("registry_doctor_certificate_not_after_timestamp_seconds",
                        check="cert-chain-order", role="console") == 1_800_000_000
    assert scrape.value("registry_doctor_s3_probe_duration_seconds",
                        check="s3-reachability") == 0.25
    assert scrape.value("registry_doctor_storage_used_bytes", check="storage-capacity") == 85e9
    assert scrape.value("registry_doctor_storage_inodes", check="storage-capacity") == 6.5e6
    for key, help_text in FACTS.items():
        assert scrape.families[f"registry_doctor_{key}"].documentation.startswith(help_text)
    # An undocumented key is still published, with a generic help text.
    assert scrape.value("registry_doctor_s3_retries_total_ratio", check="s3-reachability") == 0.5
    assert scrape.statuses() == {"cert-chain-order": "ok", "s3-reachability": "warn",
                                 "push-pull-canary": "ok", "ephemeral-storage": "ok",
                                 "storage-capacity": "warn"}
    assert {s["severity"] for s in scrape.series("registry_doctor_check_info")} == {""}


def test_series_of_vanished_checks_disappear() -> None:
    cert = Result("cert-chain-order", "t", Status.CRIT, "s",
                  metrics={"certificate_not_after_timestamp_seconds": 1.0})
    qos = Result("besteffort-qos", "t", Status.OK, "s")
    reports = iter([report_of(cert, qos), report_of(qos)])
    with in_process(lambda: next(reports)) as exporter:
        exporter.scheduler.run_once()
        assert set(exporter.scrape().statuses()) == {"cert-chain-order", "besteffort-qos"}
        exporter.scheduler.run_once()
        scrape = exporter.scrape()
    assert scrape.statuses() == {"besteffort-qos": "ok"}
    assert "registry_doctor_certificate_not_after_timestamp_seconds" not in scrape.families
    assert all(s["check"] == "besteffort-qos" for s in scrape.series("registry_doctor_check_info"))


def test_scrapes_never_run_the_checks() -> None:
    calls = []
    engine_run = dump_run("broken")

    def counted() -> Report:
        calls.append(1)
        return engine_run()

    with in_process(counted) as exporter:
        exporter.scheduler.run_once()
        scrapes = [exporter.scrape() for _ in range(20)]
    assert len(calls) == 1
    assert {s.value("registry_doctor_runs_total") for s in scrapes} == {1}


def test_health_and_readiness_are_about_the_exporter() -> None:
    failures = iter([KubeError("cannot reach the API server")])

    def run() -> Report:
        error = next(failures, None)
        if error:
            raise error
        return dump_run("broken")()

    with in_process(run) as exporter:
        assert exporter.get("/healthz") == (200, "ok\n")
        assert exporter.get("/readyz") == (503, "not ready: the first run has not finished\n")
        scrape = exporter.scrape()
        assert "registry_doctor_up" not in scrape.families
        assert scrape.value("registry_doctor_runs_total") == 0
        exporter.scheduler.run_once()
        assert exporter.get("/readyz")[0] == 503
        assert exporter.scrape().value("registry_doctor_up") == 0
        report = exporter.scheduler.run_once().report
        # A crit registry is a healthy, ready exporter.
        assert exporter.get("/healthz") == (200, "ok\n")
        assert exporter.get("/readyz") == (200, f"ok: serving the report of {report.generated}\n")
        assert exporter.get("/nope")[0] == 404


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The exporter's log configuration, writing to a buffer; the root logger restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    logs.configure(stream)
    yield stream
    root.handlers[:], root.level = saved
    logging.captureWarnings(False)


def test_engine_failure_keeps_the_last_good_report_and_counts_errors(
        json_logs: io.StringIO) -> None:
    good = dump_run("broken")
    runs = iter([good, KubeError("cannot reach the API server https://master:8443"),
                 RuntimeError("bug in the engine")])

    def run() -> Report:
        step = next(runs)
        if isinstance(step, Exception):
            raise step
        return step()

    with in_process(run) as exporter:
        first = exporter.scheduler.run_once()
        before = exporter.scrape()
        for errors in (1, 2):
            exporter.scheduler.run_once()
            after = exporter.scrape()
            assert after.value("registry_doctor_run_errors_total") == errors
            assert after.value("registry_doctor_runs_total") == 1 + errors
            assert after.value("registry_doctor_up") == 0
            assert after.statuses() == before.statuses() == {"besteffort-qos": "crit"}
            assert after.value("registry_doctor_last_run_timestamp_seconds") == first.finished_at
        assert exporter.get("/readyz")[0] == 200
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    failed = [line for line in lines if line["message"].startswith("run failed")]
    assert [line["error"] for line in failed] == [
        "KubeError: cannot reach the API server https://master:8443",
        "RuntimeError: bug in the engine"]
    assert all(line["served_report"] == first.report.generated for line in failed)
    # A cluster error explains itself; an unexpected one keeps its traceback for the bug report.
    assert "traceback" not in failed[0] and "bug in the engine" in failed[1]["traceback"]


def test_a_blind_run_keeps_the_last_report(json_logs: io.StringIO) -> None:
    """A report the cluster could not answer (every check unknown) is not news of the
    registry: the crit stays, `up` says the run failed."""
    blind = Report(generated="2026-11-26T10:01:00+00:00", source={"type": "cluster"},
                   results=(Result("besteffort-qos", "t", Status.UNKNOWN, "refused"),),
                   source_failure="cannot reach the API server https://master:8443: "
                                  "connection refused (list pods in default)")
    runs = iter([dump_run("broken")(), blind])
    with in_process(lambda: next(runs)) as exporter:
        exporter.scheduler.run_once()
        exporter.scheduler.run_once()
        scrape = exporter.scrape()
    assert scrape.statuses() == {"besteffort-qos": "crit"}
    assert scrape.value("registry_doctor_up") == 0
    assert scrape.value("registry_doctor_run_errors_total") == 1
    [failed] = [json.loads(line) for line in json_logs.getvalue().splitlines()
                if "run failed" in line]
    assert failed["error"] == f"cannot read the cluster: {blind.source_failure}"
    assert "traceback" not in failed


def test_fifty_concurrent_scrapes_during_refreshes_see_whole_reports() -> None:
    """Odd runs serve the broken dump (crit), even runs the healthy one (ok): every scrape's
    check series must agree with its own runs_total, so no scrape mixes two runs."""
    broken, healthy = dump_run("broken"), dump_run("healthy")
    in_run, release = threading.Event(), threading.Event()
    count = [0]

    def alternating() -> Report:
        count[0] += 1
        report = (broken if count[0] % 2 else healthy)()
        if count[0] == 2:  # hold the second run open while the first wave scrapes
            in_run.set()
            release.wait(60)
        return report

    def wave(exporter, scrapes_each: int) -> list[Scrape]:
        barrier = threading.Barrier(50)
        found: list[Scrape] = []

        def scraper() -> None:
            barrier.wait(60)
            found.extend(exporter.scrape() for _ in range(scrapes_each))

        threads = [threading.Thread(target=scraper) for _ in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert len(found) == 50 * scrapes_each
        return found

    with in_process(alternating) as exporter:
        exporter.scheduler.run_once()
        refresh = threading.Thread(target=exporter.scheduler.run_once)
        refresh.start()
        assert in_run.wait(60)
        during = wave(exporter, 1)  # all while run 2 is in progress: run 1's report, whole
        release.set()
        refresh.join(60)
        stop_refreshing = threading.Event()

        def refresh_loop() -> None:
            while not stop_refreshing.is_set():
                exporter.scheduler.run_once()

        refresher = threading.Thread(target=refresh_loop)
        refresher.start()
        try:
            free_running = wave(exporter, 4)
        finally:
            stop_refreshing.set()
            refresher.join(60)
    assert {s.value("registry_doctor_runs_total") for s in during} == {1}
    for scrape in during + free_running:
        runs = scrape.value("registry_doctor_runs_total")
        expected = "crit" if runs % 2 else "ok"
        assert scrape.statuses() == {"besteffort-qos": expected}, scrape.text
        assert len(scrape.series("registry_doctor_check_status")) == len(Status)
        assert scrape.value("registry_doctor_run_errors_total") == 0


def test_every_exported_metric_is_documented() -> None:
    cert = Result("cert-chain-order", "t", Status.OK, "s", metrics={
        (key, (("target", "service"),)) if key.startswith("canary_") else key: 1.0
        for key in FACTS})
    with in_process(dump_run("broken")) as exporter:
        exporter.scheduler.run_once()
        names = set(exporter.scrape().families)
    with in_process(lambda: report_of(cert)) as exporter:
        exporter.scheduler.run_once()
        names |= set(exporter.scrape().families)
    docs = (REPO / "docs" / "exporter.md").read_text()
    ours = {n for n in names if n.startswith("registry_doctor_")}
    assert len(ours) == 18
    for name in ours:
        # prometheus_client names counter families without the _total suffix.
        shown = name + "_total" if name in ("registry_doctor_runs", "registry_doctor_run_errors") \
            else name
        assert f"`{shown}`" in docs, f"docs/exporter.md does not list {shown}"


# --- `registry-doctor serve` as a real process ---------------------------------------------

def _kubeconfig(path: Path, port: int) -> Path:
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{token: not-a-real-token}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
""")
    return path


def test_serve_holds_its_report_while_blind_and_stops_on_sigterm(
        tmp_path: Path, fake_api: Callable[[Path], FakeKubeAPI]) -> None:
    """The real engine and client against the fake API server: a first run judges the broken
    cluster; then the API server goes away (connections refused) and later the kubeconfig too.
    Blind runs fail: the crit is still served, with `up` 0, never turned into `unknown`."""
    api = fake_api(CLUSTERS / "broken")
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    port, log = free_port(), tmp_path / "serve.log"
    args = serve_command("--listen", f"127.0.0.1:{port}", "--interval", "1s", "--timeout", "5",
                         "--check", "besteffort-qos", "--kubeconfig", str(kubeconfig))
    with server(args, port, log, env=ENV) as process:
        url = f"http://127.0.0.1:{port}"
        first = scrape_until(url, lambda s: s.value("registry_doctor_up", **TARGET) == 1,
                             "a first run")
        assert first.statuses() == {"besteffort-qos": "crit"}
        api.stop()
        blind = scrape_until(url, lambda s: s.value("registry_doctor_up", **TARGET) == 0,
                             "a blind run")
        kubeconfig.unlink()
        errors = blind.value("registry_doctor_run_errors_total", **TARGET) or 0
        later = scrape_until(url, lambda s: (s.value("registry_doctor_run_errors_total",
                                                     **TARGET) or 0) > errors + 1,
                             "runs without a kubeconfig")
        for scrape in (blind, later):
            assert scrape.value("registry_doctor_up", **TARGET) == 0
            assert scrape.statuses() == {"besteffort-qos": "crit"}
            # Still the last good report: its time stands while runs fail.
            assert scrape.value("registry_doctor_last_run_timestamp_seconds", **TARGET) == \
                first.value("registry_doctor_last_run_timestamp_seconds", **TARGET)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    messages = [line["message"] for line in lines]
    assert messages[0] == "serving" and messages[-2:] == ["stopping", "stopped"]
    errors = [line["error"] for line in lines if line["message"].startswith("run failed")]
    assert errors[0].startswith("cannot read the cluster: cannot reach the API server") and \
        "connection refused" in errors[0] and "timed out" not in errors[0]
    assert errors[-1].endswith("kubeconfig: no such file")


def test_serve_never_shows_credentials_of_the_api_server_url(tmp_path: Path) -> None:
    kubeconfig = kubeconfig_for(tmp_path / "kubeconfig",
                                f"https://alice:pw-4711@127.0.0.1:{free_port()}")
    port, log = free_port(), tmp_path / "serve.log"
    args = serve_command("--listen", f"127.0.0.1:{port}", "--interval", "1s",
                         "--kubeconfig", str(kubeconfig))
    with server(args, port, log, env=ENV) as process:
        scrape = scrape_until(f"http://127.0.0.1:{port}", lambda s: (
            s.value("registry_doctor_run_errors_total", **TARGET) or 0) >= 1, "a blind run")
        stop(process)
    assert "connection refused" in log.read_text()
    for text in (scrape.text, log.read_text()):
        assert "pw-4711" not in text and "alice" not in text


def test_serve_puts_no_secret_in_metrics_or_logs(tmp_path: Path) -> None:
    secrets = ["kV2rXl0wq7cJ3oT0y2m4pQJ1bGZ0c2VjcmV0LXZhbHVl"]  # broken dump's HTTP secret
    assert secrets[0] in (CLUSTERS / "broken" / "registry.yaml").read_text()
    port, log = free_port(), tmp_path / "serve.log"
    args = serve_command("--listen", f"127.0.0.1:{port}", "--interval", "1s",
                         "--from-dir", str(CLUSTERS / "broken"))
    with server(args, port, log, env=ENV) as process:
        scrape = scrape_until(f"http://127.0.0.1:{port}", lambda s: (
            s.value("registry_doctor_runs_total", **TARGET) or 0) >= 2, "two runs")
        stop(process)
    for secret in secrets:
        assert secret not in scrape.text and secret not in log.read_text()


@pytest.mark.parametrize(("flags", "message"), [
    (["--interval", "0s"], "--interval '0s': must be at least 1s"),
    (["--interval", "soon"], "--interval 'soon': not a duration"),
    (["--listen", "localhost"], "--listen 'localhost': expected HOST:PORT"),
    (["--listen", "127.0.0.1:70000"], "--listen '127.0.0.1:70000': expected HOST:PORT"),
    (["--check", "no-such-check"], "unknown check id: no-such-check"),
    (["--from-dir", "/nonexistent"], "--from-dir /nonexistent: not a readable directory"),
])
def test_serve_usage_errors_name_the_flag(flags: list[str], message: str) -> None:
    done = subprocess.run(serve_command(*flags), capture_output=True, text=True, env=ENV,
                          timeout=60, check=False)
    assert done.returncode == 64, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_serve_exits_71_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(serve_command("--listen", f"127.0.0.1:{port}", "--from-dir",
                                            str(CLUSTERS / "broken")),
                              capture_output=True, text=True, env=ENV, timeout=60, check=False)
    assert done.returncode == 71
    line = json.loads(done.stderr.splitlines()[-1])
    assert line["message"] == "cannot listen" and line["listen"] == f"127.0.0.1:{port}"
    assert "Address already in use" in line["error"]


def test_interval_and_listen_parsing() -> None:
    from registry_doctor.exporter.daemon import parse_interval, parse_listen

    assert [parse_interval(t) for t in ("60s", "5m", "1h30m", "90", "1.5s", " 2m ")] == \
        [60, 300, 5400, 90, 1.5, 120]
    assert parse_listen("0.0.0.0:9709") == ("0.0.0.0", 9709)
    assert parse_listen(":9709") == ("0.0.0.0", 9709)
    assert parse_listen("[::1]:9709") == ("::1", 9709)


def test_serve_listens_on_ipv6_loopback(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    args = serve_command("--listen", f"[::1]:{port}", "--from-dir", str(CLUSTERS / "broken"))
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=ENV)
    try:
        answer = poll(lambda: http_get(f"http://[::1]:{port}/healthz")
                      if process.poll() is None else "exited", "an answer on [::1]")
        assert answer[:2] == (200, "ok\n"), log.read_text()
    finally:
        stop(process)


class _BrokenCollector:
    def collect(self) -> Iterator[object]:
        raise RuntimeError("collector bug")


def test_a_rendering_bug_answers_500_and_logs_json(json_logs: io.StringIO) -> None:
    import warnings

    with in_process(dump_run("broken")) as exporter:
        exporter.scheduler.run_once()
        exporter.server.registry.register(_BrokenCollector())
        assert exporter.get("/metrics")[0] == 500
        assert exporter.get("/healthz")[0] == 200
    warnings.warn("a library complains", UserWarning, stacklevel=1)
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    rendering = next(line for line in lines if line["message"] == "cannot render the metrics")
    assert rendering["level"] == "error" and "collector bug" in rendering["traceback"]
    assert any("a library complains" in line["message"] for line in lines)


def test_sigterm_lets_a_run_in_progress_finish(tmp_path: Path) -> None:
    """An API server that accepts connections and never answers holds the first run until
    --timeout; SIGTERM then stops the HTTP side at once and waits for that run."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        kubeconfig = _kubeconfig(tmp_path / "kubeconfig", silent.getsockname()[1])
        port, log = free_port(), tmp_path / "serve.log"
        args = serve_command("--listen", f"127.0.0.1:{port}", "--timeout", "10",
                             "--kubeconfig", str(kubeconfig))
        with server(args, port, log, env=ENV) as process:
            assert http_get(f"http://127.0.0.1:{port}/readyz")[0] == 503  # run 1 in progress
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0
    messages = [json.loads(line)["message"] for line in log.read_text().splitlines()]
    # The run ends at its deadline, blind (nothing answered): a failed run, then the stop.
    assert messages == ["serving", "stopping", "run failed; still serving the previous report",
                        "stopped"]


def test_target_labels_follow_where_the_run_found_the_registry() -> None:
    """The admin named no registry: the platform did, and the series say which it was."""
    found = Report(generated="2026-11-26T10:00:00+00:00", results=(), source={
        "type": "cluster", "namespace": "openshift-image-registry", "registry": "image-registry"})
    scheduler = Scheduler(lambda: found, 60, {"registry_namespace": "default",
                                              "registry": "docker-registry"})
    assert scheduler.run_once().labels == {"registry_namespace": "openshift-image-registry",
                                           "registry": "image-registry"}
    assert Scheduler(lambda: found, 60).run_once().labels == {}  # no target labels asked for
