"""A must-gather-style dump of a big cluster: the healthy fixture plus `pods` realistic pods
(about 2.7 kB of YAML each, as `oc get -o yaml` writes them) in `namespaces` namespaces, one
`namespaces/<ns>/core/pods.yaml` PodList per namespace as must-gather lays them out.

`python bench/big_dump.py OUT [PODS] [NAMESPACES]` writes one by hand.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
BASE = REPO / "tests" / "fixtures" / "clusters" / "healthy"
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def realistic_pod(namespace: str, index: int) -> dict[str, Any]:
    """A Deployment's pod with what the API server fills in: owner, probes, mounts, status."""
    app = f"app-{index % 50}"
    name = f"{app}-7d9f8c6b5-{index:05d}"
    started = "2024-03-01T10:00:00Z"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": namespace, "generateName": f"{app}-7d9f8c6b5-",
            "uid": f"0f3c2a52-7d1e-11e9-9d3e-{index:012d}", "resourceVersion": str(1000 + index),
            "creationTimestamp": started,
            "labels": {"app": app, "pod-template-hash": "7d9f8c6b5", "tier": "backend"},
            "annotations": {"openshift.io/scc": "restricted",
                            "k8s.v1.cni.cncf.io/network-status": "[{\"name\": \"pod-network\"}]"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": f"{app}-7d9f8c6b5", "uid": f"aa-{index}",
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "nodeName": f"node-{index % 40}", "serviceAccountName": "default",
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName":
            "default-scheduler", "terminationGracePeriodSeconds": 30,
            "securityContext": {"fsGroup": 1000680000, "seLinuxOptions": {"level": "s0:c26,c5"}},
            "containers": [{
                "name": "app", "image": f"quay.io/example/{app}:1.4.2",
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 8080, "protocol": "TCP", "name": "http"}],
                "env": [{"name": "LOG_LEVEL", "value": "info"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {
                            "apiVersion": "v1", "fieldPath": "metadata.name"}}}],
                "resources": {"requests": {"cpu": "10m", "memory": "64Mi"},
                              "limits": {"cpu": "500m", "memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080,
                                               "scheme": "HTTP"},
                                   "periodSeconds": 10, "timeoutSeconds": 1,
                                   "successThreshold": 1, "failureThreshold": 3},
                "volumeMounts": [{"name": "config", "mountPath": "/etc/app"},
                                 {"name": "default-token-x7k2p", "readOnly": True,
                                  "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }],
            "volumes": [{"name": "config", "configMap": {"name": f"{app}-config",
                                                         "defaultMode": 420}},
                        {"name": "default-token-x7k2p", "secret": {
                            "secretName": "default-token-x7k2p", "defaultMode": 420}}],
        },
        "status": {
            "phase": "Running", "qosClass": "Burstable", "hostIP": f"10.0.{index % 40}.1",
            "podIP": f"10.128.{index // 250 % 250}.{index % 250}", "startTime": started,
            "conditions": [{"type": t, "status": "True", "lastProbeTime": None,
                            "lastTransitionTime": started}
                           for t in ("Ready", "PodScheduled")],
            "containerStatuses": [{
                "name": "app", "ready": True, "restartCount": 0, "started": True,
                "image": f"quay.io/example/{app}:1.4.2",
                "imageID": f"quay.io/example/{app}@sha256:{'ab' * 32}",
                "containerID": f"cri-o://{index:064d}",
                "state": {"running": {"startedAt": started}}, "lastState": {},
            }],
        },
    }


def write_big_dump(out: Path, pods: int = 50_000, namespaces: int = 2_000) -> Path:
    """Write the dump to `out` (replaced if present); answers `out`."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(BASE, out)
    names = [f"project-{i}" for i in range(namespaces)]
    for number, namespace in enumerate(names):
        folder = out / "namespaces" / namespace / "core"
        folder.mkdir(parents=True)
        items = [realistic_pod(namespace, i) for i in range(number, pods, namespaces)]
        (folder / "pods.yaml").write_text(yaml.dump(
            {"apiVersion": "v1", "kind": "PodList", "items": items, "metadata": {}},
            Dumper=_Dumper, sort_keys=False))
    return out


if __name__ == "__main__":
    arguments = sys.argv[1:]
    target = write_big_dump(Path(arguments[0]), *(int(a) for a in arguments[1:3]))
    print(f"wrote {target}")
