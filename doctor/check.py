"""The check framework: what a check is, and what it sees (the shared snapshot, the probe
results and the run settings).

A check module (a plugin in the `checks` package) defines `META: CheckMeta` and
`evaluate(ctx: CheckContext) -> Result`, optionally `plan`. It is a pure function of its
context: it never imports `kubernetes` or `boto3` and does no I/O. Checks import this module;
this module never imports the `checks` package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import CheckMeta, MetricKey, Remediation, Resource, Result, Status
from registry_doctor.doctor.snapshot import Snapshot
from registry_doctor.doctor.workload import Workload

if TYPE_CHECKING:
    from registry_doctor.doctor.fix.plan import Planner
    from registry_doctor.doctor.platform import Installation
    from registry_doctor.doctor.registryconfig import RegistryConfig


class NotEvaluable(Exception):
    """Raised inside a check when its subject cannot be judged; becomes `unknown`."""


class NotApplicable(Exception):
    """Raised inside a check when its subject does not exist here; becomes `skip`."""


Observed = TypeVar("Observed")


@dataclass(frozen=True)
class ProbeResult(Generic[Observed]):
    """What a live probe observed: a typed value (doctor/probe_results.py,
    doctor/volumestats.py), or `error` when the probe itself could not run."""

    probe: str
    data: Observed | None = None
    error: str | None = None
    duration_seconds: float = 0.0


@dataclass(frozen=True)
class CheckContext:
    meta: CheckMeta
    snapshot: Snapshot
    config: RunConfig
    probes: dict[str, ProbeResult] = field(default_factory=dict)

    def result(self, status: Status, summary: str, details: Iterable[str] = (),
               resources: Iterable[Resource] = (),
               metrics: Mapping[MetricKey, float] | None = None) -> Result:
        """`metrics`: numeric facts for the exporter (see `Result.metrics`)."""
        return Result(
            check=self.meta.id, title=self.meta.title, status=status, summary=summary,
            details=tuple(details), resources=tuple(dict.fromkeys(resources)),
            remediation=(Remediation(self.meta.remediation_for(self.installation.names(),
                                                               self.installation.platform),
                                     self.meta.docs)
                         if status in (Status.WARN, Status.CRIT) else None),
            metrics=metrics or {},
        )

    def failed(self, summary: str, details: Iterable[str] = (),
               resources: Iterable[Resource] = (),
               metrics: Mapping[MetricKey, float] | None = None) -> Result:
        """The check's hazard is present: its declared severity."""
        return self.result(Status(self.meta.severity.value), summary, details, resources,
                           metrics)

    @cached_property
    def installation(self) -> Installation:
        """The registry installation this check judges, read through its declared collections."""
        return self.snapshot.installation()

    def registry(self) -> Workload:
        workload = self.installation.registry
        if workload is None:
            config = self.config
            if config.registry_search:
                raise NotEvaluable(f"registry not found: {config.registry_search}; name it "
                                   "with --registry NAME -n NAMESPACE")
            raise NotEvaluable(
                f"registry workload {config.registry_name} not found in namespace "
                f"{config.namespace} (looked for a DeploymentConfig, Deployment, DaemonSet and "
                "StatefulSet; use --namespace/--registry if it lives elsewhere)"
                + (f"; {self.installation.absent_hint}" if self.installation.absent_hint
                   else ""))
        return workload

    def configuration(self) -> RegistryConfig:
        """The registry's effective configuration, as the installation resolves it."""
        self.registry()  # not evaluable without a registry
        return cast("RegistryConfig", self.installation.configuration)

    def console(self) -> Workload:
        """The registry console's workload; checks about the console skip without one."""
        workload = self.installation.console
        if workload is None:
            config = self.config
            raise NotApplicable(
                f"no registry console: no DeploymentConfig, Deployment, DaemonSet or StatefulSet "
                f"{config.console_name} in namespace {config.namespace} (use --console if it "
                "has another name)")
        return workload

    def probe(self, probe_id: str, kind: type[Observed]) -> ProbeResult[Observed] | None:
        """The probe's result, or None when probes are off for this run. Unless the probe
        failed, its data is a `kind`: anything else is refused (`unknown`), never read."""
        found = self.probes.get(probe_id)
        if found is None or found.error is not None or isinstance(found.data, kind):
            return found
        raise NotEvaluable(f"probe {probe_id} answered {type(found.data).__name__}, not the "
                           f"{kind.__name__} this check reads (a bug in the probe)")


@dataclass(frozen=True)
class Check:
    """One check: its metadata, its verdict function and optionally its fix planner."""

    meta: CheckMeta
    evaluate: Callable[[CheckContext], Result]
    plan: Planner | None = None
