"""`doctor scan`: the static pass."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"


def scan_command(
    paths: Annotated[Optional[List[Path]], typer.Argument(help="Files or directories to scan (default: the current directory).")] = None,
    *,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="Report format.")] = OutputFormat.text,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the report to this file instead of stdout.")] = None,
    select: Annotated[Optional[List[str]], typer.Option("--select", help="Only these rules (codes, prefixes like OSD3, or names; comma-separated).")] = None,
    extend_select: Annotated[Optional[List[str]], typer.Option("--extend-select", help="Add these rules to the selection (e.g. opt-in ones).")] = None,
    ignore: Annotated[Optional[List[str]], typer.Option("--ignore", help="Skip these rules.")] = None,
    config_file: Annotated[Optional[Path], typer.Option("--config", help="Read settings from this pyproject.toml only.")] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Apply safe fixes in place.")] = False,
    unsafe_fixes: Annotated[bool, typer.Option("--unsafe-fixes", help="With --fix or --diff: also apply fixes that may change behaviour.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Print the fixes as a unified diff; write nothing.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help="Worker processes (default: one per core).")] = None,
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="Exit 0 even when problems are found.")] = False,
    statistics: Annotated[bool, typer.Option("--statistics", help="Show counts per rule.")] = False,
    report_unused_ignores: Annotated[bool, typer.Option("--report-unused-ignores", help="List `# doctor: ignore` comments that silence nothing.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the findings, no hints.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More detail: configuration sources and timings.")] = False,
) -> None:
    """Find tracing mistakes in a repository without running it."""
    import time

    from otel_sqla_doctor import api

    started = time.perf_counter()
    targets = list(paths or [Path(".")])
    missing = [str(p) for p in targets if not p.exists()]
    if missing:
        from otel_sqla_doctor.errors import UsageError

        raise UsageError(f"no such file or directory: {missing[0]}")
    config = api.load_config(targets, config_file=config_file, select=select, extend_select=extend_select, ignore=ignore)
    # Given only files (pre-commit passes the changed ones), resolve names across their whole
    # project but report on those files alone.
    report_only = None
    scan_targets = targets
    if targets and all(p.is_file() for p in targets) and config.root is not None:
        report_only = targets
        scan_targets = [config.root]
    result = api.scan_paths(scan_targets, config=config, use_cache=not no_cache, jobs=jobs, report_only=report_only)

    result.show_unused_suppressions = report_unused_ignores

    if fix or diff:
        from otel_sqla_doctor.static.fixes import plan_fixes, unified_diff, write_fixes

        outcome = plan_fixes(result.findings, Path.cwd(), unsafe=unsafe_fixes)
        if diff:
            result.diff = unified_diff(outcome)
        else:
            write_fixes(outcome, Path.cwd(), [Path(t) for t in targets])
            if outcome.counts:
                result.fixed = dict(outcome.counts)
                # Report what is left after the fixes.
                result = _rescan_after_fix(api, scan_targets, config, no_cache, jobs, report_only, result)
        for path, reason in outcome.problems:
            typer.echo(f"doctor: {path}: {reason}", err=True)

    if diff:
        rendered = result.diff
    else:
        rendered = _render(result, output_format, output, quiet, verbose, statistics)
    if output is not None:
        from otel_sqla_doctor.report.atomic import write_report

        write_report(output, rendered)
    else:
        sys.stdout.write(rendered)
    if verbose:
        sources = ", ".join(config.sources) or "none"
        typer.echo(f"doctor: configuration: {sources}; root {config.root}; {time.perf_counter() - started:.2f}s", err=True)

    if diff:
        raise typer.Exit(1 if result.diff and not exit_zero else 0)
    unused = report_unused_ignores and bool(result.unused_suppressions)
    # Files that could not be read or parsed are problems too: never a silent green.
    raise typer.Exit(1 if (result.findings or unused or result.errors) and not exit_zero else 0)


def _rescan_after_fix(api, scan_targets, config, no_cache, jobs, report_only, previous):
    fixed = previous.fixed
    result = api.scan_paths(scan_targets, config=config, use_cache=not no_cache, jobs=jobs, report_only=report_only)
    result.fixed = fixed
    result.show_unused_suppressions = previous.show_unused_suppressions
    return result


def _render(result, output_format, output, quiet, verbose, statistics) -> str:
    if output_format == OutputFormat.json:
        from otel_sqla_doctor.report import json_report

        return json_report.render(result)
    if output_format == OutputFormat.sarif:
        from otel_sqla_doctor.report import sarif

        return sarif.render(result)
    if output_format == OutputFormat.github:
        from otel_sqla_doctor.report import github

        return github.render(result)
    from otel_sqla_doctor.report import text
    from otel_sqla_doctor.report.style import use_colour

    return text.render(result, colour=output is None and use_colour(sys.stdout), quiet=quiet, verbose=verbose, statistics=statistics)
