"""Hung probes: endpoints that accept TCP and never answer (a listening socket nobody reads on
127.0.0.1/8). A full `check` with probes on must still end within --probe-timeout + 1 s; with
the API server itself hanging, within --timeout + 1 s.

Each scenario rewrites the healthy fixture so one probe's endpoints are hung listeners, and
runs `registry-doctor check` as a process against the fake API server holding those objects.
"""

from __future__ import annotations

import copy
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Figure, cli, run_child
from registry_doctor.doctor.snapshot.dump import load_dump
from tests.kubefake import FakeKubeAPI

PROBE_TIMEOUT = 2.0
HEALTHY = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "clusters" / "healthy"
Objects = list[dict[str, Any]]


@dataclass(frozen=True)
class Scenario:
    name: str
    flags: tuple[str, ...]  # what the check needs to run this probe
    hang: Callable[[Objects, Callable[[str, int], int]], Objects]  # objects -> hung objects


@contextmanager
def hung_listeners() -> Iterator[Callable[[str, int], int]]:
    """`listen(ip, port)`: a socket on ip:port (port 0: any) whose connections the kernel
    accepts and nobody ever reads or answers; its port."""
    with ExitStack() as stack:
        def listen(ip: str, port: int = 0) -> int:
            sock = stack.enter_context(socket.create_server((ip, port), backlog=128))
            return sock.getsockname()[1]

        yield listen


def _named(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def _hung_registry(objects: Objects, listen: Callable[[str, int], int]) -> Objects:
    """The registry Service, its one endpoint and its Route all lead to hung sockets."""
    objects = copy.deepcopy(objects)
    service_ip, pod_ip, route_ip = "127.0.0.61", "127.0.0.62", "127.0.0.63"
    service = _named(objects, "Service", "docker-registry")
    service["spec"]["clusterIP"] = service_ip
    service["spec"]["ports"][0]["port"] = listen(service_ip, 0)
    pod_port = listen(pod_ip, 0)
    objects.append({"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": "docker-registry", "namespace": "default"},
                    "subsets": [{"addresses": [{"ip": pod_ip}],
                                 "ports": [{"name": "5000-tcp", "port": pod_port}]}]})
    listen(route_ip, 443)  # a passthrough Route is reached on 443
    _named(objects, "Route", "docker-registry")["spec"]["host"] = route_ip
    return objects


def _container(objects: Objects, workload: str) -> dict[str, Any]:
    return _named(objects, "DeploymentConfig", workload)["spec"]["template"]["spec"][
        "containers"][0]


def _hung_s3(objects: Objects, listen: Callable[[str, int], int]) -> Objects:
    """The registry stores in S3 (REGISTRY_STORAGE_* env) at a hung regionendpoint."""
    objects = copy.deepcopy(objects)
    endpoint = f"http://127.0.0.64:{listen('127.0.0.64', 0)}"
    _container(objects, "docker-registry")["env"] += [
        {"name": name, "value": value} for name, value in (
            ("REGISTRY_STORAGE", "s3"), ("REGISTRY_STORAGE_S3_REGIONENDPOINT", endpoint),
            ("REGISTRY_STORAGE_S3_REGION", "us-east-1"),
            ("REGISTRY_STORAGE_S3_BUCKET", "images"),
            ("REGISTRY_STORAGE_S3_ACCESSKEY", "AKIABENCHMARK"),
            ("REGISTRY_STORAGE_S3_SECRETKEY", "benchmark"))]
    return objects


def _hung_oauth(objects: Objects, listen: Callable[[str, int], int]) -> Objects:
    """The console's OAuth provider (the master) accepts TCP and never answers."""
    objects = copy.deepcopy(objects)
    for variable in _container(objects, "registry-console")["env"]:
        if variable["name"] == "OPENSHIFT_OAUTH_PROVIDER_URL":
            variable["value"] = f"https://127.0.0.65:{listen('127.0.0.65', 0)}"
    return objects


def _hung_console(objects: Objects, listen: Callable[[str, int], int]) -> Objects:
    """The console's Route leads to a hung TLS endpoint."""
    objects = copy.deepcopy(objects)
    listen("127.0.0.66", 443)
    _named(objects, "Route", "registry-console")["spec"]["host"] = "127.0.0.66"
    return objects


def _everything(objects: Objects, listen: Callable[[str, int], int]) -> Objects:
    for hang in (_hung_registry, _hung_s3, _hung_oauth, _hung_console):
        objects = hang(objects, listen)
    return objects


SCENARIOS = (
    Scenario("registry (canary)", ("--canary",), _hung_registry),
    Scenario("S3", (), _hung_s3),
    Scenario("OAuth", ("--oauth-probe",), _hung_oauth),
    Scenario("console route", (), _hung_console),
    Scenario("registry, S3, OAuth and console", ("--canary", "--oauth-probe"), _everything),
)


def measure() -> list[Figure]:
    figures = []
    base = load_dump(HEALTHY)
    for scenario in SCENARIOS:
        with hung_listeners() as listen, tempfile.TemporaryDirectory() as folder, \
                FakeKubeAPI(objects=scenario.hang(base.objects, listen), logs=base.logs) as api:
            kubeconfig = api.write_kubeconfig(Path(folder) / "kubeconfig")
            run = run_child(cli("check", "--kubeconfig", str(kubeconfig), "--probes",
                                "--probe-timeout", f"{PROBE_TIMEOUT:g}", "-o", "json",
                                *scenario.flags), timeout=60)
        if run.returncode not in (0, 1, 2, 3):
            raise RuntimeError(f"{scenario.name}: check exited {run.returncode}: "
                               f"{run.stderr[-2000:]}")
        limit = PROBE_TIMEOUT + 1
        figures.append(Figure(f"check with hung {scenario.name} endpoints, "
                              f"--probe-timeout {PROBE_TIMEOUT:g}",
                              f"{run.wall_seconds:.2f} s (exit {run.returncode})",
                              f"<= {limit:g} s", run.wall_seconds <= limit))
    return [*figures, _api_hang()]


API_TIMEOUT = 2.0


def _api_hang() -> Figure:
    """The API server itself hangs on pods: the run's --timeout bounds the whole check."""
    base = load_dump(HEALTHY)
    with tempfile.TemporaryDirectory() as folder, \
            FakeKubeAPI(objects=base.objects, logs=base.logs) as api:
        api.inject("hang", resource="pods")
        run = run_child(cli("check", "--kubeconfig", str(api.write_kubeconfig(
            Path(folder) / "kubeconfig")), "--no-probes", "--timeout", f"{API_TIMEOUT:g}",
            "-o", "json"), timeout=60)
    limit = API_TIMEOUT + 1
    return Figure(f"check with the API server hanging on pods, --timeout {API_TIMEOUT:g}",
                  f"{run.wall_seconds:.2f} s (exit {run.returncode})", f"<= {limit:g} s",
                  run.wall_seconds <= limit)
