"""OSD301 live: SQL built with an f-string gives one `db.statement` per value; bound parameters give one.

The user's module is scanned by the doctor, fixed with its (unsafe) fix, and both versions run
against a real engine with the real SDK: the interpolated query exports two distinct statements
for two ids, the fixed one exports a single statement and returns the same rows.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from live_support import run_script
from otel_sqla_doctor.api import load_config, scan_paths
from otel_sqla_doctor.static.fixes import plan_fixes

USER_MODULE = '''
from sqlalchemy import text


async def user_name(conn, user_id):
    result = await conn.execute(text(f"SELECT name FROM users WHERE id = {user_id}"))
    return result.scalar()
'''

SCRIPT = '''
import asyncio, importlib, sys
sys.path.insert(0, {directory!r})
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

engine = create_async_engine({url!r})
SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=PROVIDER)
temp = "TEMPORARY " if engine.dialect.name == "postgresql" else ""

async def main():
    out = {{}}
    async with engine.connect() as conn:
        await conn.execute(text(f"CREATE {{temp}}TABLE users (id integer PRIMARY KEY, name text)"))
        await conn.execute(text("INSERT INTO users VALUES (1, 'ada'), (2, 'grace')"))
        for variant in ("interpolated", "fixed"):
            module = importlib.import_module(variant)
            EXPORTER.clear()
            names = [await module.user_name(conn, user_id) for user_id in (1, 2)]
            statements = [s.attributes.get("db.statement") for s in EXPORTER.get_finished_spans()]
            out[variant] = {{"names": names, "statements": statements}}
    await engine.dispose()
    return out

report(**asyncio.run(main()))
'''


def _scan_and_fix(directory: Path) -> tuple[list, str]:
    source = textwrap.dedent(USER_MODULE).lstrip()
    (directory / "interpolated.py").write_text(source, encoding="utf-8")
    (directory / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n", encoding="utf-8")
    config = load_config([directory], select=["OSD301"])
    result = scan_paths([directory], config=config, use_cache=False, cwd=directory)
    findings = [f for f in result.findings if f.code == "OSD301"]
    outcome = plan_fixes(findings, directory, unsafe=True)
    fixed = outcome.changed.get("interpolated.py", "")
    (directory / "fixed.py").write_text(fixed, encoding="utf-8")
    return findings, fixed


def _run(directory: Path, url: str) -> dict:
    result = run_script(SCRIPT.format(directory=str(directory), url=url))
    assert result["returncode"] == 0, result["stderr"]
    interpolated, fixed = result["interpolated"], result["fixed"]
    print(f"\n[OSD301 {url.split(':')[0]}] interpolated: {len(set(interpolated['statements']))} distinct db.statement for 2 calls {interpolated['statements']}")
    print(f"[OSD301 {url.split(':')[0]}] bound:        {len(set(fixed['statements']))} distinct db.statement for 2 calls {fixed['statements']}")
    return result


def _check(result: dict) -> None:
    interpolated, fixed = result["interpolated"], result["fixed"]
    assert interpolated["names"] == fixed["names"] == ["ada", "grace"], result
    assert len(interpolated["statements"]) == 2 and len(set(interpolated["statements"])) == 2, interpolated
    assert any("= 1" in s for s in interpolated["statements"]) and any("= 2" in s for s in interpolated["statements"])
    assert len(fixed["statements"]) == 2 and len(set(fixed["statements"])) == 1, fixed


def test_doctor_flags_and_fixes_it(tmp_path):
    findings, fixed = _scan_and_fix(tmp_path)
    assert [(f.line, f.name) for f in findings] == [(5, "interpolated-sql")], findings
    assert "`user_id`" in findings[0].message
    assert 'text("SELECT name FROM users WHERE id = :user_id").bindparams(user_id=user_id)' in fixed, fixed


def test_interpolated_sql_one_statement_per_value_sqlite(tmp_path):
    _scan_and_fix(tmp_path)
    _check(_run(tmp_path, "sqlite+aiosqlite://"))


@pytest.mark.live
def test_interpolated_sql_one_statement_per_value_postgresql(tmp_path, pg_dsn):
    _scan_and_fix(tmp_path)
    result = _run(tmp_path, pg_dsn)
    _check(result)
    # PostgreSQL sees the value in the SQL text, versus a `$1` parameter.
    assert all("$1" in s for s in result["fixed"]["statements"]), result["fixed"]


UNBINDABLE_SCRIPT = '''
import asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine({url!r})
STATEMENTS = {statements!r}

async def main():
    errors = {{}}
    for sql in STATEMENTS:
        async with engine.connect() as conn:
            try:
                await conn.execute(text(sql), {{"name": "osd301_never_created"}})
                errors[sql] = None
            except Exception as exc:
                errors[sql] = type(exc).__name__ + ": " + str(exc).splitlines()[0]
            await conn.rollback()
    await engine.dispose()
    return errors

report(errors=asyncio.run(main()))
'''


@pytest.mark.live
@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_ddl_arguments_cannot_be_bound(backend, request):
    """Why OSD301 leaves DDL and utility statements alone: a bound parameter where they take an
    identifier or an id is a syntax error on the real server, so "use bound parameters" is no fix."""
    if backend == "postgresql":
        url = request.getfixturevalue("pg_dsn")
        statements = [
            "CREATE SCHEMA :name", "DROP TABLE :name", "PREPARE TRANSACTION :name", "SAVEPOINT :name",
            # Utility statements real code builds with f-strings (SurfSense, onyx): SET/LOCK/DO/LISTEN.
            "SET statement_timeout = :name", "SET LOCAL lock_timeout = :name", "SET search_path TO :name",
            "RESET :name", "LOCK TABLE :name", "LISTEN :name", "DO :name",
        ]
    else:
        url = request.getfixturevalue("mysql_dsn")
        statements = ["CREATE DATABASE :name", "DROP TABLE :name", "SHOW CREATE TABLE :name", "SAVEPOINT :name", "LOCK TABLES :name READ"]
    errors = run_script(UNBINDABLE_SCRIPT.format(url=url, statements=statements))["errors"]
    print(f"\n[OSD301] {backend}: " + "; ".join(f"{sql!r} -> {error}" for sql, error in errors.items()))
    for sql, error in errors.items():
        assert error is not None and "syntax" in error.lower(), (sql, error)


def test_the_doctor_leaves_ddl_alone_unless_strict(tmp_path):
    code = textwrap.dedent(
        """
        from sqlalchemy import Connection

        def provision(conn: Connection, ident, user_id):
            conn.exec_driver_sql("CREATE DATABASE %s" % ident)
            conn.exec_driver_sql(f"SELECT * FROM users WHERE id = {user_id}")
        """
    ).lstrip()
    (tmp_path / "provision.py").write_text(code)
    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    default = scan_paths([tmp_path], config=load_config([tmp_path], select=["OSD301"]), use_cache=False, cwd=tmp_path)
    assert [f.line for f in default.findings] == [5]
    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n[tool.otel-sqla-doctor.options.OSD301]\nstrict = true\n")
    strict = scan_paths([tmp_path], config=load_config([tmp_path], select=["OSD301"]), use_cache=False, cwd=tmp_path)
    assert [f.line for f in strict.findings] == [4, 5]
    assert "cannot take bound parameters" in strict.findings[0].message
