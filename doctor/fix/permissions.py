"""The RBAC rules remediation needs: those of each planner (declared with `@planner(...)`) and
those of the machinery every applied run uses. `registry-doctor permissions` prints them; the
Helm chart's remediation Role is derived from that output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from doctor.fix.model import Permission

if TYPE_CHECKING:
    from checks import Check

# Changing the registry's or the console's workload (whichever kind it is).
PATCH_WORKLOAD = (
    Permission("apps.openshift.io", "deploymentconfigs", ("get", "patch"),
               "change the workload's DeploymentConfig"),
    Permission("apps", "deployments", ("get", "patch"), "change the workload's Deployment"),
    Permission("apps", "daemonsets", ("get", "patch"), "change the workload's DaemonSet"),
)
# Redeploying it and following the rollout.
REDEPLOY = (
    Permission("apps.openshift.io", "deploymentconfigs/instantiate", ("create",),
               "start a rollout (oc rollout latest)"),
    Permission("", "replicationcontrollers", ("get", "patch"),
               "follow a DeploymentConfig rollout; cancel it when it times out"),
    Permission("apps", "deployments", ("get", "patch"), "restart a Deployment "
               "(kubectl rollout restart) and follow its rollout"),
    Permission("apps", "daemonsets", ("get", "patch"), "restart a DaemonSet and follow it"),
    Permission("", "pods", ("list",), "wait until the old pods are gone"),
)
# Every run that applies something.
MACHINERY = (
    Permission("authorization.k8s.io", "selfsubjectaccessreviews", ("create",),
               "RBAC preflight of every planned write", cluster_scoped=True),
    Permission("coordination.k8s.io", "leases", ("get", "create", "update"),
               "lease registry-doctor: one run at a time"),
    Permission("", "secrets", ("get", "create", "update"),
               "secret registry-doctor-backups: backups, run journal, cooldowns"),
    Permission("", "events", ("create",), "an Event on each changed object"),
)


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
