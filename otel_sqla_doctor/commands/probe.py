"""`doctor probe`: the live pass. Thin: parse options, call `otel_sqla_doctor.live.probe`, render.

SQLAlchemy and OpenTelemetry are imported inside the command, never at module level, so that
`doctor --help` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """While the user's code runs, whatever it prints (a ConsoleSpanExporter, say) goes to
    stderr, so that stdout carries only the report and `--format json` stays parseable."""
    saved = None
    try:
        if sys.stdout is sys.__stdout__ and sys.__stdout__ is not None and sys.__stdout__.fileno() == 1:
            sys.stdout.flush()
            saved = os.dup(1)
            os.dup2(2, 1)
    except (OSError, ValueError, AttributeError):
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def _selected_checks(select: Optional[list[str]]) -> Optional[frozenset[str]]:
    """The codes `--select` names (codes, code prefixes such as OSD50, or names), or None for
    all; a selector that names no check of the probe is a usage error, never an empty report."""
    if not select:
        return None
    from otel_sqla_doctor.errors import UsageError
    from otel_sqla_doctor.live.checks import ALL_CHECKS

    chosen: set[str] = set()
    for selector in (part.strip() for item in select for part in item.split(",")):
        if not selector:
            continue
        matched = {c.code for c in ALL_CHECKS if c.code.startswith(selector.upper()) or c.name == selector.lower()}
        if not matched:
            raise UsageError(f"--select: {selector!r} is not a check of the probe (its checks are {ALL_CHECKS[0].code}-{ALL_CHECKS[-1].code}; see `doctor rules`)")
        chosen |= matched
    return frozenset(chosen) if chosen else None


def probe_command(
    dsn: Annotated[
        Optional[str],
        typer.Argument(
            metavar="DSN",
            help="Async SQLAlchemy DSN, e.g. postgresql+asyncpg://user@host/db. Default: in-memory SQLite (sqlite+aiosqlite://).",
            show_default=False,
        ),
    ] = None,
    *,
    engine: Annotated[
        Optional[str],
        typer.Option(
            "--engine",
            metavar="MODULE:ATTR",
            help="Probe your own AsyncEngine instead: package.module:attribute (an engine, a bound async_sessionmaker or a "
            "factory), or with --app a path into the started app such as app.state.engine. Resolved after start-up; "
            "with --app and no --engine, the one AsyncEngine the app holds.",
            show_default=False,
        ),
    ] = None,
    app: Annotated[
        Optional[str],
        typer.Option(
            "--app",
            metavar="MODULE:APP",
            help="Your ASGI app (package.module:app), or its factory (package.module:create_app, called; awaited if async). "
            "Its lifespan startup runs before the probe and its shutdown after.",
            show_default=False,
        ),
    ] = None,
    setup: Annotated[
        Optional[str],
        typer.Option(
            "--setup",
            metavar="SETUP",
            help="Your tracing setup: package.module:callable (taking nothing, or the --app object), package.module "
            "(imported only), or path/to/file.py[:callable]. Runs before the engine is resolved.",
            show_default=False,
        ),
    ] = None,
    lifespan: Annotated[
        Optional[bool],
        typer.Option(
            "--lifespan/--no-lifespan",
            help="Run the app's ASGI lifespan startup before probing and its shutdown after (default: on with --app).",
            show_default=False,
        ),
    ] = None,
    app_dir: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--app-dir",
            metavar="PATH",
            help="A directory of the application, put first on sys.path (repeatable); the first is where its environment "
            "is looked for. Default: the current directory, and the project's src/ when it has one.",
            show_default=False,
        ),
    ] = None,
    python: Annotated[
        Optional[str],
        typer.Option(
            "--python",
            metavar="PYTHON",
            help="Run the checks in the application's interpreter (a path, a virtualenv directory or a name on PATH). "
            "Default: the active virtualenv, else the project's .venv/venv or Poetry env, else the doctor's own (the report says which).",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            help="Seconds allowed for connecting, for each statement, and for each step of your code (importing and "
            "running --setup, making --app, its lifespan startup and shutdown, importing and calling --engine); from 0.1 to 3600.",
        ),
    ] = 5.0,
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", "-f", metavar="FORMAT", help="Report format: text or json.", case_sensitive=False),
    ] = OutputFormat.text,
    select: Annotated[
        Optional[list[str]],
        typer.Option("--select", metavar="CODES", show_default=False, help="Report only these checks (OSD5xx codes, code prefixes or names; repeat or comma-separate)."),
    ] = None,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", metavar="PATH", help="Write the report to this file instead of stdout.", show_default=False),
    ] = None,
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="Exit 0 even when a check fails (a package the probe needs that is missing still exits 1, a usage error 2, an interrupt 130).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the checks that warned or failed, and the verdict: no banner, fixes or passed checks.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More detail: the interpreter that ran the checks and the time taken, on stderr.")] = False,
) -> None:
    """Connect, run a probe query through an instrumented engine, and check spans and SQL comments.

    The checks run in the application's interpreter, which --python names or the doctor finds;
    the report says which one, why, and its package versions.

    With --engine or --app, your code runs in a process of its own: an exception, a sys.exit() or
    a step that does not finish within --timeout is reported with the place in your code, and
    never ends or hangs the doctor.

    Exit codes: 0 nothing failed (warnings allowed; or --exit-zero), 1 a check failed (including: cannot connect)
    or a package the probe needs is missing from that interpreter, 2 usage error (unusable DSN,
    sync driver, bad --app/--engine/--setup reference, bad --python, your --app/--engine/--setup
    code raised, exited or did not finish within --timeout, its lifespan startup failed, no engine
    or several engines found).
    """
    import time

    started = time.perf_counter()
    from otel_sqla_doctor.live import choose_interpreter, probe
    from otel_sqla_doctor.live.report import render_json, render_text
    from otel_sqla_doctor.live.runner import validate_options
    from otel_sqla_doctor.report.style import Style, use_colour

    from otel_sqla_doctor.commands.options import refuse_quiet_and_verbose

    refuse_quiet_and_verbose(quiet, verbose)
    selected = _selected_checks(select)
    app_dirs = app_dir or None
    validate_options(dsn, engine, setup, app_dirs, timeout, app_ref=app, lifespan=lifespan)
    if output is not None:  # before the probe: a bad -o is a usage error, not a lost probe
        from otel_sqla_doctor.report.atomic import check_output

        check_output(output)
    # The first --app-dir is where the application's environment is looked for.
    interpreter = choose_interpreter(python, app_dir=app_dirs[0] if app_dirs else None)
    with _stdout_to_stderr() if engine or app else contextlib.nullcontext():
        report = probe(
            dsn, engine_ref=engine, setup_ref=setup, app_dir=app_dirs, timeout=timeout, python=interpreter, app_ref=app, lifespan=lifespan,
        )

    if selected is not None:
        import dataclasses

        report = dataclasses.replace(report, checks=tuple(c for c in report.checks if c.code in selected))
    style = Style(output is None and output_format is OutputFormat.text and use_colour(sys.stdout))
    content = render_json(report) if output_format is OutputFormat.json else render_text(report, style, quiet=quiet)
    if output is not None:
        from otel_sqla_doctor.report.atomic import write_report

        write_report(output, content)
    else:
        # Through sys.stdout itself (not click's echo, which swaps an ASCII stdout for UTF-8): a
        # stdout that cannot encode the marks prints ASCII ones (see `entry.use_ascii_fallback`).
        # Colour codes are only in `content` when style is on (a terminal, or FORCE_COLOR).
        sys.stdout.write(content)
        sys.stdout.flush()
    if verbose:
        typer.echo(f"doctor: probe: checks ran in {getattr(interpreter, 'python', interpreter)}; {time.perf_counter() - started:.2f}s", err=True)
    raise typer.Exit(0 if exit_zero else report.exit_code)
