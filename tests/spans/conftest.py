"""Helpers for the span tests: the recorded fixtures and a way to run the two commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
ROOT = HERE.parent.parent
APP = ROOT / "sample_projects" / "n_plus_one_app" / "app.py"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


def run_doctor(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """`doctor spans|trace ARGS` in a fresh interpreter (the trace bootstrap needs a real process)."""
    return subprocess.run(
        [sys.executable, str(HERE / "doctor_cli.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        **kwargs,
    )
