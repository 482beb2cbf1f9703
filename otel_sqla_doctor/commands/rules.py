"""`doctor rules` and `doctor explain CODE`: the rule docs, from the rules themselves."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer


def rules_command(
    *,
    output_format: Annotated[str, typer.Option("--format", "-f", metavar="FORMAT", help="Output format: text or json.")] = "text",
) -> None:
    """List every rule (and the probe's checks and span detectors): code, name, family, fix, default."""
    from otel_sqla_doctor.docs import all_rows

    rows = all_rows()
    if output_format == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        raise typer.Exit(0)
    if output_format != "text":
        from otel_sqla_doctor.errors import UsageError

        raise UsageError(f"--format: expected text or json, got {output_format!r}")
    headers = ("code", "name", "family", "severity", "fix", "default")
    table = [headers] + [tuple(str(r[h]) for h in headers) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    for i, row in enumerate(table):
        sys.stdout.write("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip() + "\n")
        if i == 0:
            sys.stdout.write("  ".join("-" * w for w in widths) + "\n")
    raise typer.Exit(0)


def explain_command(
    code: Annotated[str, typer.Argument(metavar="CODE", show_default=False, help="A rule code (OSD301) or name (interpolated-sql).")],
    *,
    output_format: Annotated[str, typer.Option("--format", "-f", metavar="FORMAT", help="Output format: text or json.")] = "text",
) -> None:
    """Show the full documentation of one rule."""
    from otel_sqla_doctor.docs import all_rows, explain, find_check
    from otel_sqla_doctor.errors import UsageError

    if output_format not in ("text", "json"):
        raise UsageError(f"--format: expected text or json, got {output_format!r}")
    check = find_check(code)
    if check is None:
        raise UsageError(f"unknown rule {code!r} (see `doctor rules`)")
    if output_format == "json":
        from otel_sqla_doctor import __version__

        resolved = check["code"] if isinstance(check, dict) else check.CODE
        row = next((r for r in all_rows() if r["code"] == resolved), {"code": resolved})
        data = {"version": __version__, **row, "explanation": explain(code)}
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        raise typer.Exit(0)
    sys.stdout.write(explain(code))
    raise typer.Exit(0)
