"""Clusters for remediation tests: the broken example dump, variants of it, a registry console
with certificates, and `stand_in`, a check that judges only what a test needs (a fix that never
holds; an S3 registry whose configuration a person corrected, which the real s3-reachability
check cannot see without a live S3)."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry_doctor.doctor.check import Check, CheckContext
from registry_doctor.doctor.fix.lease import LEADER_ANNOTATION
from registry_doctor.doctor.fix.pemtext import segments
from registry_doctor.doctor.fix.plan import Planner
from registry_doctor.doctor.fix.planners.storage import plan_s3_reachability
from registry_doctor.doctor.model import CheckMeta, Result, Severity, Status
from registry_doctor.doctor.snapshot.dump import load_dump

if TYPE_CHECKING:
    from tests.kubefake import FakeKubeAPI

REPO = Path(__file__).resolve().parent.parent
BROKEN = REPO / "tests" / "fixtures" / "clusters" / "broken"
Obj = dict[str, Any]
CONSOLE_HOST = "registry-console-default.apps.example.com"


def broken() -> list[Obj]:
    """The broken example's registry: BestEffort, emptyDir, two replicas, sessionAffinity
    None (its console and other pods left out: tests add the console they need)."""
    return [o for o in load_dump(BROKEN).objects
            if o["metadata"]["name"].startswith("docker-registry")]


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def registry_dc(objects: list[Obj]) -> Obj:
    return find(objects, "DeploymentConfig", "docker-registry")


def as_deployment(objects: list[Obj], kind: str = "Deployment") -> list[Obj]:
    """The broken registry as a Deployment (or a DaemonSet or StatefulSet) instead of a
    DeploymentConfig."""
    dc = registry_dc(objects)
    spec = {"selector": {"matchLabels": dc["spec"]["selector"]},
            "template": dc["spec"]["template"]}
    if kind == "Deployment":
        spec["replicas"] = 2
        status = {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
    elif kind == "StatefulSet":
        spec.update(replicas=2, serviceName="docker-registry")
        status = {"replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
                  "currentRevision": "docker-registry-1", "updateRevision": "docker-registry-1"}
    else:
        status = {"desiredNumberScheduled": 2, "updatedNumberScheduled": 2,
                  "numberAvailable": 2}
    workload = {"apiVersion": "apps/v1", "kind": kind,
                "metadata": {"name": "docker-registry", "namespace": "default",
                             "generation": 1},
                "spec": spec, "status": {"observedGeneration": 1, **status}}
    return [workload if o is dc else o for o in objects]


def registry(kube_profile: str) -> list[Obj]:
    """The broken registry as the platform of an API profile runs it: a DeploymentConfig on
    OpenShift, a Deployment on plain Kubernetes."""
    return broken() if kube_profile.startswith("openshift") else as_deployment(broken())


def on_nfs(objects: list[Obj]) -> list[Obj]:
    """The registry's store on a ReadWriteMany claim bound to an NFS volume."""
    dc = registry_dc(objects)
    dc["spec"]["template"]["spec"]["volumes"] = [
        {"name": "registry-storage", "persistentVolumeClaim": {"claimName": "registry-nfs"}}]
    return [*objects, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "registry-nfs", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteMany"], "volumeName": "nfs-registry",
                 "resources": {"requests": {"storage": "20Gi"}}},
        "status": {"phase": "Bound", "accessModes": ["ReadWriteMany"]},
    }, {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "nfs-registry"},
        "spec": {"accessModes": ["ReadWriteMany"], "capacity": {"storage": "20Gi"},
                 "nfs": {"server": "nfs.example.com", "path": "/exports/registry"}},
    }]


# the registry console

def console(kube_url: str = f"https://{CONSOLE_HOST}", redirect_uris: tuple[str, ...] = (),
            cert: str | None = None) -> list[Obj]:
    """The registry-console template's objects (openshift/openshift-ansible
    roles/openshift_hosted_templates/files/v3.x/origin/registry-console.yaml), with its
    certificate secret holding `cert` when given."""
    labels = {"name": "registry-console"}
    container = {
        "name": "registry-console", "image": "docker.io/cockpit/kubernetes:latest",
        "ports": [{"containerPort": 9090, "protocol": "TCP"}],
        "env": [{"name": "OPENSHIFT_OAUTH_PROVIDER_URL", "value": "https://master:8443"},
                {"name": "OPENSHIFT_OAUTH_CLIENT_ID", "value": "cockpit-oauth-client"},
                {"name": "COCKPIT_KUBE_URL", "value": kube_url},
                {"name": "REGISTRY_ONLY", "value": "true"},
                {"name": "REGISTRY_HOST", "value": "registry.apps.example.com"}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
    }
    spec: Obj = {"containers": [container]}
    if cert is not None:
        container["volumeMounts"] = [{"mountPath": "/etc/cockpit/ws-certs.d",
                                      "name": "console-secret"}]
        spec["volumes"] = [{"name": "console-secret", "secret": {"secretName": "console-secret"}}]
    objects = [{
        "apiVersion": "apps.openshift.io/v1", "kind": "DeploymentConfig",
        "metadata": {"name": "registry-console", "namespace": "default", "generation": 2},
        "spec": {"replicas": 1, "selector": labels, "strategy": {"type": "Rolling"},
                 "template": {"metadata": {"labels": labels}, "spec": spec},
                 "triggers": [{"type": "ConfigChange"}]},
        "status": {"latestVersion": 2, "observedGeneration": 2},
    }, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "registry-console-2-q8xvd", "namespace": "default",
                     "labels": {**labels, "deployment": "registry-console-2"}},
        "spec": {"nodeName": "infra-node-1.example.com", "containers": [container]},
        "status": {"phase": "Running", "qosClass": "Burstable"},
    }, {
        "apiVersion": "route.openshift.io/v1", "kind": "Route",
        "metadata": {"name": "registry-console", "namespace": "default"},
        "spec": {"host": CONSOLE_HOST, "tls": {"termination": "passthrough"},
                 "to": {"kind": "Service", "name": "registry-console"}},
    }, {
        "apiVersion": "oauth.openshift.io/v1", "kind": "OAuthClient",
        "metadata": {"name": "cockpit-oauth-client"}, "redirectURIs": list(redirect_uris),
        "secret": "user8AhrQHqDybFVuZ9MpxfJkWzkzS1tLNH7oQnDsgCdJ9nW3pcTXcTs6aRUj4",
    }]
    if cert is not None:
        objects.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                        "metadata": {"name": "console-secret", "namespace": "default"},
                        "data": {"console.cert": base64.b64encode(cert.encode()).decode()}})
    return objects


def certificate_chain() -> tuple[str, str, str, str]:
    """Server certificate, intermediate, root (PEM) and the server's private key (PKCS#8)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def issue(name: str, issuer: tuple[Any, Any] | None, ca: bool) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        signer_name, signer_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(signer_name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=365))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        return builder.sign(signer_key, hashes.SHA256()), key

    root = issue("registry-doctor test root", None, True)
    intermediate = issue("registry-doctor test intermediate", root, True)
    server = issue(CONSOLE_HOST, intermediate, False)

    def pem(cert: Any) -> str:
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    key = server[1].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode()
    return pem(server[0]), pem(intermediate[0]), pem(root[0]), key


def chain_in_order(text: str) -> bool:
    """What Cockpit needs: the key's certificate first, each next one its issuer, key last."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    blocks, _ = segments(text)
    certs = [x509.load_der_x509_certificate(b.der or b"") for b in blocks
             if b.label == "CERTIFICATE"]
    if not blocks or not blocks[-1].is_key or not certs:
        return False
    key = serialization.load_der_private_key(blocks[-1].der or b"", password=None)
    if certs[0].public_key() != key.public_key():
        return False
    try:
        for child, issuer in itertools.pairwise(certs):
            child.verify_directly_issued_by(issuer)
    except Exception:
        return False
    return True


# stand-ins

def stand_in(check_id: str, kinds: tuple[str, ...], planner: Planner,
             problem: Callable[[CheckContext], str | None]) -> Check:
    meta = CheckMeta(check_id, f"stand-in for {check_id}", Severity.CRIT, kinds,
                     "see the planner", "a test stand-in judging only what its test needs")

    def evaluate(ctx: CheckContext) -> Result:
        found = problem(ctx)
        return ctx.failed(found) if found else ctx.result(Status.OK, "fine")

    return Check(meta, evaluate, planner)


def _s3(ctx: CheckContext) -> str | None:
    """Failing until a person marked the configuration corrected and the registry was
    redeployed since (its pods are no longer those of rollout 2)."""
    config = ctx.snapshot.named("configmaps", "registry-config") or {}
    corrected = (config.get("metadata") or {}).get("annotations", {}).get("corrected")
    redeployed = all(p["metadata"].get("labels", {}).get("deployment") != "docker-registry-2"
                     for p in ctx.snapshot.items("registry-pods"))
    return None if corrected and redeployed else "S3 unreachable"


S3_STAND_IN = stand_in("s3-reachability", ("deploymentconfigs", "configmaps", "registry-pods"),
                       plan_s3_reachability, _s3)


def edited(objects: list[Obj], kind: str, name: str, change: Callable[[Obj], None]) -> list[Obj]:
    """A copy of `objects` with `change` applied to one of them."""
    objects = copy.deepcopy(objects)
    change(find(objects, kind, name))
    return objects


# the run lock (doctor/fix/lease.py), as each API profile holds it

def lock_resource(api: FakeKubeAPI) -> str:
    """Where the run lock lives: a Lease where the server has them, else a ConfigMap."""
    return "configmaps" if api.profile.name == "openshift-3.11" else "leases"


def lock_record(api: FakeKubeAPI) -> Obj:
    """The run lock's LeaderElectionRecord, as a Lease's spec or the ConfigMap annotation."""
    obj = api.get_object(lock_resource(api), "default", "registry-doctor")
    assert obj is not None
    if obj["kind"] == "Lease":
        return obj["spec"]
    return json.loads(obj["metadata"]["annotations"][LEADER_ANNOTATION])


def held_lock(kube_profile: str, holder: str, renewed: dt.datetime) -> Obj:
    """The run lock held by another run, renewed at `renewed`."""
    if kube_profile == "openshift-3.11":
        record = {"holderIdentity": holder, "leaseDurationSeconds": 60,
                  "acquireTime": renewed.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%SZ"), "leaderTransitions": 0}
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "registry-doctor", "namespace": "default",
                             "annotations": {LEADER_ANNOTATION: json.dumps(record)}}}
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "registry-doctor", "namespace": "default"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 60,
                     "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}


def expire_lock(api: FakeKubeAPI) -> None:
    """Let a killed run's lock run out, as time would."""
    obj = api.get_object(lock_resource(api), "default", "registry-doctor")
    if obj is None:
        return
    record = lock_record(api)
    api.put_object(held_lock(api.profile.name, record["holderIdentity"],
                             dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)))
