"""The data every layer shares: statuses, check metadata, results and the report.

These types are the public contract behind the JSON report (docs/output.md); change them
only together with the schema version.
"""

from __future__ import annotations

import enum
import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

SCHEMA = "registry-doctor/v1"


class Status(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    CRIT = "crit"
    UNKNOWN = "unknown"
    SKIP = "skip"
    # A warn or crit an admin acknowledged until a date (doctor/acknowledge.py): reported,
    # but it counts toward neither the exit code nor the alerts.
    ACKNOWLEDGED = "acknowledged"


class Severity(str, enum.Enum):
    """How bad a failing check is; the status a check returns when its hazard is present."""

    WARN = "warn"
    CRIT = "crit"


# Exit codes follow the Nagios plugin convention. A failure that was seen outranks one that
# could not be evaluated, so a crit is never hidden behind an unknown elsewhere.
EXIT_OK, EXIT_WARN, EXIT_CRIT, EXIT_UNKNOWN, EXIT_USAGE = 0, 1, 2, 3, 64
_EXIT_RANK = {  # status -> (rank, exit code); the highest rank decides
    Status.OK: (0, EXIT_OK),
    Status.SKIP: (0, EXIT_OK),
    Status.ACKNOWLEDGED: (0, EXIT_OK),
    Status.UNKNOWN: (1, EXIT_UNKNOWN),
    Status.WARN: (2, EXIT_WARN),
    Status.CRIT: (3, EXIT_CRIT),
}


def exit_code_for(statuses: list[Status]) -> int:
    """A run that evaluated nothing (every check unknown or skipped) is unknown: a cron job
    must not read "all skipped" as "all healthy"."""
    evaluated = [s for s in statuses if s not in (Status.UNKNOWN, Status.SKIP)]
    if not evaluated:
        return EXIT_UNKNOWN
    return max((_EXIT_RANK[s] for s in statuses), default=(0, EXIT_OK))[1]


# How fix texts name the registry's objects where no installation is at hand (the docs,
# `explain`): OpenShift 3.x's defaults. A report names the installation it found.
DEFAULT_NAMES: Mapping[str, str] = MappingProxyType({
    "cli": "oc", "namespace": "default", "registry": "dc/docker-registry",
    "console": "dc/registry-console", "service": "svc/docker-registry",
    "rollout": "rollout latest",
    "use_claim": "oc set volume dc/docker-registry -n default --add --name=registry-storage "
                 "-t pvc --claim-name=<claim> --overwrite",
    "owner": "dc/docker-registry"})


@dataclass(frozen=True)
class CheckOption:
    """A command-line option a check brings: `check` offers it, and `serve` too unless it only
    shapes a fix. The CLI builds its options from these (doctor/cli.py), so a check's settings
    live with the check."""

    flag: str  # "--claim-name"
    # The field it sets: of RunConfig (doctor.config), or of FixOptions when `fix`.
    setting: str
    help: str
    # str, bool, int, path, list (repeatable), quantity (a Kubernetes quantity, e.g. 256Mi)
    type: str = "str"
    default: Any = None
    fix: bool = False  # read only by the check's fix planner (`check --fix`)
    minimum: int | None = None  # for int
    maximum: int | None = None

    @property
    def line(self) -> str:
        """`--claim-size QUANTITY` (fix only): what it does, for `explain` and the docs."""
        value = "" if self.type == "bool" else f" {self.type.upper()}"
        default = "" if self.default in (None, (), False) else f" (default: {self.default})"
        return (f"{self.flag}{value}{' (with --fix)' if self.fix else ''}: "
                f"{self.help}{default}")


@dataclass(frozen=True)
class CheckMeta:
    """Everything about a check except its logic; rendered by `list`, `explain` and the docs."""

    id: str
    title: str
    severity: Severity
    kinds: tuple[str, ...]  # snapshot collections the check reads (doctor.snapshot.kinds)
    # What to do, naming objects as $cli, $namespace, $registry, $console, $service
    # (doctor.platform.Installation.names): `$cli scale $registry -n $namespace`.
    remediation: str
    description: str
    probes: tuple[str, ...] = ()  # live probes the check reads (doctor.probes)
    # A RunConfig flag that enables this check (e.g. "canary"); None: runs by default.
    opt_in: str | None = None
    # The platforms it applies to (doctor.platform ids); empty: every platform. Elsewhere it
    # is `skip`, with `platform_note` (why) in its summary.
    platforms: tuple[str, ...] = ()
    platform_note: str = ""
    # The remediation on platforms where the fix is made elsewhere, by platform id (OpenShift
    # 4: through the operator's Config CR, `$owner`, not the Deployment it writes).
    platform_remediation: dict[str, str] = field(default_factory=dict, hash=False)
    options: tuple[CheckOption, ...] = ()  # its command-line options
    # Collections among `kinds` read only to quote (e.g. events): when one cannot be read, the
    # check still judges and says what it could not quote, instead of being unknown.
    quotes_only: tuple[str, ...] = ()

    def remediation_for(self, names: Mapping[str, str] = DEFAULT_NAMES,
                        platform: str = "") -> str:
        text = self.platform_remediation.get(platform, self.remediation)
        return string.Template(text).substitute(names)

    @property
    def platforms_line(self) -> str:
        """Where it applies, for `explain` and the docs."""
        if not self.platforms:
            return "every platform"
        return f"{', '.join(self.platforms)} only ({self.platform_note})"

    @property
    def docs(self) -> str:
        """Path of the check's page in the source tree (also the alerts' runbook)."""
        return f"docs/checks/{self.id}.md"


@dataclass(frozen=True)
class Resource:
    kind: str
    name: str
    namespace: str | None = None

    def ref(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}


@dataclass(frozen=True)
class Remediation:
    summary: str
    docs: str
    actions: tuple[dict[str, Any], ...] = ()  # planned changes, filled by the fix planner

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "docs": self.docs, "actions": list(self.actions)}


@dataclass(frozen=True)
class Acknowledged:
    """Why a result is `acknowledged`: the status it would have, and the entry that holds it."""

    status: Status  # the check's own verdict, warn or crit
    reason: str
    until: str  # YYYY-MM-DD, the last day the acknowledgement holds
    by: str | None  # who set it, when known
    source: str  # the config file line or the annotated object

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "reason": self.reason, "until": self.until,
                "by": self.by, "source": self.source}


@dataclass(frozen=True)
class Result:
    check: str
    title: str
    status: Status
    summary: str
    details: tuple[str, ...] = ()
    resources: tuple[Resource, ...] = ()
    remediation: Remediation | None = None
    # Numeric facts the check observed, e.g. {"certificate_not_after_timestamp_seconds": ...}.
    # The exporter publishes each as a gauge `registry_doctor_<name>{check}` (docs/exporter.md);
    # a key may also be `(name, (("label", "value"), ...))` for bounded extra labels. They are
    # not part of the JSON report.
    metrics: Mapping[MetricKey, float] = field(default_factory=dict, hash=False)
    # The texts of its warn and crit findings (doctor.findings.verdict): a fix verifies that
    # the finding it targets is gone. Not part of the JSON report.
    problems: tuple[str, ...] = field(default=(), compare=False)
    acknowledgement: Acknowledged | None = None  # set when the status is `acknowledged`

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(_valid_metrics(self.metrics)))

    def to_dict(self) -> dict[str, Any]:
        document = {
            "check": self.check,
            "title": self.title,
            "status": self.status.value,
            "summary": self.summary,
            "details": list(self.details),
            "resources": [r.to_dict() for r in self.resources],
            "remediation": self.remediation.to_dict() if self.remediation else None,
        }
        if self.acknowledgement is not None:
            document["acknowledgement"] = self.acknowledgement.to_dict()
        return document


_METRIC_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Labels the exporter sets on every series of a fact: the check and the registry it judged.
RESERVED_LABELS = ("check", "registry_namespace", "registry")
MetricKey = str | tuple[str, tuple[tuple[str, str], ...]]


def metric_name_and_labels(key: MetricKey) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (key, ()) if isinstance(key, str) else key


def _valid_metrics(metrics: Mapping[MetricKey, float]) -> dict[MetricKey, float]:
    """A check bug must fail its own result (the engine turns it into `unknown`), not break
    every scrape of the exporter: names and label names must be lower_snake_case, label values
    strings, values finite numbers."""
    valid = {}
    for key, value in metrics.items():
        if not _valid_key(key):
            raise ValueError(f"metric key {key!r} is not a lower_snake_case name "
                             "(optionally with a tuple of (label, value) string pairs)")
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ValueError(f"metric {key} = {value!r} is not a finite number")
        valid[key] = float(value)
    return valid


def _valid_key(key: object) -> bool:
    if isinstance(key, str):
        return bool(_METRIC_NAME.fullmatch(key))
    if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], tuple)):
        return False
    name, labels = key
    return _valid_key(name) and all(
        isinstance(pair, tuple) and len(pair) == 2 and _valid_key(pair[0])
        and pair[0] not in RESERVED_LABELS and isinstance(pair[1], str) for pair in labels)


@dataclass(frozen=True)
class Report:
    generated: str  # ISO-8601 UTC
    source: dict[str, Any]
    results: tuple[Result, ...]
    duration_seconds: float = 0.0
    collection_errors: dict[str, str] = field(default_factory=dict)
    fix: dict[str, Any] | None = None  # what `check --fix` did (docs/remediation.md)
    # Why the source could not be read (API server unreachable, credentials rejected), None
    # when it answered: such a report is blind, and the exporter does not serve it as a
    # judgement of the registry. Not part of the JSON report: its results say it already.
    source_failure: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for result in self.results:
            counts[result.status.value] += 1
        return counts

    @property
    def exit_code(self) -> int:
        return exit_code_for([r.status for r in self.results])

    @property
    def input_problems(self) -> list[str]:
        """What of the source could not be read (a dump's files, each `file: reason`): the
        verdicts were reached without it, so every output format says so."""
        problems = self.source.get("problems")
        return [str(p) for p in problems] if isinstance(problems, list) else []

    def result(self, check_id: str) -> Result | None:
        return next((r for r in self.results if r.check == check_id), None)

    def to_dict(self) -> dict[str, Any]:
        document = {
            "schema": SCHEMA,
            "generated": self.generated,
            "source": self.source,
            "results": [r.to_dict() for r in self.results],
            "counts": self.counts,
            "exit_code": self.exit_code,
        }
        if self.fix is not None:
            document["fix"] = self.fix
        return document
