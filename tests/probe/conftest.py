"""Fixtures for the probe tests."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from probe_helpers import Run

# Variables that would change what the probe sees; tests set what they need explicitly.
_OTEL_NOISE = [name for name in os.environ if name.startswith("OTEL_")]


@pytest.fixture
def invoke(monkeypatch):
    """`doctor probe ...` through typer's CliRunner, in this process."""
    from otel_sqla_doctor.cli import app

    for name in _OTEL_NOISE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")

    def run(*args: str, env: dict[str, str] | None = None) -> Run:
        result = CliRunner().invoke(app, ["probe", *args], env=env)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(result.exit_code, result.stdout, result.stderr)

    return run


