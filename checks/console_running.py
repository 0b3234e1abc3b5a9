"""console-running: the registry console is actually up and serving.

The judgement of registry-running (doctor/running.py) applied to the console (openshift-ansible
release-3.11 roles/cockpit-ui: a DeploymentConfig `registry-console` and its Service): its
pods' status, the events about its pods, DeploymentConfig and latest RC, its Service's
Endpoints and its pods' log tails, the previous container's included.
"""

from __future__ import annotations

from registry_doctor.doctor import running
from registry_doctor.doctor.check import CheckContext
from registry_doctor.doctor.console import CONSOLE_PLATFORMS, NO_CONSOLE
from registry_doctor.doctor.known_issues import issues
from registry_doctor.doctor.model import CheckMeta, Result, Severity
from registry_doctor.doctor.running import Cause, Subject
from registry_doctor.doctor.workload import WORKLOAD_KINDS

META = CheckMeta(
    id="console-running",
    title="The registry console is up and serving",
    severity=Severity.CRIT,
    kinds=(*WORKLOAD_KINDS, "console-pods", "console-replicationcontrollers", "console-events",
           "console-endpoints", "console-logs"),
    platforms=CONSOLE_PLATFORMS,
    platform_note=NO_CONSOLE,
    description=(
        "What registry-running judges, for the registry console: desired against ready "
        "console pods; for each pod that is not ready, or that restarted recently and "
        "repeatedly, its container state (CrashLoopBackOff, ImagePullBackOff, "
        "CreateContainerConfigError, OOMKilled with its exit code, restart count), the warning "
        "events about it (FailedMount, FailedScheduling, FailedCreate, BackOff, Unhealthy) and "
        "the log lines of known causes from its log and the previous container's (the "
        "certificate Cockpit cannot load: `No PEM-encoded private key found`, `Cannot decrypt "
        "PEM-encoded private key`; its port taken: `Failed to bind to port ... in use`), each "
        "with the check that owns its cause. Also the latest deployment (the latest "
        "ReplicationController in phase Failed and its events, or Progressing=False with "
        "ProgressDeadlineExceeded) and the console Service's Endpoints. Crit when no console "
        "pod is ready, the Service has no ready address or the latest deployment failed; warn "
        "when some pods are not ready, fewer exist than desired, or restarts are recent (within "
        "an hour of the newest event about the console) and repeated (3 or more); ok otherwise."
    ),
    remediation=(
        "Follow the cause named for each pod and the check that owns it; then watch the "
        "rollout: `$cli get pods -n $namespace -w` and `$cli describe $console -n $namespace`. "
        "For a failed deployment, redeploy once the cause is fixed: "
        "`$cli rollout latest $console -n $namespace`."
    ),
)

# Log lines that say why the console does not start, in the order their causes are named.
LOG_ISSUES = issues("console-certificate", "console-port-in-use")
# The console mounts its certificate secret (the docs' "Securing the Registry Console"): a
# missing one stops the pod before it starts, in a mount or a container config error.
MISSING_CERTIFICATE = Cause("a secret the console's pod template names (its certificate) is "
                            "missing", "cert-chain-order")
FIRST = (
    ("OOMKilled", Cause("the console exceeded its memory limit or the node ran out of memory",
                        "")),
)
THEN = (
    ("FailedMount", MISSING_CERTIFICATE),
    ("CreateContainerConfigError", MISSING_CERTIFICATE),
    running.IMAGE_PULL, running.FAILED_SCHEDULING, running.FAILED_CREATE, running.UNHEALTHY,
)


def evaluate(ctx: CheckContext) -> Result:
    snapshot = ctx.snapshot
    return running.judge(ctx, Subject(
        label="console", workload=ctx.console(), pods=snapshot.items("console-pods"),
        events=snapshot.items("console-events"),
        controllers=snapshot.items("console-replicationcontrollers"), replica_sets=[],
        endpoints=next(iter(snapshot.items("console-endpoints")), None),
        log_error=snapshot.error("console-logs"), log_issues=LOG_ISSUES, first=FIRST,
        then=THEN))
