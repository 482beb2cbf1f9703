"""`doctor probe` installed in a tool environment of its own (SQLAlchemy 2.1, which the
instrumentation refuses) probing applications that live in other virtualenvs.

The virtualenvs are real (built with pip from PyPI once, then cached: see venvs.py). The doctor in
the tool venv is installed like a user's, not editable; the application venvs have no doctor, no
typer and no libcst, so a probe that needed any of them there would fail here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from probe_helpers import PROBE_APPS, clean_env, run_probe
from venvs import python_of

pytestmark = [pytest.mark.live, pytest.mark.slow]


def tool(tool_venv: Path, *args: str, cwd: Path, env: dict | None = None):
    """`doctor probe ARGS` with the tool venv's own `doctor` script, from `cwd`."""
    return run_probe([str(tool_venv / "bin" / "doctor")], *args, cwd=cwd, env=env or clean_env(PYTHONPATH=""))


def _version(venv: Path, distribution: str) -> str:
    code = f"from importlib.metadata import version; print(version({distribution!r}))"
    return subprocess.run([str(python_of(venv)), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


# -- no application environment: the doctor's own, and it says so -------------------------------
def test_without_an_app_env_it_probes_in_its_own_and_does_not_fail_on_its_own_sqlalchemy(tool_venv, tmp_path):
    run = tool(tool_venv, "--format", "json", cwd=tmp_path)

    assert run.exit_code == 0, run.output
    environment = run.json()["environment"]
    assert environment["whose"] == "doctor"
    assert environment["python"] == str(python_of(tool_venv))
    assert environment["packages"]["sqlalchemy"].startswith("2.1.")
    assert environment["reason"].startswith(f"no application environment found (no --python, no active virtualenv, no .venv or venv in {tmp_path})")
    range_check = run.check("OSD502")
    assert range_check["status"] == "warn"
    assert "the application's SQLAlchemy was not seen" in range_check["detail"]
    assert f"the doctor's own environment has SQLAlchemy {environment['packages']['sqlalchemy']}" in range_check["detail"]
    assert "--python" in range_check["remediation"]
    assert run.check("OSD503")["status"] == "pass"  # its own engine, with skip_dep_check=True


def test_text_report_says_whose_environment_it_judged(tool_venv, tmp_path):
    run = tool(tool_venv, cwd=tmp_path)

    assert run.exit_code == 0
    python_line = next(line for line in run.stdout.splitlines() if line.startswith("python: "))
    assert python_line.startswith(f"python: {python_of(tool_venv)} (")
    assert ", the doctor's own environment: no application environment found" in python_line


def test_without_an_app_env_on_postgres(tool_venv, tmp_path, pg_dsn):
    run = tool(tool_venv, "--format", "json", pg_dsn, cwd=tmp_path)

    assert run.exit_code == 0, run.output
    assert run.json()["environment"]["whose"] == "doctor"
    assert run.json()["environment"]["packages"]["asyncpg"]
    statuses = run.statuses()
    assert statuses["OSD502"] == "warn" and statuses["OSD503"] == statuses["OSD504"] == "pass"


def test_without_an_app_env_the_dependency_files_decide_osd502(tool_venv, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "1"\ndependencies = ["sqlalchemy[asyncio]~=2.0.30"]\n')

    run = tool(tool_venv, "--format", "json", cwd=tmp_path)

    assert run.check("OSD502")["status"] == "pass"
    assert "for the application: pyproject.toml:4 `sqlalchemy[asyncio]~=2.0.30` keeps SQLAlchemy inside the range" in run.check("OSD502")["detail"]
    assert run.exit_code == 0


def test_users_engine_in_the_doctors_own_env_warns_instead_of_blaming_the_app(tool_venv, tmp_path):
    # good_app instruments without skip_dep_check, so the doctor's SQLAlchemy 2.1 is refused.
    app = shutil.copytree(PROBE_APPS / "good_app", tmp_path / "good_app")

    run = tool(tool_venv, "--engine", "shop.db:engine", "--setup", "shop.telemetry:setup", "--format", "json", cwd=app)

    emitted = run.check("OSD503")
    assert emitted["status"] == "warn"
    assert emitted["detail"].startswith("no query span in the doctor's own environment: the instrumentation refused SQLAlchemy 2.1.")
    assert run.exit_code == 0


# -- the application's environment ---------------------------------------------------------------
def test_python_option_reports_the_apps_versions(tool_venv, app_venv, tmp_path):
    run = tool(tool_venv, "--python", str(python_of(app_venv)), "--format", "json", cwd=tmp_path)

    assert run.exit_code == 0, run.output
    environment = run.json()["environment"]
    assert environment == {
        "python": str(python_of(app_venv)),
        "python_version": environment["python_version"],
        "whose": "application",
        "reason": "given with --python",
        "packages": {
            "sqlalchemy": _version(app_venv, "sqlalchemy"),
            "opentelemetry-sdk": "1.45.1",
            "opentelemetry-instrumentation-sqlalchemy": "0.66b1",
            "aiosqlite": _version(app_venv, "aiosqlite"),
        },
    }
    assert environment["packages"]["sqlalchemy"].startswith("2.0.")
    range_check = run.check("OSD502")
    assert range_check["status"] == "pass"
    assert f"SQLAlchemy {environment['packages']['sqlalchemy']} is inside the range" in range_check["detail"]
    assert f"(in {python_of(app_venv)})" in range_check["detail"]
    # The query went through the app's SQLAlchemy: its version is in the SQL comment.
    assert f"sqlalchemy%%3A{environment['packages']['sqlalchemy']}" in run.check("OSD506")["detail"]


def test_python_option_on_postgres(tool_venv, app_venv, tmp_path, pg_dsn):
    run = tool(tool_venv, "--python", str(app_venv), "--format", "json", pg_dsn, cwd=tmp_path)

    assert run.exit_code == 0, run.output
    assert run.json()["environment"]["packages"]["asyncpg"] == _version(app_venv, "asyncpg")
    statuses = run.statuses()
    for code in ("OSD501", "OSD502", "OSD503", "OSD504", "OSD505", "OSD507"):
        assert statuses[code] == "pass", run.check(code)
    assert statuses["OSD508"] == "warn"


def test_dot_venv_beside_pyproject_is_found_without_python_option(tool_venv, app_venv, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "1"\n')
    (tmp_path / ".venv").symlink_to(app_venv, target_is_directory=True)
    (tmp_path / "src").mkdir()

    run = tool(tool_venv, "--format", "json", cwd=tmp_path / "src")

    environment = run.json()["environment"]
    assert environment["whose"] == "application"
    assert environment["python"] == str(tmp_path / ".venv" / "bin" / "python")
    assert environment["reason"] == f"the .venv beside {tmp_path / 'pyproject.toml'}"
    assert environment["packages"]["sqlalchemy"].startswith("2.0.")
    assert run.check("OSD502")["status"] == "pass"
    assert run.exit_code == 0


def test_active_virtualenv_is_the_apps(tool_venv, app_venv, tmp_path):
    run = tool(tool_venv, "--format", "json", cwd=tmp_path, env=clean_env(PYTHONPATH="", VIRTUAL_ENV=str(app_venv)))

    environment = run.json()["environment"]
    assert environment["python"] == str(python_of(app_venv))
    assert environment["reason"] == f"the active virtualenv (VIRTUAL_ENV={app_venv})"
    assert run.exit_code == 0


def test_app_on_sqlalchemy_21_fails_osd502_naming_its_interpreter(tool_venv, app_venv_sqlalchemy21, tmp_path):
    python = python_of(app_venv_sqlalchemy21)

    run = tool(tool_venv, "--python", str(python), "--format", "json", cwd=tmp_path)

    assert run.exit_code == 1
    range_check = run.check("OSD502")
    assert range_check["status"] == "fail"
    assert range_check["detail"].startswith("SQLAlchemy 2.1.")
    assert "is outside the range" in range_check["detail"] and f"(in {python})" in range_check["detail"]
    assert run.json()["environment"]["whose"] == "application"
    assert run.check("OSD503")["status"] == "pass"  # the probe's own engine: skip_dep_check=True


def test_app_env_without_opentelemetry_is_one_line_and_exit_1(tool_venv, app_venv_without_otel, tmp_path):
    python = python_of(app_venv_without_otel)

    run = tool(tool_venv, "--python", str(python), cwd=tmp_path)

    assert run.exit_code == 1
    assert run.stdout == ""
    assert run.stderr == (
        f"doctor: error: opentelemetry-sdk is not installed in {python} (the application's environment: given with --python), "
        "and the probe records spans with the SDK; without it an app has no TracerProvider either; "
        f"install it there: {python} -m pip install opentelemetry-sdk\n"
    )


def test_app_env_without_the_dsns_driver_is_one_line_and_exit_1(tool_venv, app_venv, tmp_path):
    run = tool(tool_venv, "--python", str(python_of(app_venv)), "mysql+aiomysql://root@127.0.0.1:3306/test", cwd=tmp_path)

    assert run.exit_code == 1
    assert run.stdout == ""
    assert run.stderr.startswith(f"doctor: error: aiomysql is not installed in {python_of(app_venv)} (the application's environment")
    assert "mysql+aiomysql:// needs it" in run.stderr and len(run.stderr.splitlines()) == 1


def test_users_engine_needing_a_driver_the_app_env_lacks_is_one_line_and_exit_1(tool_venv, app_venv, tmp_path):
    (tmp_path / "legacy_db.py").write_text(
        "from sqlalchemy.ext.asyncio import create_async_engine\n"
        "engine = create_async_engine('mysql+aiomysql://root@127.0.0.1/test')\n"
    )

    run = tool(tool_venv, "--python", str(python_of(app_venv)), "--engine", "legacy_db:engine", cwd=tmp_path)

    assert run.exit_code == 1
    assert run.stdout == ""
    assert run.stderr.startswith(f"doctor: error: aiomysql is not installed in {python_of(app_venv)} (the application's environment")
    assert "importing legacy_db (--engine) needs it" in run.stderr and len(run.stderr.splitlines()) == 1


APPS = sorted(p.name for p in PROBE_APPS.iterdir() if (p / "expected.json").is_file())


@pytest.mark.parametrize("app", APPS)
def test_sample_apps_through_python_option_get_the_same_verdicts(tool_venv, app_venv, app):
    expected = json.loads((PROBE_APPS / app / "expected.json").read_text())

    run = tool(
        tool_venv, "--python", str(python_of(app_venv)), "--engine", expected["engine"], "--setup", expected["setup"],
        "--app-dir", str(PROBE_APPS / app), "--format", "json", cwd=PROBE_APPS / app,
    )

    report = run.json()  # stdout is only the report, even when the app prints spans
    assert report["target"] == expected["engine"]
    assert report["environment"]["python"] == str(python_of(app_venv))
    for code, status in expected["status"].items():
        assert run.statuses()[code] == status, run.check(code)
    for code, fragment in expected["detail_contains"].items():
        assert fragment in run.check(code)["detail"]
    assert run.exit_code == expected["exit_code"], run.stderr
    assert "Traceback" not in run.stderr


def test_good_app_on_postgres_through_python_option(tool_venv, app_venv, pg_dsn):
    run = tool(
        tool_venv, "--python", str(python_of(app_venv)), "--engine", "shop.db:engine", "--setup", "shop.telemetry:setup",
        "--app-dir", str(PROBE_APPS / "good_app"), "--format", "json", cwd=PROBE_APPS / "good_app",
        env=clean_env(PYTHONPATH="", SHOP_DATABASE_URL=pg_dsn),
    )

    statuses = run.statuses()
    assert statuses["OSD501"] == statuses["OSD503"] == statuses["OSD504"] == statuses["OSD507"] == "pass"
    assert statuses["OSD508"] == "warn"
    assert run.json()["environment"]["packages"]["asyncpg"] == _version(app_venv, "asyncpg")


def test_ctrl_c_while_the_apps_interpreter_waits_on_a_silent_server(tool_venv, app_venv, tmp_path, silent_server):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    report = tmp_path / "probe.json"
    proc = subprocess.Popen(
        [str(tool_venv / "bin" / "doctor"), "probe", "--python", str(python_of(app_venv)),
         f"postgresql+asyncpg://app:s3cr3t@127.0.0.1:{silent_server.port}/test", "--timeout", "120", "--output", str(report)],
        cwd=tmp_path, env=clean_env(PYTHONPATH="", TMPDIR=str(scratch)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    assert silent_server.wait_for_connection(60), proc.communicate(timeout=5)
    # The terminal sends SIGINT to the whole foreground process group: the doctor and the app's python.
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert err.strip() == "doctor: interrupted", err[-2000:]
    assert out == ""
    assert time.monotonic() - sent < 10
    assert list(scratch.iterdir()) == []  # the copy of the doctor's package is gone
    assert not report.exists()


def test_what_runs_in_the_apps_interpreter_needs_neither_typer_libcst_nor_rich(app_venv, tmp_path):
    from otel_sqla_doctor.live.isolated import _copy_package

    _copy_package(tmp_path)
    code = """
import importlib, importlib.util, json, pkgutil, sys
sys.path.insert(0, sys.argv[1])
import otel_sqla_doctor.live.remote
# Before the user's setup runs nothing may import SQLAlchemy or OpenTelemetry (import order decides
# whether an engine gets one tracer or two).
early = sorted(m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "opentelemetry"))
import otel_sqla_doctor.live as live
for info in pkgutil.walk_packages(live.__path__, "otel_sqla_doctor.live."):
    importlib.import_module(info.name)
print(json.dumps({"early": early, "installed": [m for m in ("typer", "libcst", "rich", "click") if importlib.util.find_spec(m)]}))
"""
    proc = subprocess.run([str(python_of(app_venv)), "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"early": [], "installed": []}


def test_what_the_apps_environment_prints_at_start_up_goes_to_stderr(invoke, app_venv, tmp_path):
    # A sitecustomize (or .pth file) of the app's environment that prints before the probe's code runs.
    (tmp_path / "sitecustomize.py").write_text("print('hello from the app environment')\n")

    run = invoke("--python", str(python_of(app_venv)), "--format", "json", env={"PYTHONPATH": str(tmp_path)})

    assert run.json()["environment"]["python"] == str(python_of(app_venv))
    assert "hello from the app environment" in run.stderr
    assert run.exit_code == 0
