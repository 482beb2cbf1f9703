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
    paths: Annotated[Optional[List[Path]], typer.Argument(metavar="PATH", help="Files or directories to scan (default: the current directory).", show_default=False)] = None,
    *,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", metavar="FORMAT", help="Report format: text, json, sarif or github.")] = OutputFormat.text,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", metavar="PATH", help="Write the report to this file instead of stdout.", show_default=False)] = None,
    select: Annotated[Optional[List[str]], typer.Option("--select", metavar="CODES", show_default=False, help="Only these rules (codes, prefixes like OSD3, or names; comma-separated).")] = None,
    extend_select: Annotated[Optional[List[str]], typer.Option("--extend-select", metavar="CODES", show_default=False, help="Add these rules to the selection (e.g. opt-in ones).")] = None,
    ignore: Annotated[Optional[List[str]], typer.Option("--ignore", metavar="CODES", show_default=False, help="Skip these rules.")] = None,
    config_file: Annotated[Optional[Path], typer.Option("--config", metavar="PATH", show_default=False, help="Read settings from this pyproject.toml only.")] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Apply safe fixes in place.")] = False,
    unsafe_fixes: Annotated[bool, typer.Option("--unsafe-fixes", help="With --fix or --diff: also apply fixes that may change behaviour.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Print the fixes as a unified diff; write nothing.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", metavar="N", min=1, show_default=False, help="Worker processes (default: one per core).")] = None,
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="Exit 0 even when problems are found.")] = False,
    statistics: Annotated[bool, typer.Option("--statistics", help="Show counts per rule.")] = False,
    report_unused_ignores: Annotated[bool, typer.Option("--report-unused-ignores", help="List `# doctor: ignore` comments that silence nothing.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the findings, no hints.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More detail: configuration sources and timings.")] = False,
) -> None:
    """Find tracing mistakes in a repository without running it.

    Exit codes: 0 no problems found (or --exit-zero); 1 problems found (findings, files that could
    not be read or parsed, fixes that could not be applied, a non-empty --diff); 2 usage or
    configuration error; 130 interrupted (Ctrl-C).
    """
    import time

    from otel_sqla_doctor import api

    started = time.perf_counter()
    _refuse_ignored_flags(output_format=output_format, fix=fix, diff=diff, unsafe_fixes=unsafe_fixes)
    targets = list(paths or [Path(".")])
    missing = [str(p) for p in targets if not p.exists()]
    if missing:
        from otel_sqla_doctor.errors import UsageError
        from otel_sqla_doctor.redact import mask_url  # a DSN pasted here by mistake stays masked

        raise UsageError(f"no such file or directory: {mask_url(missing[0])}")
    if output is not None:  # before the scan: a bad -o is a usage error, not a lost scan
        from otel_sqla_doctor.report.atomic import check_output

        check_output(output, inputs=[p for p in targets if p.is_file()])
    flags = dict(config_file=config_file, select=select, extend_select=extend_select, ignore=ignore)
    config = api.load_config(targets, **flags)
    if not config.enabled_codes():
        from otel_sqla_doctor.errors import UsageError

        raise UsageError("no rule is selected (see --select, --ignore and `select`/`ignore` in pyproject.toml): nothing would be checked")
    plan = _plan(api, targets, config, flags)

    def run_scans():
        results = [
            api.scan_paths(scan_targets, config=group_config, use_cache=not no_cache, jobs=jobs, report_only=report_only)
            for group_config, scan_targets, report_only in plan
        ]
        return _merge(results)

    result = run_scans()

    result.show_unused_suppressions = report_unused_ignores

    if fix or diff:
        from otel_sqla_doctor.static.fixes import plan_fixes, take_changed, unified_diff, write_fixes

        outcome = plan_fixes(result.findings, Path.cwd(), unsafe=unsafe_fixes, digests=result.digests)
        outcome.problems[:0] = take_changed(result)
        if diff:
            result.diff = unified_diff(outcome)
        else:
            write_fixes(outcome, Path.cwd(), [Path(t) for t in targets])
            if outcome.counts:
                result.fixed = dict(outcome.counts)
                # Report what is left after the fixes.
                result = _rescan_after_fix(run_scans, result)
        for path, reason in outcome.problems:
            typer.echo(f"doctor: {path}: {reason}", err=True)

    if not quiet:
        from otel_sqla_doctor.static.suppressions import known_codes, unknown_codes

        for line in unknown_codes(result.unused_suppressions, known_codes()):
            typer.echo(f"doctor: warning: {line}", err=True)

    if diff:
        rendered = result.diff
    else:
        rendered = _render(result, output_format, output, quiet, verbose, statistics)
    if output is not None:
        from otel_sqla_doctor.report.atomic import write_report

        # Never over a scanned source file (`doctor scan . -o app.py`) or the configuration read.
        write_report(output, rendered, inputs=[*map(Path, result.digests), *map(Path, config.sources)])
    else:
        sys.stdout.write(rendered)
    if verbose:
        sources = ", ".join(config.sources) or "none"
        typer.echo(f"doctor: configuration: {sources}; root {config.root}; {time.perf_counter() - started:.2f}s", err=True)

    if (fix or diff) and outcome.problems:
        raise typer.Exit(1)  # a file --fix was asked to change and did not: never a success
    if diff:
        raise typer.Exit(1 if result.diff and not exit_zero else 0)
    unused = report_unused_ignores and bool(result.unused_suppressions)
    if result.files_scanned == 0 and not result.errors:
        # A scan that read nothing (everything excluded, no Python files) is no success.
        typer.echo("doctor: no Python files were scanned (check the paths, `exclude` and `extend-exclude`)", err=True)
        raise typer.Exit(0 if exit_zero else 1)
    # Files that could not be read or parsed are problems too: never a silent green.
    raise typer.Exit(1 if (result.findings or unused or result.errors) and not exit_zero else 0)


def _refuse_ignored_flags(*, output_format, fix: bool, diff: bool, unsafe_fixes: bool) -> None:
    """A flag that would change nothing is a usage error, never silently dropped."""
    from otel_sqla_doctor.errors import UsageError

    if diff and output_format != OutputFormat.text:
        raise UsageError(f"--diff prints a unified diff, not a report: it cannot be combined with --format {output_format.value}")
    if unsafe_fixes and not (fix or diff):
        raise UsageError("--unsafe-fixes only applies with --fix or --diff (add one of them)")


def _plan(api, targets, config, flags) -> list:
    """(config, paths to scan, files to report on) per project. Given only files (pre-commit
    passes the changed ones), each file is scanned with its whole project, so names resolve across
    modules, and reported alone; files of several projects (a monorepo) are split by project."""
    if not targets or not all(p.is_file() for p in targets):
        return [(config, targets, None)]
    groups: dict = {}
    for target in targets:
        group_config = api.load_config([target], **flags)
        root = group_config.root or target.parent
        groups.setdefault(root, (group_config, []))[1].append(target)
    return [(group_config, [root], files) for root, (group_config, files) in groups.items()]


def _merge(results: list):
    if len(results) == 1:
        return results[0]
    from otel_sqla_doctor.findings import ScanResult

    merged = ScanResult(
        findings=sorted({f for r in results for f in r.findings}),
        files_scanned=sum(r.files_scanned for r in results),
        errors=sorted({e for r in results for e in r.errors}),
    )
    merged.unused_suppressions = [u for r in results for u in r.unused_suppressions]
    merged.digests = {path: digest for r in results for path, digest in r.digests.items()}
    merged.notices = sorted({n for r in results for n in r.notices})
    return merged


def _rescan_after_fix(run_scans, previous):
    fixed = previous.fixed
    result = run_scans()
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
