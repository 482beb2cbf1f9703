"""`doctor rules` and `doctor explain CODE`: the rule docs, from the rules themselves."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer


def rules_command(
    *,
    output_format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
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
    code: Annotated[str, typer.Argument(help="A rule code (OSD301) or name (interpolated-sql).")],
) -> None:
    """Show the full documentation of one rule."""
    from otel_sqla_doctor.docs import explain, find_check
    from otel_sqla_doctor.errors import UsageError

    if find_check(code) is None:
        raise UsageError(f"unknown rule {code!r} (see `doctor rules`)")
    sys.stdout.write(explain(code))
    raise typer.Exit(0)
