"""Hung probes: endpoints that accept TCP and never answer (a listening socket nobody reads on
127.0.0.1/8). A full `check` with probes on must still end within --probe-timeout + 1 s.

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
from doctor.snapshot.dump import load_dump
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


SCENARIOS = (
    Scenario("registry (canary)", ("--canary",), _hung_registry),
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
    return figures
