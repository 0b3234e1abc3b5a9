"""registry-running: the registry is actually up and serving.

Configuration tells what should happen; this check reads what does (doctor/running.py): the
registry pods' status, the events about its objects, its latest deployment, its Service's
Endpoints and its pods' log tails, the previous container's included.
"""

from __future__ import annotations

from registry_doctor.doctor.check import CheckContext
from registry_doctor.doctor.known_issues import issues
from registry_doctor.doctor.model import CheckMeta, Result, Severity
from registry_doctor.doctor.running import (
    FAILED_CREATE,
    FAILED_SCHEDULING,
    IMAGE_PULL,
    OOM_KILLED,
    UNHEALTHY,
    Cause,
    Subject,
    judge,
)
from registry_doctor.doctor.workload import WORKLOAD_KINDS

META = CheckMeta(
    id="registry-running",
    title="The registry is up and serving",
    severity=Severity.CRIT,
    kinds=(*WORKLOAD_KINDS, "registry-pods", "registry-replicationcontrollers",
           "registry-replicasets", "registry-events", "services", "endpoints", "registry-logs"),
    description=(
        "Desired against ready registry pods; for each pod that is not ready, or that "
        "restarted recently and repeatedly, its container state (waiting reason such as "
        "CrashLoopBackOff or ImagePullBackOff, last termination such as OOMKilled with its "
        "exit code, restart count), the warning events about it (FailedMount, "
        "FailedAttachVolume with Multi-Attach, FailedScheduling, FailedCreate, BackOff, "
        "Unhealthy) and the log lines of known causes, from its log and, for a container that "
        "restarted, from the previous container's log (`panic:`, `permission denied`, "
        "`read-only file system`, `no space left on device`, storage driver health check "
        "failures, S3 error codes such as AccessDenied, InvalidAccessKeyId, "
        "SignatureDoesNotMatch, NoSuchBucket, RequestTimeTooSkewed and SlowDown, `fatal error: "
        "runtime: out of memory`, `cannot allocate memory`), each line quoted with the check "
        "that owns its cause. Also the latest deployment (the DeploymentConfig's latest "
        "ReplicationController in phase Failed and its events, the Deployment's newest "
        "ReplicaSet's events such as FailedCreate, or a Progressing=False condition with "
        "ProgressDeadlineExceeded) and the registry Service's Endpoints. Crit when no "
        "registry pod is ready, the Service has no "
        "ready address or the latest deployment failed; warn when some pods are not ready, "
        "fewer pods exist than desired, or restarts are recent (the last one finished within "
        "an hour of the newest event about the registry) and repeated (3 or more); ok "
        "otherwise. Restarts older than the events the API server keeps are history, not a "
        "finding."
    ),
    remediation=(
        "Follow the cause named for each pod and the check that owns it; then watch the "
        "rollout: `$cli get pods -n $namespace -w` and "
        "`$cli describe $registry -n $namespace`. For a failed deployment, read the deployer "
        "pod's log and redeploy once the cause is fixed: "
        "`$cli rollout latest $registry -n $namespace`."
    ),
    platform_remediation={
        "openshift4": (
            "Follow the cause named for each pod and the check that owns it; the operator's "
            "own view: `$cli get clusteroperator image-registry -o yaml` and "
            "`$cli get $owner -o yaml` (status.conditions; see registry-operator). Watch the "
            "rollout: `$cli get pods -n $namespace -w`, `$cli describe $registry -n "
            "$namespace`."),
    },
)

# Log lines that say why the registry stops or fails, in the order their causes are named.
# The specific before the general: an S3 error code before the driver error wrapping it, both
# before the health check failure they cause.
LOG_ISSUES = issues(
    "registry-panic", "out-of-memory", "storage-full", "storage-read-only", "permission-denied",
    "s3-no-such-bucket", "s3-unknown-key", "s3-signature", "s3-access-denied", "s3-clock-skew",
    "s3-slow-down", "s3-driver-error", "storage-health-check")
# Status and event symptoms -> their most likely cause, before and after the log issues.
FIRST = (
    ("Multi-Attach", Cause("a volume attached to another node cannot be shared", "nfs-scaling")),
    OOM_KILLED,
)
THEN = (
    ("FailedMount", Cause("the store volume cannot be mounted", "nfs-scaling")),
    ("CreateContainerConfigError", Cause("a secret or configmap the pod template names is "
                                         "missing", "registry-config")),
    IMAGE_PULL, FAILED_SCHEDULING, FAILED_CREATE, UNHEALTHY,
)


def evaluate(ctx: CheckContext) -> Result:
    snapshot = ctx.snapshot
    return judge(ctx, Subject(
        label="registry", workload=ctx.registry(), pods=ctx.installation.pods(),
        events=snapshot.items("registry-events"),
        controllers=snapshot.items("registry-replicationcontrollers"),
        replica_sets=snapshot.items("registry-replicasets"),
        endpoints=ctx.installation.endpoints(), log_error=snapshot.error("registry-logs"),
        log_issues=LOG_ISSUES, first=FIRST, then=THEN))
