"""The `doctor` command line: typer only. Each command lives in `otel_sqla_doctor.commands`.

Heavy packages (libcst, sqlalchemy, opentelemetry) are imported inside the command bodies, never
here, so that `doctor --help` stays fast.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from otel_sqla_doctor import __version__

app = typer.Typer(
    name="doctor",
    help="Finds and proves OpenTelemetry tracing mistakes in SQLAlchemy asyncio services.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"otel-sqla-doctor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version and exit."),
    ] = None,
) -> None:
    """Finds and proves OpenTelemetry tracing mistakes in SQLAlchemy asyncio services."""


def _register() -> None:
    from otel_sqla_doctor.commands import probe, rules, scan, spans

    app.command(name="scan")(scan.scan_command)
    app.command(name="rules")(rules.rules_command)
    app.command(name="explain")(rules.explain_command)
    app.command(name="probe")(probe.probe_command)
    app.command(name="spans")(spans.spans_command)
    app.command(
        name="trace",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(spans.trace_command)


_register()


def main() -> None:
    """Console-script entry point: maps our errors to one stderr line and exit codes."""
    from otel_sqla_doctor import interrupts
    from otel_sqla_doctor.errors import DoctorError

    try:
        code = app(standalone_mode=False)
        # typer turns KeyboardInterrupt into a silent exit code 130.
        if code == interrupts.EXIT_CODE and interrupts.requested():
            interrupts.exit_interrupted()
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except DoctorError as exc:
        typer.echo(f"doctor: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        interrupts.exit_interrupted()
    except Exception as exc:  # the click usage errors and anything unexpected
        try:  # typer >= 0.20 vendors click
            from typer import _click as click
        except ImportError:  # pragma: no cover
            import click

        exceptions = click.exceptions
        if isinstance(exc, getattr(exceptions, "NoArgsIsHelpError", ())):
            typer.echo(exc.format_message() if hasattr(exc, "format_message") else str(exc), err=True)
            sys.exit(2)
        if isinstance(exc, getattr(exceptions, "ClickException", ())):
            typer.echo(f"doctor: error: {exc.format_message()}", err=True)
            sys.exit(2)
        if isinstance(exc, getattr(exceptions, "Abort", ())) or type(exc).__name__ == "Abort":
            interrupts.exit_interrupted()
        typer.echo(f"doctor: internal error: {type(exc).__name__}: {exc} (please report this)", err=True)
        sys.exit(2)
