"""Findings: what a check that weighs several observations collects before its verdict."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from registry_doctor.doctor.check import CheckContext
from registry_doctor.doctor.model import MetricKey, Resource, Result, Status

SEVERITY_ORDER = (Status.OK, Status.UNKNOWN, Status.WARN, Status.CRIT)


@dataclass(frozen=True)
class Finding:
    status: Status  # OK for an observation, UNKNOWN for a part that could not be judged
    text: str
    resources: tuple[Resource, ...] = ()  # objects it names besides the check's own


def worst(findings: Iterable[Finding]) -> Status:
    """The verdict of several findings: a defect seen outranks a part that could not be judged."""
    return max((f.status for f in findings), key=SEVERITY_ORDER.index, default=Status.OK)


def verdict(ctx: CheckContext, findings: Sequence[Finding], ok_summary: str,
            resources: Iterable[Resource],
            metrics: Mapping[MetricKey, float] | None = None) -> Result:
    """The worst finding decides the status and, unless all is well, is the summary; every
    finding is evidence, and the objects of a warn or crit one are resources of the result
    after `resources`. `metrics`: numeric facts for the exporter (`Result.metrics`)."""
    status = worst(findings)
    headline = next((f.text for f in findings if f.status is status), ok_summary)
    named = [r for f in findings if f.status in (Status.WARN, Status.CRIT) for r in f.resources]
    result = ctx.result(status, ok_summary if status is Status.OK else headline,
                        [f.text for f in findings], [*resources, *named],
                        metrics)
    return replace(result, problems=tuple(f.text for f in findings
                                          if f.status in (Status.WARN, Status.CRIT)))
