"""OSD107 sqlalchemy-outside-instrumented-range, reproduced with a real SQLAlchemy 2.1.

SQLAlchemy 2.1 is installed once into a throwaway directory keyed by its version spec (reused by
later runs) and put first on PYTHONPATH of a fresh interpreter. Ground truth, Finding 0:
`instrument()` returns None, logs one ERROR line, patches nothing, and no query spans appear;
with `skip_dep_check=True` the same code gets spans.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from live_support import run_script

pytestmark = pytest.mark.live

SPEC = "sqlalchemy==2.1.*"
TARGET = Path(tempfile.gettempdir()) / "otel-sqla-doctor-sqlalchemy-2.1.x"


@pytest.fixture(scope="module")
def sqlalchemy_21_env() -> dict:
    """An environment whose interpreter imports SQLAlchemy 2.1 first."""
    done = TARGET / ".installed"
    if not done.is_file():
        install = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade", "--target", str(TARGET), SPEC],
            capture_output=True, text=True, timeout=300,
        )
        if install.returncode != 0:
            if os.environ.get("CI"):
                pytest.fail(f"could not install {SPEC}: {install.stderr[-2000:]}")
            pytest.skip(f"could not install {SPEC} (offline?): {install.stderr[-300:]}")
        done.write_text(SPEC)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TARGET), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    return env


BODY = """
import asyncio
import sqlalchemy
from sqlalchemy import text
import sqlalchemy.ext.asyncio as sa_async
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

returned = SQLAlchemyInstrumentor().instrument(tracer_provider=PROVIDER{extra})
engine = sa_async.create_async_engine("sqlite+aiosqlite://")

async def main():
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    await engine.dispose()

asyncio.run(main())
report(
    version=sqlalchemy.__version__,
    returned=repr(returned),
    factory=type(sa_async.create_async_engine).__name__,
    instrumented=SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry,
)
"""


def test_sqlalchemy_21_is_not_instrumented_at_all(sqlalchemy_21_env):
    result = run_script(BODY.format(extra=""), env=sqlalchemy_21_env)
    print(f"\nOSD107 SQLAlchemy {result['version']}: instrument() -> {result['returned']}, create_async_engine is a "
          f"{result['factory']}, spans {result['ended']}, logs {result['logs']}")
    assert result["version"].startswith("2.1."), result["version"]
    assert result["returned"] == "None"
    assert result["factory"] == "function", "create_async_engine must stay unwrapped"
    assert result["instrumented"] is False
    assert result["started"] == [] and result["ended"] == [], f"expected no spans at all, got {result['started']}"
    errors = [line for line in result["logs"] if line.startswith("ERROR")]
    assert errors == [
        "ERROR opentelemetry.instrumentation.instrumentor: SQLAlchemyInstrumentor only instruments "
        '"sqlalchemy >= 1.0.0, < 2.1.0", but currently installed version '
        f'("sqlalchemy {result["version"]}") falls outside of that range, so nothing can be instrumented.'
    ], result["logs"]
    assert result["returncode"] == 0 and "Traceback" not in result["stderr"], "nothing is raised"


def test_skip_dep_check_instruments_it(sqlalchemy_21_env):
    result = run_script(BODY.format(extra=", skip_dep_check=True"), env=sqlalchemy_21_env)
    print(f"\nOSD107 SQLAlchemy {result['version']} with skip_dep_check=True: spans {result['ended']}")
    assert result["version"].startswith("2.1.")
    assert result["factory"] == "FunctionWrapper"
    assert "SELECT" in result["ended"] and result["statements"] == ["SELECT 1"], result["ended"]
    assert not [line for line in result["logs"] if line.startswith("ERROR")]


def test_version_table_matches_the_installed_instrumentation():
    """versions.py must say what the installed release really declares (its `_instruments`)."""
    from importlib.metadata import version

    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    from opentelemetry.instrumentation.sqlalchemy.package import _instruments
    from otel_sqla_doctor import versions

    installed = version("opentelemetry-instrumentation-sqlalchemy")
    entry = versions.declared_range(installed)
    assert entry is not None, f"versions.py does not know {installed}: add it to the table"
    declared = Requirement(_instruments[0]).specifier
    assert SpecifierSet(entry.sqlalchemy) == declared, (installed, entry.sqlalchemy, str(declared))
    assert versions.sqlalchemy_in_range("2.1.9", installed) is False
    assert versions.sqlalchemy_in_range("2.0.58", installed) is True


def test_the_doctor_flags_the_lock_pin_and_the_open_requirement(tmp_path):
    from otel_sqla_doctor.api import load_config, scan_paths

    (tmp_path / "pyproject.toml").write_text(textwrap.dedent(
        """
        [project]
        name = "orders"
        version = "1.0"
        dependencies = ["sqlalchemy[asyncio]>=2.0", "opentelemetry-instrumentation-sqlalchemy>=0.50b0"]

        [tool.otel-sqla-doctor]
        root = true
        """
    ))
    config = load_config([tmp_path], select=["OSD107"])
    open_only = scan_paths([tmp_path], config=config, use_cache=False, cwd=tmp_path)
    assert [(f.path, f.line, f.severity.value) for f in open_only.findings] == [("pyproject.toml", 5, "warning")]
    assert "SQLAlchemy 2.1.9 today" in open_only.findings[0].message

    (tmp_path / "uv.lock").write_text(textwrap.dedent(
        """
        version = 1

        [[package]]
        name = "opentelemetry-instrumentation-sqlalchemy"
        version = "0.66b1"

        [[package]]
        name = "sqlalchemy"
        version = "2.1.9"
        """
    ))
    locked = scan_paths([tmp_path], config=config, use_cache=False, cwd=tmp_path)
    assert [(f.path, f.line, f.severity.value) for f in locked.findings] == [("uv.lock", 10, "error")]
