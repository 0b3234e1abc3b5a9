"""Report formats for other tools (docs/output.md): JUnit XML for CI systems, SARIF 2.1.0 for
code-scanning dashboards, the Nagios plugin output for monitoring systems, and the exporter's
metrics as a node_exporter textfile. Each is a function of the one report."""

from __future__ import annotations

from registry_doctor.doctor.model import Report


def render_for_tool(report: Report, output: str) -> str:
    if output == "junit":
        from registry_doctor.doctor.formats.junit import render_junit

        return render_junit(report)
    if output == "sarif":
        from registry_doctor.doctor.formats.sarif import render_sarif

        return render_sarif(report)
    if output == "nagios":
        from registry_doctor.doctor.formats.nagios import render_nagios

        return render_nagios(report)
    if output == "prometheus":
        from registry_doctor.doctor.formats.prometheus import render_textfile

        return render_textfile(report)
    raise ValueError(f"unknown output format {output!r}")
