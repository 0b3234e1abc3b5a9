"""`registry-doctor serve` against each API version profile of the fake: an OpenShift 3.11
master and a current Kubernetes serve the broken registry (a DeploymentConfig there, a
Deployment here) and the exporter judges it the same way."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from tests.exporting import REPO, TARGET, scrape_until, serve_command
from tests.fixcluster import registry
from tests.kubefake import FakeKubeAPI
from tests.kubefake.pytest_plugin import EVERY_PROFILE
from tests.tools import free_port, server

Live = Callable[[list[dict]], tuple[FakeKubeAPI, Path]]


@EVERY_PROFILE
def test_serve_judges_the_registry_on_each_server(fake_cluster: Live, kube_profile: str,
                                                  tmp_path: Path) -> None:
    api, kubeconfig = fake_cluster(registry(kube_profile))
    port, log = free_port(), tmp_path / "serve.log"
    args = serve_command("--listen", f"127.0.0.1:{port}", "--interval", "1h",
                         "--kubeconfig", str(kubeconfig), "--no-probes")
    with server(args, port, log, env={**os.environ, "PYTHONPATH": str(REPO)}) as process:
        scrape = scrape_until(f"http://127.0.0.1:{port}",
                              lambda s: s.value("registry_doctor_up", **TARGET) == 1,
                              "a first run")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    assert scrape.statuses() == {"besteffort-qos": "crit"}
    workload = "deploymentconfigs" if api.profile.openshift_groups else "deployments"
    assert any(r.resource == workload and r.status == 200 for r in api.requests)
    assert not [r for r in api.requests if r.method != "GET"]  # the exporter only reads
