"""`python tests/spans/doctor_cli.py ARGS` runs `doctor spans` / `doctor trace` the way cli.py registers
them (same context settings, same error mapping), without importing the other commands. The real
`doctor` script is exercised by test_cli_installed.py."""

from __future__ import annotations

import sys

import typer

from otel_sqla_doctor.commands import spans
from otel_sqla_doctor.errors import DoctorError

app = typer.Typer(name="doctor", pretty_exceptions_enable=False, rich_markup_mode=None, add_completion=False)
app.command(name="spans")(spans.spans_command)
app.command(name="trace", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(spans.trace_command)


def main(argv: list[str] | None = None) -> int:
    try:
        # With standalone_mode=False click returns the exit code of typer.Exit instead of raising it.
        return app(args=argv, standalone_mode=False) or 0
    except typer.Exit as exc:
        return exc.exit_code
    except DoctorError as exc:
        typer.echo(f"doctor: error: {exc}", err=True)
        return exc.exit_code
    except Exception as exc:  # click's usage errors (typer vendors click, so match by shape)
        if not hasattr(exc, "format_message"):
            raise
        typer.echo(f"doctor: error: {exc.format_message()}", err=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
