"""The RBAC rules remediation needs: those of each planner (declared with `@planner(...)`) and
those of the machinery every applied run uses. `registry-doctor permissions` prints them; the
Helm chart's remediation Role is derived from that output."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry_doctor.doctor.config import CLUSTER_OPERATOR, CONSOLE, OPERATOR_CONFIG, REGISTRY
from registry_doctor.doctor.fix.journal import SECRET_NAME
from registry_doctor.doctor.fix.lease import LEASE_NAME
from registry_doctor.doctor.fix.model import Permission
from registry_doctor.doctor.generated import sync
from registry_doctor.doctor.snapshot.kinds import CLUSTER_OPERATOR_NAME, OPERATOR_CONFIG_NAME

if TYPE_CHECKING:
    from registry_doctor.doctor.check import Check

WORKLOADS = (REGISTRY, CONSOLE)
# Changing the registry's or the console's workload (whichever kind it is).
PATCH_WORKLOAD = (
    Permission("apps.openshift.io", "deploymentconfigs", ("get", "patch"),
               "change the workload's DeploymentConfig", names=WORKLOADS),
    Permission("apps", "deployments", ("get", "patch"), "change the workload's Deployment",
               names=WORKLOADS),
    Permission("apps", "daemonsets", ("get", "patch"), "change the workload's DaemonSet",
               names=WORKLOADS),
    Permission("apps", "statefulsets", ("get", "patch"), "change the registry's StatefulSet",
               names=(REGISTRY,), platforms=("kubernetes",)),
)
# Redeploying it and following the rollout (a rollout's ReplicationControllers and pods have
# generated names: not restricted by name).
REDEPLOY = (
    Permission("apps.openshift.io", "deploymentconfigs/instantiate", ("create",),
               "start a rollout (oc rollout latest)", names=WORKLOADS),
    Permission("", "replicationcontrollers", ("get", "patch"),
               "follow a DeploymentConfig rollout; cancel it when it times out",
               openshift=True),
    Permission("apps", "deployments", ("get", "patch"), "restart a Deployment "
               "(kubectl rollout restart) and follow its rollout", names=WORKLOADS),
    Permission("apps", "daemonsets", ("get", "patch"), "restart a DaemonSet and follow it",
               names=WORKLOADS),
    Permission("apps", "statefulsets", ("get", "patch"), "restart the registry's StatefulSet "
               "(kubectl rollout restart) and follow its rollout", names=(REGISTRY,),
               platforms=("kubernetes",)),
    Permission("", "pods", ("list",), "wait until the old pods are gone"),
)
# OpenShift 4: the image registry operator's Config CR, where fixes are made (the operator
# reverts changes to the Deployment it writes).
PATCH_OPERATOR_CONFIG = Permission(
    "imageregistry.operator.openshift.io", "configs", ("get", "patch"),
    "OpenShift 4: change the registry through the operator's Config CR", cluster_scoped=True,
    names=(OPERATOR_CONFIG,), platforms=("openshift4",))
BACKUPS, LOCK = "backups", "lock"
# Objects whose names are fixed: registry-doctor's own, and OpenShift 4's image registry
# operator singletons (doctor.snapshot.kinds).
FIXED_NAMES = {BACKUPS: (SECRET_NAME,), LOCK: (LEASE_NAME,),
               OPERATOR_CONFIG: (OPERATOR_CONFIG_NAME,), CLUSTER_OPERATOR: (CLUSTER_OPERATOR_NAME,)}
# The run lock: one of these, as the server has coordination.k8s.io/v1 or not (doctor/fix/lease.py).
LOCKS = (
    Permission("coordination.k8s.io", "leases", ("get", "update"),
               "lock registry-doctor, one run at a time: a Lease where the server has them",
               names=(LOCK,)),
    Permission("coordination.k8s.io", "leases", ("create",), "create lease registry-doctor "
               "the first time (RBAC cannot restrict a create by name)"),
    Permission("", "configmaps", ("get", "update"),
               "lock registry-doctor as a ConfigMap annotation where the server has no Lease "
               "(OpenShift 3.11, Kubernetes before 1.14)", names=(LOCK,)),
    Permission("", "configmaps", ("create",), "create configmap registry-doctor the first "
               "time (RBAC cannot restrict a create by name)"),
)
# Every run that applies something.
MACHINERY = (
    Permission("authorization.k8s.io", "selfsubjectaccessreviews", ("create",),
               "RBAC preflight of every planned write", cluster_scoped=True),
    *LOCKS,
    Permission("", "secrets", ("get", "update"),
               "secret registry-doctor-backups: backups, run journal, cooldowns",
               names=(BACKUPS,)),
    Permission("", "secrets", ("create",), "create secret registry-doctor-backups the first "
               "time (RBAC cannot restrict a create by name)"),
    Permission("", "events", ("create",), "an Event on each changed object"),
)


def machinery_names(permission: Permission) -> tuple[str | None, ...]:
    """The objects of registry-doctor's own a machinery permission is for (None: any)."""
    return tuple(n for s in permission.names for n in FIXED_NAMES[s]) or (None,)


def permission_rows(checks: Sequence[Check]) -> list[dict[str, Any]]:
    """One row per rule: who needs it (a check id, or `machinery`), group, resource, verbs."""
    rows = [{"neededBy": "machinery", **p.to_dict()} for p in MACHINERY]
    for check in checks:
        if check.plan is not None:
            rows.extend({"neededBy": check.meta.id, **p.to_dict()} for p in check.plan.needs)
    return rows


def merged_rules(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as Role rules: one per (group, resource, scope), verbs united, sorted."""
    rules: dict[tuple[str, str, bool], set[str]] = {}
    for row in rows:
        key = (row["apiGroup"], row["resource"], row["clusterScoped"])
        rules.setdefault(key, set()).update(row["verbs"])
    return [{"apiGroups": [group], "resources": [resource], "verbs": sorted(verbs),
             "clusterScoped": scoped}
            for (group, resource, scoped), verbs in sorted(rules.items())]


BEGIN = "<!-- generated by `python -m registry_doctor.doctor.fix.permissions`: do not edit -->"
END = "<!-- end of generated permissions -->"
DOC = Path(__file__).resolve().parents[2] / "docs" / "remediation.md"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [BEGIN, "| needed by | apiGroup | resource | verbs | scope | why |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        group = row["apiGroup"] or '""'
        scope = "cluster" if row["clusterScoped"] else "namespace"
        lines.append(f"| {row['neededBy']} | `{group}` | `{row['resource']}` | "
                     f"{', '.join(row['verbs'])} | {scope} | {row['why']} |")
    return "\n".join([*lines, END])


def main(argv: list[str]) -> int:
    """Rewrite the table in docs/remediation.md (`--check`: only say whether it is stale)."""
    from registry_doctor.checks import all_checks

    before, _, rest = DOC.read_text().partition(BEGIN)
    _, _, after = rest.partition(END)
    wanted = before + markdown(permission_rows(list(all_checks().values()))) + after
    return sync({DOC: wanted}, argv, "python -m registry_doctor.doctor.fix.permissions")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
