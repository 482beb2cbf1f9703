"""The default report: one line per finding, a hint under it, and a summary (doctor style)."""

from __future__ import annotations

from collections import Counter

from otel_sqla_doctor.findings import ScanResult
from otel_sqla_doctor.report.style import MARK_STYLES, MARKS, Style


def render(result: ScanResult, *, colour: bool = False, quiet: bool = False, verbose: bool = False, statistics: bool = False, show_fixes: bool = True) -> str:
    style = Style(colour)
    lines: list[str] = []
    for f in result.findings:
        mark = style(MARKS[f.severity.value], MARK_STYLES[f.severity.value])
        location = style(f"{f.path}:{f.line}:{f.column}", "bold")
        lines.append(f"{mark} {location}: {style(f.code, MARK_STYLES[f.severity.value], 'bold')} [{f.name}] {f.message}")
        if not quiet:
            if f.hint:
                lines.append(f"    {style('hint:', 'cyan')} {f.hint}")
            if f.fix is not None and show_fixes:
                kind = "fix" if f.fix.safe else "unsafe fix"
                lines.append(f"    {style(kind + ':', 'green' if f.fix.safe else 'yellow')} {f.fix.description}")
    for e in result.errors:
        lines.append(f"{style(MARKS['error'], 'red')} {style(e.path, 'bold')}: {style('error', 'red')}: {e.message}")
    for n in getattr(result, "notices", ()):
        lines.append(f"{style(MARKS['info'], 'cyan')} {style(n.path, 'bold')}: {style('notice', 'cyan')}: {n.message}")
    if result.show_unused_suppressions:
        for path, suppression in result.unused_suppressions:
            lines.append(f"{style(MARKS['info'], 'cyan')} {path}:{suppression.line}:{suppression.column}: unused suppression `{suppression.describe()}` silences nothing")
    if statistics and result.findings:
        lines.append("")
        counts = Counter((f.code, f.name) for f in result.findings)
        for (code, name), count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            lines.append(f"{count:5d}  {code}  {name}")
    if result.fixed:
        total = sum(result.fixed.values())
        lines.append(f"Fixed {total} problem{'s' if total != 1 else ''} in {len(result.fixed)} file{'s' if len(result.fixed) != 1 else ''}.")
    lines.append(summary_line(result, style))
    return "\n".join(lines) + "\n"


def summary_line(result: ScanResult, style: Style) -> str:
    files = len({f.path for f in result.findings})
    scanned = f"{result.files_scanned} file{'s' if result.files_scanned != 1 else ''} scanned"
    errors = f", {len(result.errors)} could not be read" if result.errors else ""
    notices = getattr(result, "notices", ())
    errors += f", {len(notices)} skipped as too large" if notices else ""
    if not result.findings and result.errors:
        # Never a green line over files that were not checked.
        return style(f"No problems found in the files that could be read ({scanned}{errors}).", "red")
    if not result.findings:
        return style(f"No problems found ({scanned}{errors}).", "green")
    n = len(result.findings)
    fixable = sum(1 for f in result.findings if f.fix is not None and f.fix.safe)
    unsafe = sum(1 for f in result.findings if f.fix is not None and not f.fix.safe)
    extra = ""
    if fixable:
        extra += f" {fixable} fixable with --fix."
    if unsafe:
        extra += f" {unsafe} more with --unsafe-fixes."
    text = f"{n} problem{'s' if n != 1 else ''} in {files} file{'s' if files != 1 else ''} ({scanned}{errors}).{extra}"
    return style(text, "red" if any(f.severity.value == "error" for f in result.findings) else "yellow")
