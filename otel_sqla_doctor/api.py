"""The library surface: plain functions that return plain data. The CLI is a thin layer on top."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Union

from otel_sqla_doctor.config import Config, discover, with_cli
from otel_sqla_doctor.findings import ScanResult

PathLike = Union[str, Path]


def load_config(
    paths: Iterable[PathLike] = (".",),
    *,
    config_file: Optional[PathLike] = None,
    select: Optional[list[str]] = None,
    extend_select: Optional[list[str]] = None,
    ignore: Optional[list[str]] = None,
) -> Config:
    """Configuration for a scan of `paths`: pyproject.toml discovery, then the flags on top."""
    first = Path(next(iter(paths), "."))
    config = discover(first, Path(config_file) if config_file else None)
    return with_cli(config, select=select, extend_select=extend_select, ignore=ignore)


def scan_paths(
    paths: Iterable[PathLike] = (".",),
    *,
    config: Optional[Config] = None,
    use_cache: bool = True,
    jobs: Optional[int] = None,
    report_only: Optional[Iterable[PathLike]] = None,
    cwd: Optional[PathLike] = None,
) -> ScanResult:
    """Scan files and directories; return findings, the number of files scanned and per-file errors.

    `report_only` restricts the findings to some files while names are still resolved across the
    whole project (the pre-commit case: pass the project root as `paths`).
    """
    from otel_sqla_doctor.static.engine import Scanner

    targets = [Path(p) for p in paths] or [Path(".")]
    config = config or load_config(targets)
    base = Path(cwd) if cwd else Path.cwd()
    scanner = Scanner(config, use_cache=use_cache, jobs=jobs, cwd=base)
    only = None
    if report_only is not None:
        only = {scanner.display(scanner.relative_path(base / Path(p))) for p in report_only}
    return scanner.scan([base / t if not t.is_absolute() else t for t in targets], report_only=only)


def probe(*args, **kwargs):
    """Run the live checks against a database or the user's own engine (see `live.probe`)."""
    from otel_sqla_doctor.live import probe as run_probe

    return run_probe(*args, **kwargs)


def analyze_spans(*args, **kwargs):
    """Analyse recorded spans (see `spans.analyze_files`)."""
    from otel_sqla_doctor.spans import analyze_files

    return analyze_files(*args, **kwargs)
