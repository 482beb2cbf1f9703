"""Which interpreter `doctor probe` runs in, and why: `--python`, the active virtualenv, the
project's .venv/venv, uv's and Poetry's environments, else the doctor's own (and then OSD502 judges
the application from its dependency files, not from the doctor's SQLAlchemy).

The virtualenvs here are real directories with pyvenv.cfg and an executable bin/python; nothing
runs them (test_probe_app_python.py runs real ones).
"""

from __future__ import annotations

import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

from otel_sqla_doctor.errors import UsageError
from otel_sqla_doctor.live import interpreter as interpreter_module
from otel_sqla_doctor.live.interpreter import choose_interpreter

NO_CHOICE = {"PATH": os.environ.get("PATH", "")}  # no VIRTUAL_ENV, no UV_PROJECT_ENVIRONMENT


def fake_venv(directory: Path) -> Path:
    """A directory laid out like a virtualenv; returns its bin/python."""
    (directory / "bin").mkdir(parents=True)
    (directory / "pyvenv.cfg").write_text(f"home = {Path(sys.executable).parent}\n")
    python = directory / "bin" / "python"
    python.symlink_to(sys.executable)
    return python


def project(root: Path, pyproject: str = '[project]\nname = "shop"\nversion = "1"\n') -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(pyproject)
    return root


def test_python_option_takes_an_interpreter_or_a_virtualenv_directory(tmp_path):
    python = fake_venv(tmp_path / "appenv")

    by_file = choose_interpreter(str(python), cwd=tmp_path, environ=NO_CHOICE)
    by_dir = choose_interpreter(str(tmp_path / "appenv"), cwd=tmp_path, environ=NO_CHOICE)

    assert by_file.python == by_dir.python == str(python)
    assert by_file.reason == "given with --python"
    assert by_file.application and not by_file.current  # another environment: run there


def test_python_option_naming_the_doctors_own_interpreter_runs_in_process():
    chosen = choose_interpreter(sys.executable, environ=NO_CHOICE)

    assert chosen.current and chosen.application
    assert chosen.reason == "given with --python (the doctor runs in it too)"


@pytest.mark.parametrize(
    ("given", "message"),
    [("/no/such/python3", "--python /no/such/python3: no such interpreter"), ("no-such-python-osd", "no such interpreter")],
)
def test_python_option_that_names_nothing_is_a_usage_error(given, message):
    with pytest.raises(UsageError, match=message):
        choose_interpreter(given, environ=NO_CHOICE)


def test_a_directory_that_is_not_a_virtualenv_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="a directory without bin/python"):
        choose_interpreter(str(tmp_path), environ=NO_CHOICE)


def test_active_virtualenv_wins_over_the_projects(tmp_path):
    root = project(tmp_path / "shop")
    fake_venv(root / ".venv")
    active = fake_venv(tmp_path / "active")

    chosen = choose_interpreter(cwd=root, environ={**NO_CHOICE, "VIRTUAL_ENV": str(tmp_path / "active")})

    assert chosen.python == str(active)
    assert chosen.reason == f"the active virtualenv (VIRTUAL_ENV={tmp_path / 'active'})"


def test_the_doctors_own_active_virtualenv_does_not_hide_the_projects(tmp_path):
    root = project(tmp_path / "shop")
    dot_venv = fake_venv(root / ".venv")

    chosen = choose_interpreter(cwd=root, environ={**NO_CHOICE, "VIRTUAL_ENV": sys.prefix})

    assert chosen.python == str(dot_venv)
    nothing_else = choose_interpreter(cwd=project(tmp_path / "bare"), environ={**NO_CHOICE, "VIRTUAL_ENV": sys.prefix})
    assert not nothing_else.application
    assert "(no --python, the active virtualenv is the doctor's own, no .venv or venv in " in nothing_else.reason


def test_dot_venv_beside_pyproject_is_found_from_a_subdirectory(tmp_path):
    root = project(tmp_path / "shop")
    dot_venv = fake_venv(root / ".venv")
    (root / "services" / "orders").mkdir(parents=True)

    chosen = choose_interpreter(app_dir=root / "services" / "orders", environ=NO_CHOICE)

    assert chosen.python == str(dot_venv)
    assert chosen.reason == f"the .venv beside {root / 'pyproject.toml'}"
    assert chosen.project == root


def test_venv_without_a_pyproject_is_found_in_the_start_directory_only(tmp_path):
    venv = fake_venv(tmp_path / "app" / "venv")

    assert choose_interpreter(cwd=tmp_path / "app", environ=NO_CHOICE).python == str(venv)
    (tmp_path / "app" / "sub").mkdir()
    assert not choose_interpreter(cwd=tmp_path / "app" / "sub", environ=NO_CHOICE).application


def test_a_venv_above_the_project_root_is_not_the_projects(tmp_path):
    fake_venv(tmp_path / ".venv")  # e.g. a ~/.venv shared by everything
    root = project(tmp_path / "shop")

    chosen = choose_interpreter(cwd=root, environ=NO_CHOICE)

    assert not chosen.application


def test_uv_project_environment_is_honoured(tmp_path):
    root = project(tmp_path / "shop")
    fake_venv(root / ".venv")
    custom = fake_venv(root / "envs" / "uv")

    chosen = choose_interpreter(cwd=root, environ={**NO_CHOICE, "UV_PROJECT_ENVIRONMENT": "envs/uv"})

    assert chosen.python == str(custom)
    assert chosen.reason == f"UV_PROJECT_ENVIRONMENT=envs/uv of {root}"


def _fake_poetry(bin_dir: Path, body: str) -> dict[str, str]:
    """A `poetry` executable first on PATH (the real one is not installed here)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "poetry"
    script.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_poetry_project_env_comes_from_poetry_env_info(tmp_path):
    root = project(tmp_path / "shop", '[tool.poetry]\nname = "shop"\nversion = "1"\n')
    poetry_env = fake_venv(tmp_path / "cache" / "shop-py3.11")
    # Prints the env only when asked exactly that, and only without the doctor's VIRTUAL_ENV.
    environ = _fake_poetry(tmp_path / "bin", f"""\
        [ "$1 $2 $3" = "env info -p" ] && [ -z "$VIRTUAL_ENV" ] && echo "{poetry_env.parent.parent}"
        """)

    chosen = choose_interpreter(cwd=root, environ={**environ, "VIRTUAL_ENV": sys.prefix})

    assert chosen.python == str(poetry_env)
    assert chosen.reason == f"`poetry env info -p` in {root}"


def test_poetry_is_not_asked_about_other_projects_and_a_hanging_one_is_abandoned(tmp_path, monkeypatch):
    marker = tmp_path / "poetry-was-called"
    environ = _fake_poetry(tmp_path / "bin", f"touch {marker}\nsleep 30\n")
    monkeypatch.setattr(interpreter_module, "POETRY_TIMEOUT", 0.5)

    plain = project(tmp_path / "plain")
    assert not choose_interpreter(cwd=plain, environ=environ).application
    assert not marker.exists()

    poetry_project = project(tmp_path / "poetic", '[tool.poetry]\nname = "p"\nversion = "1"\n')
    started = time.monotonic()
    chosen = choose_interpreter(cwd=poetry_project, environ=environ)
    assert marker.exists() and time.monotonic() - started < 5
    assert not chosen.application


def test_nothing_found_falls_back_to_the_doctors_own_and_says_what_was_looked_for(tmp_path):
    root = project(tmp_path / "shop")

    chosen = choose_interpreter(cwd=root, environ=NO_CHOICE)

    assert chosen.python == sys.executable and chosen.current
    assert not chosen.application
    assert chosen.reason == (
        f"no application environment found (no --python, no active virtualenv, no .venv or venv in {root}); "
        "pass --python to probe with yours"
    )
    assert chosen.project == root


# -- what the report says, in the doctor's own environment ------------------------------------------


@pytest.mark.live
def test_report_names_the_interpreter_why_and_the_versions(invoke, tmp_path):
    import sqlalchemy

    run = invoke("--app-dir", str(tmp_path))

    lines = [line for line in run.stdout.splitlines() if not line.startswith("scope: ")]  # DSN mode says what it checks first
    assert lines[1] == (
        f"python: {sys.executable} ({'.'.join(map(str, sys.version_info[:3]))}), the doctor's own environment: "
        f"no application environment found (no --python, no active virtualenv, no .venv or venv in {tmp_path}); "
        "pass --python to probe with yours"
    )
    assert lines[2].startswith(f"packages: sqlalchemy {sqlalchemy.__version__}, opentelemetry-sdk ")
    assert lines[2].endswith(", aiosqlite " + _version("aiosqlite"))
    assert "opentelemetry-instrumentation-sqlalchemy 0.66b1" in lines[2]


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


@pytest.mark.live
def test_json_report_names_the_environment(invoke, tmp_path):
    run = invoke("--format", "json", "--app-dir", str(tmp_path))

    environment = run.json()["environment"]
    assert environment["python"] == sys.executable
    assert environment["whose"] == "doctor"
    assert environment["reason"].startswith("no application environment found")
    assert environment["packages"] == {
        "sqlalchemy": _version("sqlalchemy"),
        "opentelemetry-sdk": _version("opentelemetry-sdk"),
        "opentelemetry-instrumentation-sqlalchemy": _version("opentelemetry-instrumentation-sqlalchemy"),
        "aiosqlite": _version("aiosqlite"),
    }


@pytest.mark.live
@pytest.mark.parametrize(
    ("files", "status", "fragment"),
    [
        ({}, "warn", "the application's SQLAlchemy was not seen: no application environment was found and the project has no dependency files"),
        (
            {"pyproject.toml": '[project]\nname = "shop"\nversion = "1"\ndependencies = ["sqlalchemy[asyncio]>=2.0,<2.1"]\n'},
            "pass",
            "for the application: pyproject.toml:4 `sqlalchemy[asyncio]>=2.0,<2.1` keeps SQLAlchemy inside the range",
        ),
        (
            {"pyproject.toml": '[project]\nname = "shop"\nversion = "1"\ndependencies = ["sqlalchemy[asyncio]>=2.0"]\n'},
            "warn",
            "for the application: pyproject.toml:4 `sqlalchemy[asyncio]>=2.0` lets a fresh resolve pick SQLAlchemy 2.1.9",
        ),
        (
            {
                "pyproject.toml": '[project]\nname = "shop"\nversion = "1"\ndependencies = ["sqlalchemy[asyncio]>=2.0"]\n',
                "uv.lock": 'version = 1\n\n[[package]]\nname = "sqlalchemy"\nversion = "2.1.9"\n',
            },
            "fail",
            "for the application: uv.lock:5 locks SQLAlchemy 2.1.9, outside the range",
        ),
        ({"requirements.txt": "fastapi\nSQLAlchemy==2.0.44\n"}, "pass", "requirements.txt:2 pins SQLAlchemy 2.0.44, inside the range"),
        ({"requirements.txt": "fastapi\n"}, "warn", "requirements.txt in "),
    ],
)
def test_in_the_doctors_own_environment_osd502_judges_the_dependency_files(invoke, tmp_path, files, status, fragment):
    for name, text in files.items():
        (tmp_path / name).write_text(text)

    run = invoke("--format", "json", "--app-dir", str(tmp_path))

    check = run.check("OSD502")
    assert check["status"] == status, check
    assert fragment in check["detail"]
    assert "the doctor's own environment has SQLAlchemy" in check["detail"]
    assert run.exit_code == (1 if status == "fail" else 0)


def test_setup_without_engine_is_still_a_usage_error(invoke):
    with pytest.raises(UsageError, match="--setup only applies together with --engine"):
        invoke("--setup", "shop.telemetry:setup")
