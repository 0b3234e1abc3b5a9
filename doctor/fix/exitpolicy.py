"""Exit policies of `check`: what the exit code of a run reports (docs/cron.md).

`checks` (the default, the Nagios contract): the verdicts after the run.
`fix` (for scheduled `check --fix --yes` jobs): whether the tool and its fixes worked. A finding
that needs a person (e.g. ephemeral-storage, always manual) is in the report, the log and the
exporter's metrics; it must not fail the job every night and hide the runs that really failed.
"""

from __future__ import annotations

from registry_doctor.doctor.fix import journal, model
from registry_doctor.doctor.model import EXIT_CRIT, EXIT_OK, EXIT_UNKNOWN, Report

EXIT_FIX_FAILED = EXIT_CRIT
EXIT_NOT_JUDGED = EXIT_UNKNOWN
_FAILED_ACTIONS = (model.FAILED, model.ROLLED_BACK)
_FAILED_UNITS = (journal.FAILED, journal.ROLLED_BACK, journal.ABORTED)


def exit_code(report: Report, policy: str) -> int:
    if policy == "checks":
        return report.exit_code
    if fix_failures(report):  # first: a failed fix is what a person must look at
        return EXIT_FIX_FAILED
    return EXIT_NOT_JUDGED if report.exit_code == EXIT_UNKNOWN else EXIT_OK


def fix_failures(report: Report) -> list[str]:
    """What went wrong with the fixes of this run: interrupted, failed or undone units and
    actions (a write refused by a server dry run included)."""
    fix = report.fix or {}
    failures = [f"the run was interrupted: {fix['interrupted']}"] if fix.get("interrupted") \
        else []
    failures += [f"{', '.join(unit['checks'])}: {unit['state']}: {unit['message']}"
                 for unit in fix.get("units", []) if unit.get("state") in _FAILED_UNITS]
    failures += [f"{action['id']}: {action['state']}: {action.get('message', '')}"
                 for result in report.results if result.remediation is not None
                 for action in result.remediation.actions
                 if action.get("state") in _FAILED_ACTIONS]
    return failures
