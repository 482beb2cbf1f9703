"""`doctor rules` and `doctor explain CODE`: the rule docs, from the rules themselves."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from otel_sqla_doctor.commands.options import Output

_FORMAT_HELP = "Output format: text or json."


def _check_format(output_format: str) -> None:
    if output_format not in ("text", "json"):
        from otel_sqla_doctor.errors import UsageError

        raise UsageError(f"--format: expected text or json, got {output_format!r}")


def _write(text: str, output: Optional[Path]) -> None:
    if output is not None:
        from otel_sqla_doctor.report.atomic import write_report

        write_report(output, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _envelope(**payload) -> str:
    """The JSON envelope of every command: the doctor's version (a string), then the payload."""
    from otel_sqla_doctor import __version__

    return json.dumps({"version": __version__, **payload}, indent=2, ensure_ascii=False) + "\n"


def rules_command(
    *,
    output_format: Annotated[str, typer.Option("--format", "-f", metavar="FORMAT", help=_FORMAT_HELP)] = "text",
    output: Output = None,
) -> None:
    """List every rule (and the probe's checks and span detectors): code, name, family, fix, default.

    JSON: {"version": the doctor's version, "rules": [{"code", "name", "family", "severity", "fix",
    "default", "summary"}, ...]}.
    """
    from otel_sqla_doctor.docs import all_rows

    _check_format(output_format)
    if output is not None:
        from otel_sqla_doctor.report.atomic import check_output

        check_output(output)
    rows = all_rows()
    if output_format == "json":
        _write(_envelope(rules=rows), output)
        raise typer.Exit(0)
    headers = ("code", "name", "family", "severity", "fix", "default")
    table = [headers] + [tuple(str(r[h]) for h in headers) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for i, row in enumerate(table):
        lines.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    _write("\n".join(lines) + "\n", output)
    raise typer.Exit(0)


def explain_command(
    code: Annotated[str, typer.Argument(metavar="CODE", show_default=False, help="A rule code (OSD301) or name (interpolated-sql).")],
    *,
    output_format: Annotated[str, typer.Option("--format", "-f", metavar="FORMAT", help=_FORMAT_HELP)] = "text",
    output: Output = None,
) -> None:
    """Show the full documentation of one rule.

    The documentation is Markdown: rendered on a terminal, printed as plain Markdown into a pipe
    or a file (-o). JSON: {"version", "code", "name", "family", "severity", "fix", "default",
    "summary", "explanation"}.
    """
    from otel_sqla_doctor.docs import all_rows, explain, find_check
    from otel_sqla_doctor.errors import UsageError

    _check_format(output_format)
    check = find_check(code)
    if check is None:
        raise UsageError(f"unknown rule {code!r} (see `doctor rules`)")
    if output is not None:
        from otel_sqla_doctor.report.atomic import check_output

        check_output(output)
    if output_format == "json":
        resolved = check["code"] if isinstance(check, dict) else check.CODE
        row = next((r for r in all_rows() if r["code"] == resolved), {"code": resolved})
        _write(_envelope(**row, explanation=explain(code)), output)
        raise typer.Exit(0)
    text = explain(code)
    if output is None and _renders_markdown(sys.stdout) and _print_markdown(text):
        raise typer.Exit(0)
    _write(text, output)
    raise typer.Exit(0)


def _renders_markdown(stream) -> bool:
    """Markdown is rendered for a person at a terminal; a pipe, a file or TERM=dumb gets it plain."""
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


def _print_markdown(text: str) -> bool:
    """Render `text` with rich (typer's own dependency); False when rich is not there."""
    try:
        from rich.console import Console
        from rich.markdown import Markdown
    except ImportError:
        return False
    console = Console(file=sys.stdout, highlight=False, soft_wrap=False)
    console.print(Markdown(text, code_theme="ansi_dark", hyperlinks=False))
    sys.stdout.flush()
    return True
