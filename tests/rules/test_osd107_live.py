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


def test_newest_table_entry_agrees_with_the_installed_release():
    """When the installed release is in the newest entry, that entry's range is what it declares,
    and the table is never older than the installed release (else: run scripts/refresh_versions.py)."""
    import datetime
    from importlib.metadata import version

    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    from opentelemetry.instrumentation.sqlalchemy.package import _instruments
    from otel_sqla_doctor import versions

    installed = Version(version("opentelemetry-instrumentation-sqlalchemy"))
    newest = versions.SQLALCHEMY_INSTRUMENTATION_RANGES[-1]
    assert versions.NEWEST_INSTRUMENTATION == newest.last
    assert installed <= Version(newest.last), (
        f"installed {installed} is newer than the table ({newest.last}): run scripts/refresh_versions.py"
    )
    if Version(newest.first) <= installed <= Version(newest.last):
        assert SpecifierSet(newest.sqlalchemy) == Requirement(_instruments[0]).specifier
    for day in (versions.INSTRUMENTATION_TABLE_DATE, versions.SQLALCHEMY_TABLE_DATE):
        assert datetime.date.fromisoformat(day) <= datetime.date.today()


def test_unpinned_instrumentation_says_as_of_the_table_date(tmp_path):
    """"The newest release" is a claim about one day: the message names it."""
    from otel_sqla_doctor import versions
    from otel_sqla_doctor.api import load_config, scan_paths

    (tmp_path / "requirements.txt").write_text("SQLAlchemy>=2.1\n")
    (tmp_path / "telemetry.py").write_text(
        "from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor\n"
        "SQLAlchemyInstrumentor().instrument()\n"
    )
    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    config = load_config([tmp_path], select=["OSD107"])
    result = scan_paths([tmp_path], config=config, use_cache=False, cwd=tmp_path)
    messages = [f.message for f in result.findings]
    assert messages, "an open requirement entirely outside the range is reported"
    expected = f"{versions.NEWEST_INSTRUMENTATION} (not pinned: the newest release as of {versions.INSTRUMENTATION_TABLE_DATE})"
    assert any(expected in m for m in messages), messages


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
    from otel_sqla_doctor import versions

    message = open_only.findings[0].message
    assert f"SQLAlchemy 2.1.9 (the newest it allows as of {versions.SQLALCHEMY_TABLE_DATE})" in message, message
    assert "today" not in message, message

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


def test_refresh_script_reads_wheels_and_extends_the_table(tmp_path):
    """scripts/refresh_versions.py, offline: a wheel's `_instruments` is read, and a new release
    with the same range extends the newest entry while a different range starts a new one."""
    import importlib.util
    import zipfile

    from otel_sqla_doctor import versions

    spec = importlib.util.spec_from_file_location("refresh_versions", Path(__file__).resolve().parents[2] / "scripts" / "refresh_versions.py")
    refresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(refresh)

    wheel = tmp_path / "opentelemetry_instrumentation_sqlalchemy-9.0b0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(refresh.PACKAGE_PY, '_instruments = ("sqlalchemy >= 1.0.0, < 2.2.0",)\n')
        zf.writestr("x-9.0b0.dist-info/METADATA", "Requires-Dist: sqlalchemy<2.2.0,>=1.0.0; extra == 'instruments'\n")
    declared = refresh.declared_in_wheel(wheel)
    assert refresh.same_range(declared, ">=1.0.0,<2.2.0")

    text = refresh.VERSIONS_PY.read_text()
    last = versions.NEWEST_INSTRUMENTATION
    same = refresh.refreshed_text(text, [("9.0b0", versions.SQLALCHEMY_INSTRUMENTATION_RANGES[-1].sqlalchemy)], {}, "2099-01-01")
    assert f'last="{last}"' not in same and 'last="9.0b0"' in same
    assert 'INSTRUMENTATION_TABLE_DATE = "2099-01-01"' in same
    other = refresh.refreshed_text(text, [("9.0b0", declared)], {"2.1": "2.1.99"}, "2099-01-01")
    assert f'last="{last}"' in other and 'first="9.0b0"' in other and '"2.1": "2.1.99"' in other
    namespace: dict = {}
    exec(compile(other, "versions.py", "exec"), namespace)
    assert namespace["NEWEST_INSTRUMENTATION"] == "9.0b0"
    assert namespace["SQLALCHEMY_INSTRUMENTATION_RANGES"][-1].sqlalchemy == declared
