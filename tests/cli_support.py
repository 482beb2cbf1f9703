"""Helpers for running the real CLI, in-process (CliRunner) and as a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from otel_sqla_doctor.cli import app

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run_cli(args: list[str], cwd: Path | None = None, env: dict | None = None):
    """`doctor ARGS` in-process; returns the click Result (exit_code, stdout, stderr)."""
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    finally:
        os.chdir(old)


def run_doctor(args: list[str], cwd: Path | None = None, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m otel_sqla_doctor ARGS` as a real process (exit codes, stderr, no traceback)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "otel_sqla_doctor", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def copy_fixture(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target
