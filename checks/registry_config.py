"""registry-config: the registry's effective configuration loads, and its storage options do
what operators expect.

"Deploying a Registry on Existing Clusters" (OpenShift Origin 3.x docs),
"Use Amazon S3 as a Storage Back-end" and "Overriding the registry configuration": the
configuration is edited by hand and mounted into the pod, where a typo stops the registry at
start-up and `REGISTRY_STORAGE*` variables silently replace parts of it.
"""

from __future__ import annotations

import re

from registry_doctor.doctor.check import CheckContext, NotEvaluable
from registry_doctor.doctor.known_issues import quoted
from registry_doctor.doctor.model import CheckMeta, Result, Severity, Status
from registry_doctor.doctor.registryconfig import CONFIG_KINDS, Problem

META = CheckMeta(
    id="registry-config",
    title="Registry configuration loads and keeps pruning possible",
    severity=Severity.CRIT,
    kinds=(*CONFIG_KINDS, "registry-pods", "registry-logs"),
    description=(
        "Resolves the configuration the registry process runs with: the file named by the "
        "container's arguments or REGISTRY_CONFIGURATION_PATH, read from the secret or "
        "configmap mounted over it (or the image's own file), then the REGISTRY_STORAGE* "
        "environment overrides with the registry's own merge rules. crit when the registry "
        "would refuse to start (file missing or not YAML, version not 0.1, no or several "
        "storage drivers, invalid S3 parameters, bad maintenance or redirect options, a "
        "referenced secret or key missing); warn for settings it starts with but should not "
        "(storage.delete.enabled not true, so image pruning fails; overrides the registry "
        "ignores; half an S3 key pair; a read-only registry). A registry pod whose recent log "
        "says why the registry stopped (a Go `panic:` other than a runtime error, a "
        "`level=fatal` line or a "
        "`configuration error:`) is crit with that line quoted, whatever the static rules "
        "found, and even when the configuration cannot be resolved from here. The start-up "
        "rules are those of the registry's release, read from the image tag (OpenShift 3.8, "
        "3.9 to 3.11; distribution 2.6, 2.7, 2.8, 3): the S3 regions each build accepts, "
        "skipverify, the drivers it has (3 has no swift or oss), the S3 storage classes and "
        "the case of its messages. The findings say which release's rules were applied; a "
        "tag without a version gets the newest modelled release's, a version without rules of "
        "its own the nearest's, with a note."
    ),
    remediation=(
        "Fix the field named in the finding in the file it comes from (`$cli edit secret/"
        "configmap <name> -n $namespace`, or `$cli set env $registry` for overrides); "
        "for pruning set `storage.delete.enabled: true` (or "
        "`REGISTRY_STORAGE_DELETE_ENABLED=true`). A change of env redeploys by itself; after "
        "editing a mounted secret or configmap run "
        "`$cli $rollout $registry -n $namespace`."
    ),
    platform_remediation={
        "openshift4": (
            "The operator writes the registry's configuration from its Config CR: correct "
            "the setting there (`$cli edit $owner`), not in the Deployment, whose changes it "
            "reverts; it rolls the registry out."),
    },
)


# How the registry says it will not start: Go's unrecovered panic (e.g. 3.7's "panic: Invalid
# region provided: eu-west-2"), logrus' fatal level, and distribution's configuration parser
# ("configuration error: ...", printed before it exits).
# A runtime panic (`panic: runtime error: ...`) of a registry that was serving is a crash, not a
# configuration the registry refused (registry-running reports it).
STARTUP_FAILURE = re.compile(r"^panic: (?!runtime error)|\blevel=fatal\b|^configuration error: ")


def evaluate(ctx: CheckContext) -> Result:
    workload = ctx.registry()
    config = ctx.configuration()
    stopped = [f"pod/{pod} logs: {quoted(line)}"
               for pod, line in ctx.installation.log_lines(STARTUP_FAILURE)]
    resources = [workload.resource, *config.resources]
    if config.unresolved and not stopped:
        raise NotEvaluable(config.unresolved)
    details = [*filter(None, (config.unresolved or config.source_line, config.rules_line)),
               *map(str, config.fatal), *map(str, config.warnings), *stopped]
    if config.fatal:
        return ctx.failed(_first(config.fatal), details, resources)
    if stopped:
        return ctx.failed(f"the registry stops at start-up, and says why: {stopped[0]}",
                          details, resources)
    if config.warnings:
        return ctx.result(Status.WARN, _first(config.warnings), details, resources)
    return ctx.result(Status.OK, f"loads with the {config.driver} storage driver",
                      [*details, *config.settings(), config.describe("storage.delete.enabled")],
                      resources)


def _first(problems: list[Problem]) -> str:
    more = f" (and {len(problems) - 1} more, below)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"
