"""Synthetic clusters for benchmarks: a real registry fixture plus many unrelated objects.

The registry and console objects come from tests/fixtures/clusters/<base>; the filler is what a
busy cluster holds elsewhere (pods, namespaces, secrets) and what a well-scoped tool never reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry_doctor.doctor.snapshot.dump import load_dump

REPO = Path(__file__).resolve().parent.parent


def _pod(namespace: str, index: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"app-{index}", "namespace": namespace,
                     "labels": {"app": f"app-{index % 50}"}},
        "spec": {"nodeName": f"node-{index % 40}",
                 "containers": [{"name": "app", "image": "quay.io/example/app:1",
                                 "resources": {"requests": {"cpu": "10m"}}}]},
        "status": {"phase": "Running", "qosClass": "Burstable"},
    }


def _secret(namespace: str, index: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": f"secret-{index}", "namespace": namespace},
            "data": {"token": "c2VjcmV0LXZhbHVlLWZvci1iZW5jaG1hcmtz"}}


def synthetic_cluster(pods: int, namespaces: int, secrets: int,
                      base: str = "healthy") -> tuple[list[dict[str, Any]], dict]:
    """Objects and logs: the base fixture plus filler spread over `namespaces` namespaces."""
    dump = load_dump(REPO / "tests" / "fixtures" / "clusters" / base)
    names = [f"project-{i}" for i in range(namespaces)]
    objects = list(dump.objects)
    objects += [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                for n in ["default", *names]]
    objects += [_pod(names[i % namespaces], i) for i in range(pods)]
    objects += [_secret(names[i % namespaces], i) for i in range(secrets)]
    return objects, dump.logs
