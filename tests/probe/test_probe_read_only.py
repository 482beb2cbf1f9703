"""The guard every probe session runs first really makes the session read-only."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.live


def _write_after_guard(dsn: str, write: str) -> str:
    from sqlalchemy.ext.asyncio import create_async_engine

    from otel_sqla_doctor.live.backends import backend_for

    async def attempt() -> str:
        engine = create_async_engine(dsn)
        try:
            async with engine.connect() as conn:
                guarded = await backend_for(engine.dialect.name).guard(conn, 5.0)
                try:
                    await conn.exec_driver_sql(write)
                except Exception as exc:
                    return f"{guarded}: refused: {exc}"
                return f"{guarded}: WRITE ACCEPTED"
        finally:
            await engine.dispose()

    return asyncio.run(attempt())


def test_postgres_session_refuses_writes(pg_dsn):
    outcome = _write_after_guard(pg_dsn, "CREATE TEMP TABLE osd_probe_guard (a int)")

    assert outcome.startswith("read-only transaction, statement_timeout 5s: refused:")
    assert "read-only transaction" in outcome.split("refused:")[1]


def test_mariadb_session_refuses_writes(mysql_dsn):
    outcome = _write_after_guard(mysql_dsn, "CREATE TEMPORARY TABLE osd_probe_guard (a int)")

    assert outcome.startswith("read-only transaction, max_statement_time 5s: refused:")
    assert "READ ONLY transaction" in outcome


def test_sqlite_session_refuses_writes():
    outcome = _write_after_guard("sqlite+aiosqlite://", "CREATE TABLE osd_probe_guard (a int)")

    assert outcome.startswith("PRAGMA query_only: refused:")
    assert "readonly" in outcome
