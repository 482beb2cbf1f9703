"""`doctor spans FILE...` and `doctor trace [--instrument] -- COMMAND...`: what the database did at run time.

Exit codes, like `doctor scan`: 0 nothing found, 1 findings, 2 usage error (bad option, unreadable or
unrecognised file). `doctor trace` first passes the command's own exit code through: when the
command fails, the doctor exits with its code; when it succeeds, with 0 or 1 as above.
"""

from __future__ import annotations

import contextlib
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from otel_sqla_doctor.commands.options import ExitZero, Quiet, refuse_quiet_and_verbose, verbose_option


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    summary = "summary"


_COMMAND_NOT_FOUND = 127  # the shell's exit code for a command that does not exist

_THRESHOLD_HELP = "OSD601: this many identical sibling statements under one parent make an N+1."
_LITERAL_HELP = "OSD602: this many distinct literal values in one statement shape mean interpolated SQL."
_GAP_HELP = "OSD605: a wait before the first query at least this long (ms) is a pool-wait candidate."
_SELECT_HELP = "Run only these checks (codes, code prefixes or names; repeat or comma-separate)."
_IGNORE_HELP = "Skip these checks (codes, code prefixes or names)."


def _emit(report, *, fmt: OutputFormat, html_path: Optional[Path], output: Optional[Path], verbose: bool, quiet: bool, title: str, stream) -> None:
    from otel_sqla_doctor.redact import mask_url  # span names and attributes may carry URLs with passwords
    from otel_sqla_doctor.report.atomic import write_report
    from otel_sqla_doctor.report.style import Style, use_colour
    from otel_sqla_doctor.spans.reporters import render_json, render_summary, render_text

    if html_path is not None:
        from otel_sqla_doctor.spans.reporters.html import render_html

        write_report(html_path, mask_url(render_html(report)), what="the HTML report")
    target = stream if output is None else None
    style = Style(use_colour(target) if target is not None else False)
    if fmt is OutputFormat.json:
        text = render_json(report)
    elif fmt is OutputFormat.summary:
        text = render_summary(report, style)
    else:
        text = render_text(report, style, verbose=verbose, title=title, quiet=quiet)
    text = mask_url(text)
    if output is not None:
        write_report(output, text)
    else:
        stream.write(text)
        stream.flush()


def _analyze(paths, *, n_plus_one_threshold, literal_threshold, pool_gap_ms, select, ignore, traces):
    from otel_sqla_doctor.spans import analyze_files

    return analyze_files(
        paths,
        n_plus_one_threshold=n_plus_one_threshold,
        literal_threshold=literal_threshold,
        pool_gap_ms=pool_gap_ms,
        select=select,
        ignore=ignore,
        max_traces=traces,
    )


def _refuse_an_empty_selection(select, ignore) -> None:
    """--select/--ignore that leave no check to run are a usage error (before any file is read or
    command run), never a green report over nothing: `--ignore OSD6`."""
    from otel_sqla_doctor.errors import UsageError
    from otel_sqla_doctor.spans.analysis import resolve_codes
    from otel_sqla_doctor.spans.detectors import ALL

    chosen, skipped = resolve_codes(select), resolve_codes(ignore)
    if not any((not chosen or d.CODE in chosen) and d.CODE not in skipped for d in ALL):
        raise UsageError("no check is selected (see --select and --ignore): nothing would be checked")


def _refuse_files_without_spans(report) -> None:
    """A span file with no span in it is an error, not a clean bill of health: the detectors
    would have checked nothing."""
    from otel_sqla_doctor.errors import UsageError

    empty = [f for f in report.files if f.spans == 0]
    if not empty:
        return
    more = f" (and {len(empty) - 1} more file(s) without spans)" if len(empty) > 1 else ""
    raise UsageError(f"{empty[0].path}: no spans in this file: {empty[0].why_empty or 'it holds no spans'}{more}")


def spans_command(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="Span files: OTLP JSON (lines or one document), console exporter output, or a Jaeger JSON export (gzipped or not); `-` reads stdin.", show_default=False)],
    *,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", metavar="FORMAT", help="Output format: text, json or summary.")] = OutputFormat.text,
    html: Annotated[Optional[Path], typer.Option("--html", metavar="PATH", show_default=False, help="Also write a self-contained HTML page with waterfalls of the worst traces.", dir_okay=False)] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", metavar="PATH", show_default=False, help="Write the report to this file instead of stdout.", dir_okay=False)] = None,
    n_plus_one_threshold: Annotated[int, typer.Option("--n-plus-one-threshold", metavar="N", help=_THRESHOLD_HELP, min=2)] = 5,
    literal_threshold: Annotated[int, typer.Option("--literal-threshold", metavar="N", help=_LITERAL_HELP, min=2)] = 3,
    pool_gap_ms: Annotated[float, typer.Option("--pool-gap-ms", metavar="MS", help=_GAP_HELP, min=0)] = 100.0,
    select: Annotated[Optional[list[str]], typer.Option("--select", metavar="CODES", show_default=False, help=_SELECT_HELP)] = None,
    ignore: Annotated[Optional[list[str]], typer.Option("--ignore", metavar="CODES", show_default=False, help=_IGNORE_HELP)] = None,
    traces: Annotated[int, typer.Option("--traces", metavar="N", help="How many of the worst traces to keep for the summary and HTML.", min=1)] = 20,
    exit_zero: ExitZero = False,
    quiet: Quiet = False,
    verbose: Annotated[bool, verbose_option("Show every finding and its details.")] = False,
) -> None:
    """Analyse exported spans: N+1 queries, interpolated SQL, doubled instrumentation, pool waits (OSD6xx).

    `-` reads spans from stdin, in any of the formats of a file (gzip too), and reports them as `-`:
    `kubectl logs app | doctor spans -`.

    Exit codes: 0 nothing found (or --exit-zero); 1 findings; 2 usage error (bad option,
    unreadable, empty or unrecognised file); 130 interrupted.
    """
    from otel_sqla_doctor.errors import UsageError

    refuse_quiet_and_verbose(quiet, verbose)
    _refuse_an_empty_selection(select, ignore)
    if sum(1 for path in files if str(path) == STDIN_NAME) > 1:
        raise UsageError("`-` (stdin) can be read only once")
    for path in files:
        if str(path) == STDIN_NAME:
            continue
        if path.is_dir():
            raise UsageError(f"{path} is a directory: give the span files themselves (e.g. {path}/*.jsonl)")
        if not path.is_file():
            from otel_sqla_doctor.redact import mask_url  # a URL pasted here by mistake stays masked

            raise UsageError(f"no such file: {mask_url(str(path))}")
    from otel_sqla_doctor.report.atomic import check_outputs

    # Never over a span file being read.
    check_outputs({"the report": output, "the HTML report": html}, inputs=[p for p in files if str(p) != STDIN_NAME])
    with _stdin_spooled(files) as (paths, rename):
        try:
            report = _analyze(
                paths,
                n_plus_one_threshold=n_plus_one_threshold,
                literal_threshold=literal_threshold,
                pool_gap_ms=pool_gap_ms,
                select=select,
                ignore=ignore,
                traces=traces,
            )
        except UsageError as exc:
            exc.args = (rename(str(exc)),)  # the spool's name never shows: it is `-`
            raise
    report = _renamed(report, rename)
    _refuse_files_without_spans(report)
    _emit(report, fmt=format, html_path=html, output=output, verbose=verbose, quiet=quiet, title="doctor spans", stream=sys.stdout)
    raise typer.Exit(0 if exit_zero else report.exit_code)


STDIN_NAME = "-"


@contextlib.contextmanager
def _stdin_spooled(files: list[Path]):
    """(paths to read, a function that names the spool `-` in text). The span readers read a file
    twice (its format, then its spans) and detect gzip by its magic bytes, so stdin is copied to
    a private temporary file first, which is removed afterwards."""
    if not any(str(p) == STDIN_NAME for p in files):
        yield list(files), lambda text: text
        return
    import shutil
    import tempfile

    from otel_sqla_doctor.errors import UsageError

    source = getattr(sys.stdin, "buffer", sys.stdin)
    if source is None:
        raise UsageError("`-` reads spans from stdin, and there is no stdin")
    workdir = Path(tempfile.mkdtemp(prefix="doctor-spans-"))
    spool = workdir / "stdin"
    try:
        with open(spool, "wb") as target:
            if isinstance(source.read(0), str):  # a text stdin (tests): its characters, as UTF-8
                target.write(source.read().encode("utf-8"))
            else:
                shutil.copyfileobj(source, target)

        def rename(text: str) -> str:
            return text.replace(str(spool), STDIN_NAME)

        yield [spool if str(p) == STDIN_NAME else p for p in files], rename
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _renamed(report, rename):
    """The report with the stdin spool's path shown as `-`."""
    import dataclasses

    files = tuple(dataclasses.replace(f, path=rename(f.path), warnings=tuple(map(rename, f.warnings))) for f in report.files)
    return dataclasses.replace(report, files=files)


def trace_command(
    ctx: typer.Context,
    *,
    instrument: Annotated[bool, typer.Option("--instrument", help="Also install a TracerProvider and instrument SQLAlchemy correctly (sqlalchemy.ext.asyncio imported before instrument()).")] = False,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", metavar="FORMAT", help="Output format of the analysis: text, json or summary.")] = OutputFormat.text,
    html: Annotated[Optional[Path], typer.Option("--html", metavar="PATH", show_default=False, help="Also write a self-contained HTML page with waterfalls of the worst traces.", dir_okay=False)] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", metavar="PATH", show_default=False, help="Write the analysis to this file instead of stderr.", dir_okay=False)] = None,
    save_spans: Annotated[Optional[Path], typer.Option("--save-spans", metavar="PATH", show_default=False, help="Keep the recorded spans (OTLP JSON lines) in this file, for `doctor spans` later.", dir_okay=False)] = None,
    n_plus_one_threshold: Annotated[int, typer.Option("--n-plus-one-threshold", metavar="N", help=_THRESHOLD_HELP, min=2)] = 5,
    literal_threshold: Annotated[int, typer.Option("--literal-threshold", metavar="N", help=_LITERAL_HELP, min=2)] = 3,
    pool_gap_ms: Annotated[float, typer.Option("--pool-gap-ms", metavar="MS", help=_GAP_HELP, min=0)] = 100.0,
    select: Annotated[Optional[list[str]], typer.Option("--select", metavar="CODES", show_default=False, help=_SELECT_HELP)] = None,
    ignore: Annotated[Optional[list[str]], typer.Option("--ignore", metavar="CODES", show_default=False, help=_IGNORE_HELP)] = None,
    traces: Annotated[int, typer.Option("--traces", metavar="N", help="How many of the worst traces to keep for the summary and HTML.", min=1)] = 20,
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="Exit 0 even when findings are found; a failing command's own exit code still passes through.")] = False,
    quiet: Quiet = False,
    verbose: Annotated[bool, verbose_option("Show every finding and its details.")] = False,
) -> None:
    """Run a command (after --) with every span recorded, then analyse them.

    The command's stdin, stdout, stderr and exit code pass through unchanged; the analysis goes to
    stderr after it ends (or to --output). Python processes started by the command record too.
    Example: doctor trace --instrument -- pytest -x tests/

    Exit codes: the command's own when it fails (also with --exit-zero: wrapping a test run must
    not hide its failure); else 0 nothing found (or --exit-zero), 1 findings; 2 usage error;
    127 the command was not found; 130 interrupted.
    """
    from otel_sqla_doctor.errors import UsageError
    from otel_sqla_doctor.spans.runner import run_traced

    refuse_quiet_and_verbose(quiet, verbose)
    _refuse_an_empty_selection(select, ignore)  # before the command runs
    command = list(ctx.args)
    if not command:
        raise UsageError("no command to run; put it after --, e.g. `doctor trace --instrument -- python app.py`")
    from otel_sqla_doctor.report.atomic import check_outputs

    # Before the command runs: a bad output path must not cost (or repeat) the user's run.
    check_outputs({"the report": output, "the HTML report": html, "the recorded spans": save_spans})
    try:
        outcome = run_traced(command, instrument=instrument, save_spans=save_spans)
    except UsageError as exc:
        if str(exc).startswith("command not found:"):
            exc.exit_code = _COMMAND_NOT_FOUND  # as a shell says it: `doctor trace -- typo` is no usage error of ours
        raise
    try:
        report = _analyze(
            outcome.span_files,
            n_plus_one_threshold=n_plus_one_threshold,
            literal_threshold=literal_threshold,
            pool_gap_ms=pool_gap_ms,
            select=select,
            ignore=ignore,
            traces=traces,
        )
    finally:
        outcome.cleanup()
    report = outcome.annotate(report, instrument=instrument)
    _emit(report, fmt=format, html_path=html, output=output, verbose=verbose, quiet=quiet, title="doctor trace", stream=sys.stderr)
    raise typer.Exit(outcome.returncode if outcome.returncode != 0 else (0 if exit_zero else report.exit_code))
