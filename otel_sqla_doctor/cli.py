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


def _plain_argument_metavars() -> None:
    """typer prints an argument's Python type after its name (`PATH <list[Path]>`); an argument
    that names its metavar (every one of ours does) shows that alone, as options do."""
    try:
        from typer.core import TyperArgument
    except ImportError:  # pragma: no cover
        return
    original = getattr(TyperArgument, "display_type_rich", None)
    if original is None or getattr(original, "_doctor_plain", False):
        return

    def display_type_rich(self, ctx):
        return None if self.metavar is not None else original(self, ctx)

    display_type_rich._doctor_plain = True
    TyperArgument.display_type_rich = display_type_rich


_plain_argument_metavars()


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
        options_metavar="[OPTIONS] -- COMMAND [ARGS]...",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(spans.trace_command)


_register()


def _say(line: str) -> None:
    """One line on stderr; a stderr that cannot be written to (a full disk) costs the line only."""
    try:
        typer.echo(line, err=True)
    except (OSError, ValueError):
        pass


def _output_failure(exc: OSError) -> str | None:
    """The one line for an OSError that writing the output raised (stdout on a full disk, a
    closed pipe), or None when it is not one. Errors about a named file carry its name and are
    reported where they happen."""
    import errno

    if isinstance(exc, BrokenPipeError):
        return ""  # `doctor ... | head`: the reader has gone, as with any Unix tool say nothing
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) and not exc.filename:
        return f"doctor: error: cannot write the output: {exc.strerror or exc}"
    return None


def _abandon_stdout() -> None:
    """Point fd 1 at /dev/null, so that the interpreter's last flush of what is still buffered
    for a broken stdout neither fails again nor prints "Exception ignored"."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _flush_stdout() -> None:
    if sys.stdout is not None:
        sys.stdout.flush()


def main() -> None:
    """Console-script entry point: maps our errors to one stderr line and exit codes."""
    from otel_sqla_doctor import interrupts
    from otel_sqla_doctor.errors import DoctorError

    try:
        code = app(standalone_mode=False)
        # typer turns KeyboardInterrupt into a silent exit code 130.
        if code == interrupts.EXIT_CODE and interrupts.requested():
            interrupts.exit_interrupted()
        _flush_stdout()  # a full disk shows here, not as "Exception ignored" at exit
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        _flush_stdout()
        sys.exit(exc.exit_code)
    except DoctorError as exc:
        _say(f"doctor: error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        interrupts.exit_interrupted()
    except Exception as exc:  # the click usage errors and anything unexpected
        _unexpected(exc)


def _unexpected(exc: Exception) -> None:
    from otel_sqla_doctor import interrupts

    if isinstance(exc, OSError):
        failure = _output_failure(exc)
        if failure is not None:
            _abandon_stdout()
            if failure:
                _say(failure)
            sys.exit(2 if failure else 1)
    try:  # typer >= 0.20 vendors click
        from typer import _click as click
    except ImportError:  # pragma: no cover
        import click

    exceptions = click.exceptions
    if isinstance(exc, getattr(exceptions, "NoArgsIsHelpError", ())):
        _say(exc.format_message() if hasattr(exc, "format_message") else str(exc))
        sys.exit(2)
    if isinstance(exc, getattr(exceptions, "ClickException", ())):
        _say(f"doctor: error: {exc.format_message()}")
        sys.exit(2)
    if isinstance(exc, getattr(exceptions, "Abort", ())) or type(exc).__name__ == "Abort":
        interrupts.exit_interrupted()
    _say(f"doctor: internal error: {type(exc).__name__}: {exc} (please report this)")
    sys.exit(2)
