"""Helpers for the probe tests: run `doctor probe` in-process (CliRunner) or as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
PROBE_APPS = REPO / "sample_projects" / "probe_apps"


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> dict:
        return json.loads(self.stdout)

    def check(self, code: str) -> dict:
        return next(c for c in self.json()["checks"] if c["code"] == code)

    def statuses(self) -> dict[str, str]:
        return {c["code"]: c["status"] for c in self.json()["checks"]}


# Variables that choose the interpreter the probe runs in: an activated venv in the shell that
# runs the tests must not decide which Python the tests probe with.
INTERPRETER_CHOICE = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k not in INTERPRETER_CHOICE}
    env.update(NO_COLOR="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def doctor(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120) -> Run:
    """`python -m otel_sqla_doctor probe ...` in a fresh interpreter, as a user runs it."""
    return run_probe([sys.executable, "-m", "otel_sqla_doctor"], *args, env=env, cwd=cwd, timeout=timeout)


def run_probe(command: list[str], *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120) -> Run:
    """`COMMAND probe ARGS` (e.g. another venv's `bin/doctor`), as a real process."""
    proc = subprocess.run(
        [*command, "probe", *args], capture_output=True, text=True, env=env or clean_env(), cwd=cwd or REPO, timeout=timeout,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


TRACEPARENT_IN_DETAIL = r"server received traceparent (00-([0-9a-f]{32})-([0-9a-f]{16})-0[0-9a-f]) via "
