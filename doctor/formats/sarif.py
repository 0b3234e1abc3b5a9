"""SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format): one rule per check with
its docs link, one result per check with the objects as logical locations. An acknowledged
finding carries an accepted external suppression, which code-scanning tools hide by default.
Input that could not be read is a tool execution notification of the run's invocation."""

from __future__ import annotations

import json
from typing import Any

from registry_doctor.doctor import __version__
from registry_doctor.doctor.links import docs_url
from registry_doctor.doctor.model import Report, Result, Status

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
# status -> (result.kind, result.level) (SARIF 2.1.0 sections 3.27.9, 3.27.10)
_KIND_LEVEL = {
    Status.CRIT: ("fail", "error"), Status.WARN: ("fail", "warning"),
    Status.UNKNOWN: ("open", "note"), Status.OK: ("pass", "none"),
    Status.SKIP: ("notApplicable", "none"),
}


def render_sarif(report: Report) -> str:
    from registry_doctor.checks import all_checks

    metas = [c.meta for c in all_checks().values()]
    rule_index = {meta.id: i for i, meta in enumerate(metas)}
    rules = [{
        "id": meta.id,
        "name": "".join(part.capitalize() for part in meta.id.split("-")),
        "shortDescription": {"text": meta.title},
        "fullDescription": {"text": meta.description},
        "help": {"text": f"{meta.remediation_for()} ({meta.docs})"},
        **_help_uri(meta.docs),
        "defaultConfiguration": {"level": "error" if meta.severity.value == "crit"
                                 else "warning"},
    } for meta in metas]
    run = {
        "tool": {"driver": {"name": "registry-doctor", "version": __version__,
                            "rules": rules}},
        "invocations": [{"executionSuccessful": True, "exitCode": report.exit_code,
                         "endTimeUtc": report.generated, **_notifications(report)}],
        "results": [_result(r, rule_index.get(r.check)) for r in report.results],
    }
    document = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
    return json.dumps(document, indent=2) + "\n"


def _notifications(report: Report) -> dict[str, Any]:
    """Input that could not be read (a dump's unreadable files): a condition of the run, not
    a result, which SARIF 3.20.21 carries as toolExecutionNotifications."""
    return {"toolExecutionNotifications": [
        {"level": "warning", "message": {"text": problem}} for problem in report.input_problems
    ]} if report.input_problems else {}


def _help_uri(docs: str) -> dict[str, str]:
    """helpUri must be absolute (SARIF 3.49.12): present only when there is such a link."""
    url = docs_url(docs)
    return {"helpUri": url} if url else {}


def _result(result: Result, index: int | None) -> dict[str, Any]:
    status = result.acknowledgement.status if result.acknowledgement else result.status
    kind, level = _KIND_LEVEL[status]
    text = " ".join([result.summary, *(f"- {d}" for d in result.details)])
    entry: dict[str, Any] = {"ruleId": result.check, "kind": kind, "level": level,
                             "message": {"text": text}}
    if index is not None:  # the `acknowledgements` result is no check, so no rule
        entry["ruleIndex"] = index
    if result.resources:
        entry["locations"] = [{"logicalLocations": [{
            "name": r.name, "fullyQualifiedName": r.ref(), "kind": r.kind,
        }]} for r in result.resources]
    if result.acknowledgement:
        ack = result.acknowledgement
        entry["suppressions"] = [{
            "kind": "external", "status": "accepted",
            "justification": f"{ack.reason} (until {ack.until}; {ack.source})",
        }]
    return entry
