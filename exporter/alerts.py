"""The alert rules shipped in `rules/registry-doctor.rules.yml` (docs/exporter.md).

The exporter's own alerts are written by hand at the top of the file. Below a marker line,
one alert per check is generated from the checks' metadata by
`python -m registry_doctor.exporter.alerts`, with the alert on the `acknowledgements` result that
is exported like a check; `--check` only compares (the test suite does), so a new check cannot
ship without its alert.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from registry_doctor.doctor.acknowledge import RESULT_ID as ACKNOWLEDGEMENTS
from registry_doctor.doctor.generated import sync
from registry_doctor.doctor.model import CheckMeta

RULES_FILE = Path(__file__).resolve().parent / "rules" / "registry-doctor.rules.yml"
# The runbooks are the docs pages shipped with registry-doctor (docs/checks/<id>.md,
# docs/exporter.md); no public site hosts them. The chart's prometheusRule.runbookBaseUrl
# turns `docs/` into the URL where the admin serves them (docs/exporter.md).
RUNBOOK_BASE = "docs/"
MARKER = ("# generated from the checks' metadata by `python -m registry_doctor.exporter.alerts`: "
          "do not edit below")
# A failing status, how long it must last before the alert fires, and the alert's severity:
# crit pages sooner than warn. A check may return either status, whatever its META severity.
FAILING = (("crit", "5m", "critical"), ("warn", "30m", "warning"))
# Alerts are about a registry: these labels (set by the exporter on every series) stay on them,
# whichever exporter instance or pod reported it.
REGISTRY = "registry_namespace, registry"
# How far back a check alert looks for the last known status while no exporter of the registry
# is up (exporter restarted blind, or gone): older than this, the alert resolves and
# RegistryDoctorAbsent/RunsFailing remain.
HOLD_LOOKBACK = "6h"


def alert_name(check_id: str) -> str:
    """`besteffort-qos` -> `RegistryDoctorBesteffortQos`."""
    return "RegistryDoctor" + "".join(p.capitalize() for p in re.split(r"[^a-z0-9]+", check_id))


def held_status(check_id: str, status: str) -> str:
    """PromQL: 1 while `check_id` is `status` for a registry, by the exporter's current value;
    while no exporter of that registry is up, by the last value seen. The exporter itself keeps
    serving its last report while it cannot read the cluster; this covers one that restarted
    blind or is gone, so a blind exporter never reads as a healthy registry."""
    series = f'registry_doctor_check_status{{check="{check_id}",status="{status}"}}'
    by = f"max by ({REGISTRY}, check, status)"
    return (f"{by} ({series}) == 1\n"
            f"or ({by} (last_over_time({series}[{HOLD_LOOKBACK}])) == 1\n"
            f"    unless on ({REGISTRY}) max by ({REGISTRY}) (registry_doctor_up) == 1)\n")


def check_rules(meta: CheckMeta) -> list[dict[str, Any]]:
    registry = "{{ $labels.registry_namespace }}/{{ $labels.registry }}"
    return [{
        "alert": alert_name(meta.id),
        "expr": held_status(meta.id, status),
        "for": hold,
        "labels": {"severity": severity},
        "annotations": {
            "summary": f"registry-doctor check {meta.id} is {status}: {meta.title}",
            "description": (f"registry-doctor has reported {meta.id} as {status} for {hold} "
                            f"for the registry {registry} (the last known status while it "
                            f"cannot read the cluster). `registry-doctor check -c {meta.id}` "
                            "shows the objects and fields at fault."),
            "runbook_url": f"{RUNBOOK_BASE}checks/{meta.id}.md",
        },
    } for status, hold, severity in FAILING]


def acknowledgement_rule() -> dict[str, Any]:
    """The `acknowledgements` result is no check but is exported like one: warn while an
    acknowledgement has expired (or an annotation cannot be read). Held like a check's warn."""
    status, hold, severity = next(f for f in FAILING if f[0] == "warn")
    registry = "{{ $labels.registry_namespace }}/{{ $labels.registry }}"
    return {
        "alert": "RegistryDoctorAcknowledgementExpired",
        "expr": held_status(ACKNOWLEDGEMENTS, status),
        "for": hold,
        "labels": {"severity": severity},
        "annotations": {
            "summary": "A registry-doctor acknowledgement has expired or cannot be read",
            "description": (f"registry-doctor has reported for {hold} that an "
                            f"acknowledgement for the registry {registry} has passed its until "
                            "date (or an acknowledge annotation cannot be read): the findings "
                            "it covered count again. `registry-doctor check` names the entries "
                            "in its `acknowledgements` result; fix the finding, renew or "
                            "remove them."),
            "runbook_url": f"{RUNBOOK_BASE}exporter.md#registrydoctoracknowledgementexpired",
        },
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line expressions as literal blocks, as a person would write them."""


_Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def generated_group(metas: Iterable[CheckMeta]) -> str:
    group = {"name": "registry-doctor-checks",
             "rules": [*(rule for meta in metas for rule in check_rules(meta)),
                       acknowledgement_rule()]}
    return yaml.dump([group], Dumper=_Dumper, sort_keys=False, width=100)


def synced_text(current: str, metas: Iterable[CheckMeta]) -> str:
    """The rules file with everything below the marker regenerated."""
    if MARKER not in current:
        raise ValueError(f"{RULES_FILE.name}: the line {MARKER!r} is missing")
    return current.partition(MARKER)[0] + MARKER + "\n" + generated_group(metas)


def main(argv: list[str]) -> int:
    from registry_doctor.checks import all_checks

    wanted = synced_text(RULES_FILE.read_text(), (c.meta for c in all_checks().values()))
    return sync({RULES_FILE: wanted}, argv, "python -m registry_doctor.exporter.alerts")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
