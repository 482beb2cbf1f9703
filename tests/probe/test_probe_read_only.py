"""The guard every probe session runs first really makes the session read-only, also on an
AUTOCOMMIT engine, and what it reports is what the server then shows."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.live


def _write_after_guard(dsn: str, write: str, **engine_options) -> str:
    from sqlalchemy.ext.asyncio import create_async_engine

    from otel_sqla_doctor.live.backends import backend_for
    from otel_sqla_doctor.live.session import guard_connection

    async def attempt() -> str:
        engine = create_async_engine(dsn, **engine_options)
        try:
            async with engine.connect() as conn:
                guard = await guard_connection(conn, backend_for(engine.dialect.name), engine.dialect.driver, 5.0)
                try:
                    await conn.exec_driver_sql(write)
                except Exception as exc:
                    return f"{guard.describe()}: refused: {exc}"
                return f"{guard.describe()}: WRITE ACCEPTED"
        finally:
            await engine.dispose()

    return asyncio.run(attempt())


@pytest.mark.parametrize("isolation", [{}, {"isolation_level": "AUTOCOMMIT"}], ids=["transaction", "autocommit"])
def test_postgres_session_refuses_writes(pg_dsn, isolation):
    outcome = _write_after_guard(pg_dsn, "CREATE TEMP TABLE osd_probe_guard (a int)", **isolation)

    assert outcome.startswith("the server confirms read-only transactions for this session: transaction_read_only=on, statement_timeout=5s: refused:"), outcome
    assert "read-only transaction" in outcome.split("refused:")[1]


@pytest.mark.parametrize("isolation", [{}, {"isolation_level": "AUTOCOMMIT"}], ids=["transaction", "autocommit"])
def test_mariadb_session_refuses_writes(mysql_dsn, isolation):
    outcome = _write_after_guard(mysql_dsn, "CREATE TEMPORARY TABLE osd_probe_guard (a int)", **isolation)

    assert outcome.startswith("the server confirms read-only transactions for this session: tx_read_only=1, max_statement_time=5: refused:"), outcome
    assert "READ ONLY transaction" in outcome


def test_sqlite_session_refuses_writes():
    outcome = _write_after_guard("sqlite+aiosqlite://", "CREATE TABLE osd_probe_guard (a int)")

    assert outcome.startswith("SQLite confirms read-only transactions for this session: PRAGMA query_only=1: refused:"), outcome
    assert "readonly" in outcome
