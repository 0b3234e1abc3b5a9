"""registry-operator: OpenShift 4's image registry operator runs a registry, and says it works.

On OpenShift 4 the registry exists only as the cluster-image-registry-operator renders it from
its Config CR `configs.imageregistry.operator.openshift.io/cluster` (openshift/api
`imageregistry/v1/types.go`): `spec.managementState` Removed means no registry at all (the
bootstrap default where the platform offers no shared storage: bare metal, vSphere, None,
Nutanix, ...: `pkg/storage/storage.go`, `pkg/operator/bootstrap.go`), Unmanaged that the
operator stops reconciling it, and a spec without storage that it deploys nothing. The
operator reports in `status.conditions` (`pkg/operator/status.go`: Available, Progressing,
Degraded and the storage conditions) and, summed up with the image pruner's, in ClusterOperator
`image-registry` (`pkg/resource/clusteroperator.go`: reason `<prefix><reason>` joined by `::`).
"""

from __future__ import annotations

from typing import Any

from registry_doctor.doctor.check import CheckContext, NotEvaluable
from registry_doctor.doctor.findings import Finding, verdict
from registry_doctor.doctor.model import CheckMeta, Resource, Result, Severity, Status
from registry_doctor.doctor.snapshot.kinds import CLUSTER_OPERATOR_NAME, OPERATOR_CONFIG_NAME
from registry_doctor.doctor.workload import as_dict, as_list

META = CheckMeta(
    id="registry-operator",
    title="The image registry operator runs the registry",
    severity=Severity.CRIT,
    kinds=("registry-operator-config", "registry-clusteroperator", "registry-imagepruner"),
    platforms=("openshift4",),
    platform_note="the image registry operator is OpenShift 4's",
    description=(
        "Reads the operator's Config CR (configs.imageregistry.operator.openshift.io/cluster), "
        "ClusterOperator image-registry and the image pruner. Crit when spec.managementState is "
        "Removed (no registry: builds and image streams that push to or pull from it fail; "
        "Removed is the bootstrap default on bare metal, vSphere and other platforms without "
        "shared storage), when a Managed registry has no storage configured (spec.storage "
        "names no emptyDir, pvc, s3, gcs, swift, azure, ibmcos or oss), or when the Config or "
        "the ClusterOperator reports Available=False or Degraded=True (their reasons and "
        "messages quoted). Warn when it is Unmanaged (changes to the Config are not "
        "reconciled, so neither they nor registry-doctor's fixes through it roll out), when "
        "the Config's other *Degraded conditions are True, and when the image pruner's last "
        "job failed. Ok otherwise."
    ),
    remediation=(
        "Managed with storage: `$cli patch $owner --type merge -p "
        "'{\"spec\":{\"managementState\":\"Managed\"}}'` and configure `spec.storage` (a "
        "claim: `{\"spec\":{\"storage\":{\"pvc\":{\"claim\":\"\"}}}}` lets the operator create "
        "a ReadWriteMany one; non-production only: `{\"spec\":{\"storage\":{\"emptyDir\":{}}}}`). "
        "For Degraded or Available=False, follow the quoted reason: `$cli get $owner -o yaml`, "
        "`$cli get clusteroperator image-registry -o yaml`, and the operator's log "
        "(`$cli logs -n $namespace deployment/cluster-image-registry-operator`)."
    ),
)

# spec.storage keys that configure a store (openshift/api ImageRegistryConfigStorage).
STORAGE_DRIVERS = ("emptyDir", "pvc", "s3", "gcs", "swift", "azure", "ibmcos", "oss")
REMOVED_EFFECT = ("the operator runs no registry: builds and image streams that push to or pull "
                  "from the integrated registry fail")
CLUSTER_OPERATOR = f"clusteroperator/{CLUSTER_OPERATOR_NAME}"


def evaluate(ctx: CheckContext) -> Result:
    owner = ctx.installation.owner
    config = ctx.snapshot.named("registry-operator-config", OPERATOR_CONFIG_NAME)
    if config is None:
        raise NotEvaluable(f"{owner} not found: the image registry operator has not "
                           "bootstrapped its configuration (or this is not its cluster)")
    spec = as_dict(config.get("spec"))
    state = str(spec.get("managementState") or "Managed")
    findings = [*_management(owner, state, spec), *_conditions(owner, config),
                *_cluster_operator(ctx), *_pruner(ctx)]
    resources = [Resource("Config", OPERATOR_CONFIG_NAME),
                 Resource("ClusterOperator", CLUSTER_OPERATOR_NAME)]
    return verdict(ctx, findings, f"the operator manages the registry ({owner} "
                   f"managementState={state}) and reports it Available", resources)


def _management(owner: str, state: str, spec: dict[str, Any]) -> list[Finding]:
    line = f"{owner} spec.managementState={state}"
    if state == "Removed":
        return [Finding(Status.CRIT, f"{line}: {REMOVED_EFFECT}; Removed is the bootstrap "
                        "default on bare metal, vSphere and other platforms without shared "
                        "storage, until storage is configured and the state set Managed")]
    if state == "Unmanaged":
        return [Finding(Status.WARN, f"{line}: the operator no longer reconciles the registry: "
                        "changes to its spec (storage, replicas, resources) do not roll out")]
    storage = as_dict(spec.get("storage"))
    drivers = [d for d in STORAGE_DRIVERS if d in storage]
    if not drivers:
        return [Finding(Status.OK, line), Finding(
            Status.CRIT, f"{owner} spec.storage configures no storage "
            f"({', '.join(STORAGE_DRIVERS)}): the operator deploys no registry until one is")]
    return [Finding(Status.OK, f"{line}, spec.storage: {', '.join(drivers)}")]


def _conditions(owner: str, config: dict[str, Any]) -> list[Finding]:
    findings = []
    for condition in map(as_dict, as_list(as_dict(config.get("status")).get("conditions"))):
        kind, status = str(condition.get("type")), str(condition.get("status"))
        line = f"{owner} status.conditions {_quoted(condition)}"
        if (kind == "Available" and status == "False") or (kind == "Degraded" and
                                                           status == "True"):
            findings.append(Finding(Status.CRIT, line))
        elif kind.endswith("Degraded") and status == "True":
            findings.append(Finding(Status.WARN, line))
        elif kind in ("Available", "Progressing") or (kind == "StorageExists"
                                                      and status != "True"):
            findings.append(Finding(Status.OK, line))
    return findings


def _cluster_operator(ctx: CheckContext) -> list[Finding]:
    operator = ctx.snapshot.named("registry-clusteroperator", CLUSTER_OPERATOR_NAME)
    if operator is None:
        return [Finding(Status.OK, f"{CLUSTER_OPERATOR} not found")]
    findings = []
    for condition in map(as_dict, as_list(as_dict(operator.get("status")).get("conditions"))):
        kind, status = condition.get("type"), condition.get("status")
        failing = (kind == "Available" and status == "False") or \
            (kind == "Degraded" and status == "True")
        if failing or kind == "Available":
            findings.append(Finding(Status.CRIT if failing else Status.OK,
                                    f"{CLUSTER_OPERATOR} status.conditions {_quoted(condition)}"))
    return findings


def _pruner(ctx: CheckContext) -> list[Finding]:
    pruner = ctx.snapshot.named("registry-imagepruner", OPERATOR_CONFIG_NAME)
    conditions = as_list(as_dict((pruner or {}).get("status")).get("conditions"))
    return [Finding(Status.WARN, f"imagepruner/cluster status.conditions {_quoted(c)}: images "
                    "are not pruned and the registry's storage keeps growing")
            for c in map(as_dict, conditions)
            if c.get("type") == "Failed" and c.get("status") == "True"]


def _quoted(condition: dict[str, Any]) -> str:
    """`Degraded=True reason=Unavailable: "message"`, as the operator wrote it."""
    text = f"{condition.get('type')}={condition.get('status')}"
    if condition.get("reason"):
        text += f" reason={condition['reason']}"
    message = " ".join(str(condition.get("message") or "").split())
    return text + (f": \"{message}\"" if message else "")
