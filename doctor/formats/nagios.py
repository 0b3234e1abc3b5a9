"""The Nagios plugin output (Nagios plugin development guidelines, "Plugin Output" and
"Performance data"): one status line `SERVICE STATUS - text | perfdata`, then one line per
finding (first the input that could not be read, e.g. a dump's unreadable files). The
exit code is the report's, which already follows the plugin return codes."""

from __future__ import annotations

from registry_doctor.doctor.model import Report, Status
from registry_doctor.doctor.render import one_line

_STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
_ORDER = (Status.CRIT, Status.WARN, Status.UNKNOWN, Status.ACKNOWLEDGED, Status.SKIP,
          Status.OK)


def render_nagios(report: Report) -> str:
    counts = report.counts
    summary = ", ".join(f"{counts[s.value]} {s.value}" for s in _ORDER[:4]
                        if counts[s.value]) or f"{counts['ok']} ok"
    problems = report.input_problems
    if problems:
        summary += f", {len(problems)} input problem{'s' if len(problems) > 1 else ''}"
    # label=value;warn;crit;min;max: counts have no thresholds; min 0, max the checks run.
    perfdata = " ".join(f"{status.value}={counts[status.value]};;;0;{len(report.results)}"
                        for status in _ORDER)
    lines = [f"REGISTRY-DOCTOR {_STATES[report.exit_code]} - {summary} | {perfdata} "
             f"duration={report.duration_seconds:.3f}s;;;0;"]
    lines += [f"INPUT PROBLEM: {_long_text(problem)}" for problem in problems]
    for status in _ORDER:
        for result in (r for r in report.results if r.status is status):
            lines.append(f"{status.value.upper()}: {result.check}: {_long_text(result.summary)}")
            if status in _ORDER[:3]:
                lines += [f"  - {_long_text(detail)}" for detail in result.details]
    return "\n".join(lines) + "\n"


def _long_text(text: str) -> str:
    """A `|` in the long text would start performance data there (guidelines): keep it out;
    one finding, one line."""
    return one_line(text).replace("|", "/")
