"""JUnit XML: one testcase per check, the de-facto schema CI systems read (Jenkins' junit
plugin, GitLab's `artifacts:reports:junit`): failure for warn and crit, error for unknown,
skipped for skip; an acknowledged finding passes and says so in system-out. Input that could
not be read (a dump's unreadable files) is the suite's system-err."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from registry_doctor.doctor.model import Report, Result, Status
from registry_doctor.doctor.render import one_line, printable

_SUITE = "registry-doctor"


def render_junit(report: Report) -> str:
    counts = report.counts
    totals = {"tests": str(len(report.results)),
              "failures": str(counts["warn"] + counts["crit"]),
              "errors": str(counts["unknown"]), "skipped": str(counts["skip"]),
              "time": f"{report.duration_seconds:.3f}"}
    suites = ET.Element("testsuites", name=_SUITE, **totals)
    suite = ET.SubElement(suites, "testsuite", name=_SUITE, timestamp=report.generated, **totals)
    for result in report.results:
        _testcase(suite, result)
    if report.input_problems:  # what the verdicts were reached without
        ET.SubElement(suite, "system-err").text = "\n".join(
            f"input problem: {one_line(problem)}" for problem in report.input_problems)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _testcase(suite: ET.Element, result: Result) -> None:
    case = ET.SubElement(suite, "testcase", classname=_SUITE, name=result.check, time="0")
    text = "\n".join(_text(line) for line in result.details)
    if result.remediation and result.status in (Status.WARN, Status.CRIT):
        text += f"\nfix: {_text(result.remediation.summary)}\ndocs: {result.remediation.docs}"
    tag = {Status.WARN: "failure", Status.CRIT: "failure", Status.UNKNOWN: "error",
           Status.SKIP: "skipped"}.get(result.status)
    if tag:
        element = ET.SubElement(case, tag, message=_text(result.summary),
                                type=result.status.value)
        element.text = text.strip() or None
    elif result.acknowledgement:
        ack = result.acknowledgement
        ET.SubElement(case, "system-out").text = _text(
            f"acknowledged {ack.status.value} until {ack.until}"
            + (f" by {ack.by}" if ack.by else "") + f": {ack.reason} ({ack.source}); "
            f"finding: {result.summary}")


def _text(text: str) -> str:
    """XML 1.0 cannot carry control characters at all: they are shown escaped."""
    return printable(text)
