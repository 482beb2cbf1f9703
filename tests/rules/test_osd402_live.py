"""OSD402 live: `create_async_engine` with a sync driver fails at creation, with this exact error.

Runs in a fresh interpreter with the SQLAlchemy instrumentation on (as an application would start),
then checks that the doctor flags the same URLs and that its fix yields an engine that works.
"""

from __future__ import annotations

import asyncio
import importlib.util
import textwrap
from pathlib import Path

import pytest

from tests.live_support import run_script

EXPECTED = "The asyncio extension requires an async driver to be used. The loaded '{driver}' is not async."


def _errors(urls: list[str]) -> dict:
    return run_script(
        f"""
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        SQLAlchemyInstrumentor().instrument(tracer_provider=PROVIDER)
        from sqlalchemy.ext.asyncio import create_async_engine
        errors = {{}}
        for url in {urls!r}:
            try:
                create_async_engine(url)
                errors[url] = "created"
            except Exception as exc:
                errors[url] = f"{{type(exc).__module__}}.{{type(exc).__name__}}: {{exc}}"
        report(errors=errors)
        """
    )


def test_sync_drivers_are_refused_with_this_error():
    cases = {
        "sqlite://": "pysqlite",
        "sqlite+pysqlite:///./app.db": "pysqlite",
        "mysql+pymysql://root@127.0.0.1:3306/test": "pymysql",
    }
    if importlib.util.find_spec("psycopg2") is not None:
        cases["postgresql://postgres@127.0.0.1:5432/test"] = "psycopg2"
        cases["postgresql+psycopg2://postgres@127.0.0.1:5432/test"] = "psycopg2"
    result = _errors(list(cases))
    for url, message in result["errors"].items():
        print(f"[OSD402] create_async_engine({url!r}) -> {message}")
    for url, driver in cases.items():
        want = "sqlalchemy.exc.InvalidRequestError: " + EXPECTED.format(driver=driver)
        assert result["errors"][url] == want, f"{url}: {result['errors'][url]}"
    assert result["started"] == [] and result["ended"] == [], "no engine, so nothing to trace"


def test_default_postgresql_driver_missing_fails_differently():
    """`postgresql://` loads psycopg2: without it installed, the error is an import error instead."""
    if importlib.util.find_spec("psycopg2") is not None:
        result = run_script(
            """
            import sys
            sys.modules["psycopg2"] = None  # as on a machine without psycopg2
            from sqlalchemy.ext.asyncio import create_async_engine
            try:
                create_async_engine("postgresql://postgres@127.0.0.1:5432/test")
                message = "created"
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
            report(message=message)
            """
        )
    else:
        result = {"message": _errors(["postgresql://postgres@127.0.0.1:5432/test"])["errors"]["postgresql://postgres@127.0.0.1:5432/test"]}
    print(f"[OSD402] postgresql:// without psycopg2 -> {result['message']}")
    assert "ModuleNotFoundError" in result["message"] and "psycopg2" in result["message"]


def _scan_and_fix(tmp_path: Path, code: str) -> tuple[list, str]:
    from otel_sqla_doctor.api import load_config, scan_paths
    from otel_sqla_doctor.static.fixes import plan_fixes

    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    (tmp_path / "db.py").write_text(textwrap.dedent(code).lstrip("\n"))
    config = load_config([tmp_path], select=["OSD402"])
    result = scan_paths([tmp_path], config=config, use_cache=False, cwd=tmp_path)
    findings = [f for f in result.findings if f.code == "OSD402"]
    outcome = plan_fixes(findings, tmp_path, unsafe=True)
    return findings, outcome.changed.get("db.py", "")


@pytest.mark.live
def test_doctor_flags_it_and_the_fixed_urls_work(tmp_path, mysql_dsn):
    mysql_url = mysql_dsn.replace("mysql+aiomysql://", "mysql+pymysql://")
    findings, fixed = _scan_and_fix(
        tmp_path,
        f'''
        import os
        from sqlalchemy.ext.asyncio import create_async_engine

        LITE_URL = os.getenv("LITE_URL", "sqlite://")
        lite = create_async_engine(LITE_URL)
        maria = create_async_engine("{mysql_url}", pool_pre_ping=True)
        ''',
    )
    assert [f.line for f in findings] == [5, 6], findings
    assert '"sqlite+aiosqlite://"' in fixed and "mysql+aiomysql://" in fixed, fixed

    namespace: dict = {}
    exec(compile(fixed, "db.py", "exec"), namespace)

    async def probe() -> list:
        from sqlalchemy import text

        values = []
        for engine in (namespace["lite"], namespace["maria"]):
            async with engine.connect() as conn:
                values.append((await conn.execute(text("SELECT 1"))).scalar())
            await engine.dispose()
        return values

    assert asyncio.run(probe()) == [1, 1]
    print(f"[OSD402] doctor flagged lines {[f.line for f in findings]}; fixed URLs connect and run SELECT 1")
