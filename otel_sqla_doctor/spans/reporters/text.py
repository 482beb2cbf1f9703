"""Doctor-style text: one line per check with a mark, the evidence and the fix under each finding."""

from __future__ import annotations

from otel_sqla_doctor.report.style import MARK_STYLES, MARKS, Style
from otel_sqla_doctor.spans.detectors import BY_CODE
from otel_sqla_doctor.spans.model import SpanReport


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render_text(report: SpanReport, style: Style, *, verbose: bool = False, title: str = "doctor spans", quiet: bool = False) -> str:
    """`quiet` (-q): only failed checks, their findings, errors and the verdict; no banner, file
    warnings, passed checks, fixes or notes."""
    lines: list[str] = []
    stats = report.stats
    formats = ", ".join(sorted({f.format for f in report.files})) or "-"
    if not quiet:
        lines.append(
            style(title, "bold")
            + f": {_plural(len(report.files), 'file')} ({formats}), {_plural(stats.spans, 'span')} in "
            + f"{_plural(stats.traces, 'trace')}, {_plural(stats.db_spans, 'database span')}"
            + (f", {stats.unended_spans} never ended" if stats.unended_spans else "")
        )
    for file in () if quiet else report.files:
        for warning in file.warnings:
            lines.append(style(f"    {file.path}: {warning}", "dim"))
    by_code: dict[str, list] = {}
    for finding in report.findings:
        by_code.setdefault(finding.code, []).append(finding)
    for error in report.errors:
        lines.append(f"{style(MARKS['fail'], MARK_STYLES['fail'])} {error}")
    failed = 0
    if report.checks and not report.checked:  # no ✓ for checks that had nothing to look at
        lines.append(f"{style(MARKS['skip'], MARK_STYLES['skip'])} {_plural(len(report.checks), 'check')} had no spans to look at")
    for code, name in report.checks if report.checked else ():
        findings = by_code.get(code, [])
        if not findings:
            if quiet:
                continue
            lines.append(f"{style(MARKS['pass'], MARK_STYLES['pass'])} {code} {name}")
            continue
        failed += 1
        severity = findings[0].severity
        mark = style(MARKS[severity], MARK_STYLES[severity])
        lines.append(f"{mark} {code} {name}: {_plural(len(findings), 'pattern')}")
        shown = findings if verbose else findings[:5]
        for finding in shown:
            where = f" (in {_plural(finding.occurrences, 'place')})" if finding.occurrences > 1 else ""
            lines.append(f"    • {finding.message}{where}")
            if finding.trace_id:
                span = f" span {finding.span_id}" if finding.span_id else ""
                lines.append(style(f"      trace {finding.trace_id}{span}", "dim"))
            if verbose:
                for key, value in finding.details.items():
                    if key in ("span_ids", "trace_ids"):
                        continue
                    lines.append(style(f"      {key}: {value}", "dim"))
        if len(findings) > len(shown):
            lines.append(style(f"    … and {len(findings) - len(shown)} more (-v shows all)", "dim"))
        if not quiet:
            lines.append(f"    {style('fix:', 'cyan')} {BY_CODE[code].FIX if code in BY_CODE else findings[0].fix}")
    for note in () if quiet else report.notes:
        lines.append(f"{style(MARKS['info'], MARK_STYLES['info'])} {note}")
    if failed:
        total = len(report.findings)
        lines.append(style(f"found issues in {_plural(failed, 'check')} ({_plural(total, 'finding')})", "bold"))
    elif not report.checked:
        lines.append(style("nothing was checked: no spans", "bold"))
    elif report.errors:
        lines.append(style("no issues found in the spans that were recorded", "bold"))
    else:
        lines.append(style("no issues found", "bold"))
    return "\n".join(lines) + "\n"


def render_summary(report: SpanReport, style: Style) -> str:
    """One line per trace (the worst first): id, root span, spans, database spans and time, codes."""
    lines = []
    for trace in report.traces:
        codes = ",".join(trace.codes) if trace.codes else style("ok", "green")
        lines.append(
            f"{trace.trace_id}  {trace.root[:40]:<40}  {trace.spans:>5} spans  {trace.db_spans:>5} db  "
            f"{trace.db_ms:>9.2f} ms db  {trace.duration_ms:>9.2f} ms  {codes}"
        )
    shown = len(report.traces)
    lines.append(
        style(
            f"{shown} of {report.stats.traces} traces shown (those with database work or findings, worst first); "
            f"{_plural(len(report.findings), 'finding')}",
            "dim",
        )
    )
    lines.extend(f"{style(MARKS['fail'], MARK_STYLES['fail'])} {error}" for error in report.errors)
    if not report.checked:
        lines.append(style("nothing was checked: no spans", "bold"))
    return "\n".join(lines) + "\n"
