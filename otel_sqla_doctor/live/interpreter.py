"""Which Python interpreter the live checks run in: the application's, wherever it can be found.

The probe judges installed versions (OSD502) and runs the user's own wiring (`--engine`), so it
must run where the application runs. The doctor usually lives elsewhere (pipx, a tools venv) with
a SQLAlchemy of its own, and a verdict on that one says nothing about the application. In order:

1. `--python PATH` (an interpreter, a virtualenv directory, or a name on PATH);
2. the active virtualenv (`$VIRTUAL_ENV`), unless it is the doctor's own;
3. the project's environment: `.venv/` or `venv/` from the start directory (`--app-dir`, else
   the current one) up to the project root (the nearest `pyproject.toml`), uv's
   `UV_PROJECT_ENVIRONMENT`, and for a Poetry project `poetry env info -p` (only when `poetry`
   is on PATH, with a short timeout);
4. otherwise the doctor's own interpreter, and the report says so.

Standard library only: this runs before anything heavy is imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from otel_sqla_doctor.errors import UsageError

POETRY_TIMEOUT = 10.0
ENV_DIRS = (".venv", "venv")


@dataclass(frozen=True)
class Interpreter:
    """Where the probe runs, and why there.

    `application` is False only for the fallback: no application environment was found and the
    doctor's own is used. `current` means this very environment, so the probe runs in-process.
    `project` is where the dependency files are (OSD502 reads them in the fallback).
    """

    python: str
    reason: str
    application: bool = True
    current: bool = False
    project: Path | None = None

    @property
    def whose(self) -> str:
        return "the application's environment" if self.application else "the doctor's own environment"


def this_process(reason: str = "the calling Python process") -> Interpreter:
    return Interpreter(python=sys.executable, reason=reason, application=True, current=True)


def _python_in(env_dir: Path) -> Path | None:
    for candidate in (env_dir / "bin" / "python", env_dir / "Scripts" / "python.exe"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _venv_prefix(python: Path) -> Path | None:
    """The virtualenv a `bin/python` belongs to (the directory with pyvenv.cfg), if any."""
    prefix = python.parent.parent
    return prefix if (prefix / "pyvenv.cfg").is_file() else None


def is_doctor_environment(python: Path) -> bool:
    """Whether `python` runs in the environment this process runs in.

    Decided by the virtualenv directory, not by the resolved binary: every venv's bin/python is a
    symlink to the same base interpreter.
    """
    if python.absolute() == Path(sys.executable).absolute():
        return True
    prefix = _venv_prefix(python)
    if prefix is not None:
        return prefix.resolve() == Path(sys.prefix).resolve()
    # A plain installation (system, pyenv, conda): the same one only if we are not in a venv.
    return sys.prefix == sys.base_prefix and python.resolve() == Path(sys.executable).resolve()


def resolve_python(given: str | os.PathLike) -> Path:
    """`--python`: an interpreter, a virtualenv directory, or a command name on PATH."""
    text = os.fspath(given)
    path = Path(text).expanduser()
    if path.is_dir():
        found = _python_in(path)
        if found is None:
            raise UsageError(f"--python {text}: a directory without bin/python (not a virtualenv)")
        return found.absolute()
    if not path.exists() and os.sep not in text:
        which = shutil.which(text)
        if which:
            return Path(which)
    if not path.exists():
        raise UsageError(f"--python {text}: no such interpreter")
    if not os.access(path, os.X_OK):
        raise UsageError(f"--python {text}: not executable")
    return path.absolute()


def project_root(start: Path) -> Path | None:
    """The nearest directory at or above `start` with a pyproject.toml."""
    for directory in (start, *start.parents):
        if (directory / "pyproject.toml").is_file():
            return directory
    return None


def _application(python: Path, reason: str, project: Path | None) -> Interpreter:
    current = is_doctor_environment(python)
    if current:
        reason += " (the doctor runs in it too)"
    return Interpreter(python=str(python), reason=reason, application=True, current=current, project=project)


def _poetry_env(root: Path, environ: Mapping[str, str]) -> Path | None:
    pyproject = root / "pyproject.toml"
    is_poetry = (root / "poetry.lock").is_file() or "[tool.poetry" in pyproject.read_text(encoding="utf-8", errors="replace")
    poetry = shutil.which("poetry", path=environ.get("PATH"))
    if not (is_poetry and poetry):
        return None
    # Without VIRTUAL_ENV, or poetry would name whatever venv is active (maybe the doctor's).
    env = {k: v for k, v in environ.items() if k != "VIRTUAL_ENV"}
    try:
        proc = subprocess.run(
            [poetry, "env", "info", "-p"], cwd=root, env=env, capture_output=True, text=True, timeout=POETRY_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return None
    return _python_in(Path(lines[-1].strip()))


def choose_interpreter(
    python: str | os.PathLike | None = None,
    *,
    app_dir: str | os.PathLike | None = None,
    cwd: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
) -> Interpreter:
    """The interpreter the probe should run in (see the module docstring for the order)."""
    environ = os.environ if environ is None else environ
    start = Path(app_dir if app_dir is not None else (cwd or Path.cwd())).absolute()
    root = project_root(start)
    project = root or start
    if python is not None:
        return _application(resolve_python(python), "given with --python", project)

    active_note = "no active virtualenv"
    active = environ.get("VIRTUAL_ENV", "").strip()
    if active:
        found = _python_in(Path(active))
        if found is None:
            active_note = f"VIRTUAL_ENV={active} has no bin/python"
        elif is_doctor_environment(found):
            active_note = "the active virtualenv is the doctor's own"  # look for the project's
        else:
            return _application(found, f"the active virtualenv (VIRTUAL_ENV={active})", project)

    searched = [start]  # from the start directory up to the project root, nearest first
    if root:
        searched = [d for d in (start, *start.parents) if d == root or root in d.parents]
    uv_env = environ.get("UV_PROJECT_ENVIRONMENT", "").strip()
    if root and uv_env:
        found = _python_in(root / uv_env)
        if found is not None:
            return _application(found, f"UV_PROJECT_ENVIRONMENT={uv_env} of {root}", project)
    for directory in searched:
        for name in ENV_DIRS:
            found = _python_in(directory / name)
            if found is not None:
                where = f"the {name} beside {directory / 'pyproject.toml'}" if directory == root else f"the {name} in {directory}"
                return _application(found, where, project)
    if root:
        found = _poetry_env(root, environ)
        if found is not None:
            return _application(found, f"`poetry env info -p` in {root}", project)

    looked = ["no --python", active_note]
    looked.append(f"no .venv or venv in {start}" + (f" up to {root}" if root and root != start else ""))
    return Interpreter(
        python=sys.executable,
        reason=f"no application environment found ({', '.join(looked)}); pass --python to probe with yours",
        application=False,
        current=True,
        project=project,
    )
