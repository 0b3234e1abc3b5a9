"""registry-config: the registry's effective configuration loads, and its storage options do
what operators expect.

"Deploying a Registry on Existing Clusters" (OpenShift Origin 3.x docs),
"Use Amazon S3 as a Storage Back-end" and "Overriding the registry configuration": the
configuration is edited by hand and mounted into the pod, where a typo stops the registry at
start-up and `REGISTRY_STORAGE*` variables silently replace parts of it.
"""

from __future__ import annotations

from registry_doctor.doctor.check import CheckContext, NotEvaluable
from registry_doctor.doctor.model import CheckMeta, Result, Severity, Status
from registry_doctor.doctor.registryconfig import CONFIG_KINDS, Problem

META = CheckMeta(
    id="registry-config",
    title="Registry configuration loads and keeps pruning possible",
    severity=Severity.CRIT,
    kinds=CONFIG_KINDS,
    description=(
        "Resolves the configuration the registry process runs with: the file named by the "
        "container's arguments or REGISTRY_CONFIGURATION_PATH, read from the secret or "
        "configmap mounted over it (or the image's own file), then the REGISTRY_STORAGE* "
        "environment overrides with the registry's own merge rules. crit when the registry "
        "would refuse to start (file missing or not YAML, version not 0.1, no or several "
        "storage drivers, invalid S3 parameters, bad maintenance or redirect options, a "
        "referenced secret or key missing); warn for settings it starts with but should not "
        "(storage.delete.enabled not true, so image pruning fails; overrides the registry "
        "ignores; half an S3 key pair; a read-only registry)."
    ),
    remediation=(
        "Fix the field named in the finding in the file it comes from (`$cli edit secret/"
        "configmap <name> -n $namespace`, or `$cli set env $registry` for overrides); "
        "for pruning set `storage.delete.enabled: true` (or "
        "`REGISTRY_STORAGE_DELETE_ENABLED=true`). The ConfigChange trigger redeploys on env "
        "changes; after editing a mounted secret or configmap run "
        "`$cli rollout latest $registry -n $namespace`."
    ),
)


def evaluate(ctx: CheckContext) -> Result:
    workload = ctx.registry()
    config = ctx.configuration()
    if config.unresolved:
        raise NotEvaluable(config.unresolved)
    resources = [workload.resource, *config.resources]
    details = [config.source_line, *map(str, config.fatal), *map(str, config.warnings)]
    if config.fatal:
        return ctx.failed(_first(config.fatal), details, resources)
    if config.warnings:
        return ctx.result(Status.WARN, _first(config.warnings), details, resources)
    return ctx.result(Status.OK, f"loads with the {config.driver} storage driver",
                      [*details, *config.settings(), config.describe("storage.delete.enabled")],
                      resources)


def _first(problems: list[Problem]) -> str:
    more = f" (and {len(problems) - 1} more, below)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"
