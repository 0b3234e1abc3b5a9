"""Turning a report into text: a table for people, JSON or YAML for scripts (docs/output.md)."""

from __future__ import annotations

import json
import os
import re
import shutil
import textwrap
from typing import Any, TextIO

from registry_doctor.doctor.model import CheckMeta, Report, Status

# Formats for tools (doctor/formats): CI (junit), code scanning (sarif), monitoring plugins
# (nagios) and node_exporter's textfile collector (prometheus).
TOOL_FORMATS = ("junit", "sarif", "nagios", "prometheus")
DATA_FORMATS = ("table", "json", "yaml")
FORMATS = DATA_FORMATS + TOOL_FORMATS
_COLORS = {Status.OK: "32", Status.WARN: "33", Status.CRIT: "31", Status.UNKNOWN: "35",
           Status.SKIP: "2", Status.ACKNOWLEDGED: "36"}
_LABELS = {Status.ACKNOWLEDGED: "ACKED"}  # the status column is 7 wide
# Control and format characters (ANSI escapes, carriage returns, bidi overrides) in evidence
# would repaint or reorder the terminal; they are shown escaped.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e"
                          r"\u2066-\u2069\ufeff]")
_EXIT_WORDS = {0: "ok", 1: "warn", 2: "crit", 3: "unknown"}


def use_color(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def render(report: Report, output: str, color: bool = False) -> str:
    if output in TOOL_FORMATS:
        from registry_doctor.doctor.formats import render_for_tool

        return render_for_tool(report, output)
    if output == "json":
        return json.dumps(report.to_dict(), indent=2) + "\n"
    if output == "yaml":
        import yaml

        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: 10x faster
        return yaml.dump(report.to_dict(), Dumper=dumper, sort_keys=False, allow_unicode=True)
    return render_table(report, color)


def _paint(text: str, status: Status, color: bool) -> str:
    return f"\033[{_COLORS[status]}m{text}\033[0m" if color else text


def terminal_width() -> int:
    """Columns to wrap at: the terminal's (or $COLUMNS), 100 when not a terminal."""
    return max(shutil.get_terminal_size((100, 24)).columns, 40)


def printable(text: str) -> str:
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text.replace("\t", " "))


def one_line(text: str) -> str:
    """`printable`, its line breaks shown escaped: one item, one line."""
    return printable(text).replace("\n", "\\n")


def _fill(text: str, first: str, rest: str) -> list[str]:
    """`text` wrapped to the terminal, every line of it indented."""
    return textwrap.wrap(printable(text), terminal_width(), initial_indent=first,
                         subsequent_indent=rest, break_on_hyphens=False) or [first.rstrip()]


def render_table(report: Report, color: bool) -> str:
    width = max((len(r.check) for r in report.results), default=5)
    lines = [*_fill(_source_line(report), "", "  "), ""]
    for problem in report.input_problems:
        lines += _fill(f"input problem: {problem}", "", "  ")
    indent = " " * 10
    for result in report.results:
        label = f"{_LABELS.get(result.status, result.status.value.upper()):<7}"
        head = _fill(f"{label} {result.check:<{width}}  {result.summary}", "",
                     " " * (width + 10))
        lines += [_paint(head[0][:7], result.status, color) + head[0][7:], *head[1:]]
        if result.acknowledgement:
            ack = result.acknowledgement
            lines += _fill(f"acknowledged {ack.status.value} until {ack.until}"
                           + (f" by {ack.by}" if ack.by else "") + f": {ack.reason} "
                           f"({ack.source})", indent, indent + "  ")
        if result.status not in (Status.OK, Status.SKIP):
            for detail in result.details:
                lines += _fill(detail, indent + "- ", indent + "  ")
            if result.remediation:
                lines += _fill(f"fix: {result.remediation.summary}", indent, indent + "  ")
                lines.append(f"{indent}docs: {result.remediation.docs}")
        for action in result.remediation.actions if result.remediation else ():
            lines.extend(_action_lines(action, indent))
    lines.extend(_fix_lines(report.fix))
    counts = ", ".join(f"{n} {s}" for s, n in report.counts.items() if n)
    lines += ["", f"{counts or 'no checks'}; exit code {report.exit_code} "
              f"({_EXIT_WORDS.get(report.exit_code, '')})"]
    return "\n".join(lines) + "\n"


def _action_lines(action: dict[str, Any], indent: str) -> list[str]:
    """A planned action (docs/remediation.md): what, risk, state and why, steps, the diff."""
    redeploy = action.get("redeploy")
    then = f", then redeploy {redeploy['kind'].lower()}/{redeploy['name']}" \
        if redeploy and action["operation"] != "redeploy" else ""
    head = (f"{action['state']} [{action['risk']}{', optional' if action['optional'] else ''}]"
            f" {action['id']}: {action['summary']}{then} (rbac {action['rbac']['verdict']})")
    lines = _fill(head, indent + "* ", indent + "    ")
    extra = [action["message"]] if action["message"] else []
    for text in (extra + [f"note: {n}" for n in action["notes"]]
                 + [f"step: {s}" for s in action["steps"]]):
        lines += _fill(text, indent + "    ", indent + "      ")
    for line in action["diff"].splitlines():
        lines += _fill(line, indent + "    ", indent + "    ")
    return lines


def _fix_lines(fix: dict[str, Any] | None) -> list[str]:
    if not fix:
        return []
    lines = ["", f"fix: {fix['mode']}" + (f", run {fix['run']}" if fix.get("run") else "")
             + (f" ({fix['note']})" if fix.get("note") else "")]
    lease = fix.get("lease") or {}
    if lease.get("error"):
        lines.append(f"  not applied: the run lock could not be taken: {lease['error']}")
    elif lease and not lease.get("acquired"):
        lines.append(f"  not applied: another run holds the lock: {lease.get('holder')}")
    dry_run = fix.get("dryRun") or {}
    if dry_run.get("server") is False:
        lines.append(f"  server dry run not used: {dry_run.get('reason')}; the diffs shown are "
                     "computed client-side")
    lines += [f"  recovered: {line}" for line in fix.get("recovered", [])]
    lines += [f"  rollout {r['rollout']}: {r['phase']}: {r['message']}"
              for r in fix.get("rollouts", [])]
    lines += [f"  {', '.join(u['checks'])}: {u['state']}: {u['message']}"
              for u in fix.get("units", [])]
    denied = [m for m in fix.get("machinery", []) if not m["allowed"]]
    lines += [f"  registry-doctor may not {m['verb']} {m['resource']} in {m['namespace']}"
              for m in denied]
    if fix.get("interrupted"):
        lines.append(f"  interrupted: {fix['interrupted']}")
    return lines


def _source_line(report: Report) -> str:
    source = report.source
    if source.get("type") == "dump":
        origin = f"dump {source.get('path')}"
    elif source.get("type") == "url":
        return f"registry-doctor: registry {source.get('url')}, {report.generated}"
    else:
        origin = f"cluster {source.get('server', '?')} (context {source.get('context') or '-'})"
    return (f"registry-doctor: {origin}, namespace {source.get('namespace')}, "
            f"registry {source.get('registry')}, {report.generated}")


def meta_document(meta: CheckMeta) -> dict[str, Any]:
    """A check's metadata for `list -o json` and `explain -o json`."""
    return {"id": meta.id, "title": meta.title, "severity": meta.severity.value,
            "reads": list(meta.kinds), "probes": list(meta.probes), "optIn": meta.opt_in,
            "platforms": list(meta.platforms),
            "options": [{"flag": o.flag, "help": o.help, "fix": o.fix, "default": o.default}
                        for o in meta.options],
            "description": meta.description,
            "remediation": meta.remediation_for(), "docs": meta.docs}


def render_meta_list(metas: list[CheckMeta]) -> str:
    width = max(len(m.id) for m in metas)
    rows = [f"{'ID':<{width}}  {'SEVERITY':<8}  TITLE"]
    rows += [f"{m.id:<{width}}  {m.severity.value:<8}  {m.title}"
             + ("  (opt-in: --" + m.opt_in.replace("_", "-") + ")" if m.opt_in else "")
             for m in metas]
    return "\n".join(rows) + "\n"


def render_explain(meta: CheckMeta) -> str:
    probes = ", ".join(meta.probes) or "none"
    return "\n".join([
        *_fill(f"{meta.id}: {meta.title}", "", "  "),
        f"severity when failing: {meta.severity.value}",
        *_fill(f"reads: {', '.join(meta.kinds)}", "", "  "),
        *_fill(f"live probes: {probes}", "", "  "),
        *_fill(f"platforms: {meta.platforms_line}", "", "  "),
        *(line for o in meta.options for line in _fill(f"option {o.line}", "", "  ")),
        "",
        *_fill(meta.description, "", ""),
        "",
        *_fill("Remediation: " + meta.remediation_for(), "", ""),
        "",
        f"Docs: {meta.docs}",
    ]) + "\n"
