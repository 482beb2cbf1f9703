"""`doctor scan`: the static pass."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from otel_sqla_doctor.commands.options import ExitZero, Quiet, refuse_quiet_and_verbose, verbose_option


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"


def scan_command(
    paths: Annotated[Optional[List[Path]], typer.Argument(metavar="PATH", help="Files or directories to scan (default: the current directory); `-` reads one source file from stdin.", show_default=False)] = None,
    *,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", metavar="FORMAT", help="Report format: text, json, sarif or github.")] = OutputFormat.text,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", metavar="PATH", help="Write the report to this file instead of stdout.", show_default=False)] = None,
    select: Annotated[Optional[List[str]], typer.Option("--select", metavar="CODES", show_default=False, help="Only these rules (codes, prefixes like OSD3, or names; comma-separated).")] = None,
    extend_select: Annotated[Optional[List[str]], typer.Option("--extend-select", metavar="CODES", show_default=False, help="Add these rules to the selection (e.g. opt-in ones).")] = None,
    ignore: Annotated[Optional[List[str]], typer.Option("--ignore", metavar="CODES", show_default=False, help="Skip these rules.")] = None,
    config_file: Annotated[Optional[Path], typer.Option("--config", metavar="PATH", show_default=False, help="Read settings from this pyproject.toml only.")] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Apply safe fixes in place (with `-`: print the fixed source to stdout, the report to stderr).")] = False,
    unsafe_fixes: Annotated[bool, typer.Option("--unsafe-fixes", help="With --fix or --diff: also apply fixes that may change behaviour.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Print the fixes as a unified diff; write nothing.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", metavar="N", min=1, show_default=False, help="Worker processes (default: one per core).")] = None,
    exit_zero: ExitZero = False,
    statistics: Annotated[bool, typer.Option("--statistics", help="Show counts per rule.")] = False,
    report_unused_ignores: Annotated[bool, typer.Option("--report-unused-ignores", help="List `# doctor: ignore` comments that silence nothing.")] = False,
    stdin_filename: Annotated[
        Optional[Path],
        typer.Option(
            "--stdin-filename",
            metavar="PATH",
            show_default=False,
            help="The file the source read from stdin (`-`) stands for: its name in the report, where the configuration "
            "is found, its path role, and the project its imports resolve in. It need not exist.",
        ),
    ] = None,
    quiet: Quiet = False,
    verbose: Annotated[bool, verbose_option("More detail: configuration sources and timings.")] = False,
) -> None:
    """Find tracing mistakes in a repository without running it.

    `doctor scan -` reads one source file from stdin (as ruff): give its path with
    --stdin-filename (else it is reported as `-`). With --fix, the fixed source goes to stdout and
    the report to stderr (or --output); --diff prints the diff against it.

    Exit codes: 0 no problems found (or --exit-zero); 1 problems found (findings, files that could
    not be read or parsed, fixes that could not be applied, a non-empty --diff, no file scanned);
    2 usage or configuration error; 130 interrupted (Ctrl-C).
    """
    import time

    from otel_sqla_doctor import api

    started = time.perf_counter()
    refuse_quiet_and_verbose(quiet, verbose)
    _refuse_ignored_flags(output_format=output_format, fix=fix, diff=diff, unsafe_fixes=unsafe_fixes, statistics=statistics)
    targets = list(paths or [])
    stdin = _reads_stdin(targets, stdin_filename)
    if stdin:
        return _scan_stdin(api, stdin_filename, output_format=output_format, output=output, config_file=config_file,
                           select=select, extend_select=extend_select, ignore=ignore, fix=fix, unsafe_fixes=unsafe_fixes,
                           diff=diff, no_cache=no_cache, jobs=jobs, exit_zero=exit_zero, statistics=statistics,
                           report_unused_ignores=report_unused_ignores, quiet=quiet, verbose=verbose, started=started)
    targets = targets or [Path(".")]
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
    _refuse_empty_selection(config)
    plan = _plan(api, targets, config, flags)

    def run_scans():
        results = [
            api.scan_paths(scan_targets, config=group_config, use_cache=not no_cache, jobs=jobs, report_only=report_only)
            for group_config, scan_targets, report_only in plan
        ]
        return _merge(results)

    result = run_scans()

    result.show_unused_suppressions = report_unused_ignores

    outcome = None
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

    _warn_unknown_codes(result, quiet)
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
        _say_configuration(config, started)
    raise typer.Exit(_exit_code(result, outcome, diff=diff, exit_zero=exit_zero, report_unused_ignores=report_unused_ignores))


def _refuse_empty_selection(config) -> None:
    if not config.enabled_codes():
        from otel_sqla_doctor.errors import UsageError

        raise UsageError("no rule is selected (see --select, --ignore and `select`/`ignore` in pyproject.toml): nothing would be checked")


def _warn_unknown_codes(result, quiet: bool) -> None:
    if quiet:
        return
    from otel_sqla_doctor.static.suppressions import known_codes, unknown_codes

    for line in unknown_codes(result.unused_suppressions, known_codes()):
        typer.echo(f"doctor: warning: {line}", err=True)


def _say_configuration(config, started: float) -> None:
    import time

    sources = ", ".join(config.sources) or "none"
    typer.echo(f"doctor: configuration: {sources}; root {config.root}; {time.perf_counter() - started:.2f}s", err=True)


def _exit_code(result, outcome, *, diff: bool, exit_zero: bool, report_unused_ignores: bool) -> int:
    """1 when the run found a problem (or checked nothing), else 0; --exit-zero makes every such
    case 0, and never hides what was said about it on stdout and stderr."""
    if diff:
        problem = bool(result.diff) or bool(outcome.problems)
    elif outcome is not None and outcome.problems:
        problem = True  # a file --fix was asked to change and did not: never a success
    elif result.files_scanned == 0 and not result.errors:
        # A scan that read nothing (everything excluded, no Python files) is no success; said
        # even with --quiet, as a warning is.
        typer.echo("doctor: no Python files were scanned (check the paths, `exclude` and `extend-exclude`)", err=True)
        problem = True
    else:
        # Files that could not be read or parsed are problems too: never a silent green.
        problem = bool(result.findings or result.errors or (report_unused_ignores and result.unused_suppressions))
    return 1 if problem and not exit_zero else 0


# -- `doctor scan -`: one source file from stdin -------------------------------------------------
STDIN_NAME = "-"  # how the source is reported without --stdin-filename (as ruff)


def _reads_stdin(targets: list[Path], stdin_filename: Optional[Path]) -> bool:
    """`doctor scan -`, or no path with --stdin-filename (as ruff); anything else with either is a usage error."""
    from otel_sqla_doctor.errors import UsageError

    dashes = [t for t in targets if str(t) == STDIN_NAME]
    if dashes and len(targets) > 1:
        raise UsageError("`-` reads one source file from stdin: it cannot be combined with other paths")
    if stdin_filename is not None and targets and not dashes:
        raise UsageError("--stdin-filename names the source read from stdin: give `-` instead of paths (doctor scan - --stdin-filename PATH)")
    stdin = bool(dashes) or stdin_filename is not None
    if stdin and stdin_filename is not None:
        if str(stdin_filename) == STDIN_NAME or stdin_filename.suffix != ".py":
            raise UsageError(f"--stdin-filename {stdin_filename}: the name of a Python source file (ending in .py) is expected")
        if stdin_filename.is_dir():
            raise UsageError(f"--stdin-filename {stdin_filename} is a directory: name the file the source stands for")
    return stdin


def _read_stdin() -> bytes:
    stream = getattr(sys.stdin, "buffer", sys.stdin)
    if stream is None:
        from otel_sqla_doctor.errors import UsageError

        raise UsageError("`-` reads the source from stdin, and there is no stdin")
    data = stream.read()
    return data.encode("utf-8") if isinstance(data, str) else data


def _scan_stdin(api, stdin_filename: Optional[Path], *, output_format, output, config_file, select, extend_select, ignore,
                fix, unsafe_fixes, diff, no_cache, jobs, exit_zero, statistics, report_unused_ignores, quiet, verbose, started):
    """Scan the source read from stdin as the file --stdin-filename names: with that file's
    configuration and path role, inside its project (names resolve across its modules, and the
    file on disk, if any, is replaced by the stdin source); only that file is reported. Without
    --stdin-filename, it is a file of its own in the current directory, reported as `-`."""
    cwd = Path.cwd()
    virtual = (cwd / stdin_filename) if stdin_filename is not None else cwd / "stdin.py"
    if output is not None:
        from otel_sqla_doctor.report.atomic import check_output

        check_output(output, inputs=[virtual] if stdin_filename is not None else [])
    data = _read_stdin()
    flags = dict(config_file=config_file, select=select, extend_select=extend_select, ignore=ignore)
    config = api.load_config([virtual] if stdin_filename is not None else [cwd], **flags)
    _refuse_empty_selection(config)

    def scan(source: bytes):
        result = _scan_source(config, virtual, source, whole_project=stdin_filename is not None, use_cache=not no_cache, jobs=jobs)
        if stdin_filename is None:
            result = _renamed(result, "stdin.py", STDIN_NAME)
        result.show_unused_suppressions = report_unused_ignores
        return result

    result = scan(data)
    display = str(stdin_filename) if stdin_filename is not None else STDIN_NAME
    outcome = None
    report_stream = sys.stdout
    if fix or diff:
        outcome, new_data = _fix_source(result.findings, data, unsafe=unsafe_fixes)
        for reason in outcome.problems:
            typer.echo(f"doctor: {display}: {reason}", err=True)
        outcome.problems = [(display, reason) for reason in outcome.problems]
        if diff:
            from otel_sqla_doctor.static.fixes import unified_diff

            result.diff = unified_diff(outcome)
        else:
            # As ruff: the fixed source (or the source unchanged) on stdout, the report on stderr.
            stdout = getattr(sys.stdout, "buffer", None)
            if stdout is not None:
                sys.stdout.flush()
                stdout.write(new_data)
                stdout.flush()
            else:  # pragma: no cover - a stdout without bytes (tests capturing text)
                sys.stdout.write(new_data.decode("utf-8", errors="replace"))
            report_stream = sys.stderr
            if outcome.counts:
                fixed = {display: sum(outcome.counts.values())}
                result = scan(new_data)
                result.fixed = fixed

    _warn_unknown_codes(result, quiet)
    if diff:
        rendered = result.diff
    else:
        rendered = _render(result, output_format, output, quiet, verbose, statistics, stream=report_stream)
    if output is not None:
        from otel_sqla_doctor.report.atomic import write_report

        write_report(output, rendered, inputs=[Path(p) for p in config.sources])
    else:
        report_stream.write(rendered)
        report_stream.flush()
    if verbose:
        _say_configuration(config, started)
    raise typer.Exit(_exit_code(result, outcome, diff=diff, exit_zero=exit_zero, report_unused_ignores=report_unused_ignores))


def _scan_source(config, virtual: Path, data: bytes, *, whole_project: bool, use_cache: bool, jobs):
    """A scan in which `virtual` holds `data` (whether or not a file is there on disk)."""
    from otel_sqla_doctor.static import engine

    import os
    import stat

    target = os.fspath(virtual)

    class StdinSource(type(Path())):
        """The file the stdin source stands for: its bytes are stdin's, never the disk's. Paths
        derived from it (its parent, a sibling) are plain paths on disk."""

        def _me(self) -> bool:
            return os.fspath(self) == target

        def read_bytes(self) -> bytes:
            return data if self._me() else super().read_bytes()

        def stat(self, *args, **kwargs):
            if not self._me():
                return super().stat(*args, **kwargs)
            return os.stat_result((stat.S_IFREG | 0o644, 0, 0, 1, 0, 0, len(data), 0, 0, 0))

        def is_file(self, *args, **kwargs) -> bool:
            return True if self._me() else super().is_file(*args, **kwargs)

        def exists(self, *args, **kwargs) -> bool:
            return True if self._me() else super().exists(*args, **kwargs)

        def is_symlink(self) -> bool:
            return False if self._me() else super().is_symlink()

    class StdinScanner(engine.Scanner):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.stdin_path = StdinSource(virtual)
            self.stdin_relative = self.relative_path(self.stdin_path)

        def collect(self, targets):
            files, project_texts, errors = super().collect(targets)
            files = [p for p in files if self.relative_path(p) != self.stdin_relative] + [self.stdin_path]
            return sorted(files, key=self.relative_path), project_texts, errors

        def analyze_jobs(self, todo):
            others = iter(super().analyze_jobs([job for job in todo if job.relative != self.stdin_relative]))
            return [
                engine.analyze_source(data, job.relative, job.module, job.is_package, self.codes, self.options)
                if job.relative == self.stdin_relative
                else next(others)
                for job in todo
            ]

    cwd = Path.cwd()
    root = config.root or virtual.parent
    targets = [root] if whole_project and root.is_dir() else []
    scanner = StdinScanner(config, use_cache=use_cache, jobs=jobs, cwd=cwd)
    return scanner.scan(targets, report_only={scanner.display(scanner.stdin_relative)})


def _renamed(result, old: str, new: str):
    """The result with the path `old` reported as `new`."""
    import dataclasses

    def rename(path: str) -> str:
        return new if path == old else path

    result.findings = [dataclasses.replace(f, path=rename(f.path)) for f in result.findings]
    result.errors = [dataclasses.replace(e, path=rename(e.path)) for e in result.errors]
    result.notices = [dataclasses.replace(n, path=rename(n.path)) for n in result.notices]
    result.unused_suppressions = [(rename(p), s) for p, s in result.unused_suppressions]
    result.digests = {rename(p): d for p, d in result.digests.items()}
    return result


def _fix_source(findings, data: bytes, *, unsafe: bool):
    """(outcome, fixed bytes) for the stdin source: the fixes of its findings applied to exactly
    the bytes the scan read; encoding, BOM and line endings kept. A result that would not parse
    is not used."""
    import libcst as cst

    from otel_sqla_doctor.static.fixes import FixOutcome, apply_edits, decode_source

    outcome = FixOutcome()
    edits = [e for f in findings if f.fix is not None and f.fix.edits and (f.fix.safe or unsafe) for e in f.fix.edits]
    if not edits:
        return outcome, data
    path = findings[0].path
    try:
        text, encoding = decode_source(data)
    except (UnicodeDecodeError, SyntaxError, LookupError) as exc:
        outcome.problems.append(f"not fixed: cannot decode ({exc})")
        return outcome, data
    new_text, count = apply_edits(text, edits)
    if new_text == text:
        return outcome, data
    try:
        cst.parse_module(new_text)
    except Exception:
        outcome.problems.append("not fixed: the fixed code would not parse (please report this)")
        return outcome, data
    outcome.originals[path], outcome.changed[path], outcome.counts[path] = text, new_text, count
    bom = b"\xef\xbb\xbf" if encoding == "utf-8-sig" and data.startswith(b"\xef\xbb\xbf") else b""
    return outcome, bom + new_text.encode("utf-8" if encoding == "utf-8-sig" else encoding)


def _refuse_ignored_flags(*, output_format, fix: bool, diff: bool, unsafe_fixes: bool, statistics: bool = False) -> None:
    """A flag that would change nothing is a usage error, never silently dropped."""
    from otel_sqla_doctor.errors import UsageError

    if diff and output_format != OutputFormat.text:
        raise UsageError(f"--diff prints a unified diff, not a report: it cannot be combined with --format {output_format.value}")
    if unsafe_fixes and not (fix or diff):
        raise UsageError("--unsafe-fixes only applies with --fix or --diff (add one of them)")
    if statistics and diff:
        raise UsageError("--statistics counts findings in the report, and --diff prints no report: give one of them")
    if statistics and output_format != OutputFormat.text:
        raise UsageError(f"--statistics counts findings in the text report: it cannot be combined with --format {output_format.value}")


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


def _render(result, output_format, output, quiet, verbose, statistics, stream=None) -> str:
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

    return text.render(result, colour=output is None and use_colour(stream or sys.stdout), quiet=quiet, verbose=verbose, statistics=statistics)
