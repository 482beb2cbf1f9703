"""Issue 8: PostgreSQL's own statistics prove that a full probe wrote nothing to the database."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from otel_sqla_doctor.live import probe

pytestmark = pytest.mark.live

COUNTERS = "SELECT tup_inserted, tup_updated, tup_deleted, xact_rollback FROM pg_stat_database WHERE datname = 'postgres'"


async def _counters() -> tuple:
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        row = await conn.fetchrow(COUNTERS)
        return row["tup_inserted"], row["tup_updated"], row["tup_deleted"]
    finally:
        await conn.close()


def test_probe_writes_no_row_on_postgresql(pg_dsn):
    dsn = pg_dsn.rsplit("/", 1)[0] + "/postgres"
    time.sleep(1.2)  # let earlier sessions' statistics reach pg_stat_database
    before = asyncio.run(_counters())
    report = probe(dsn, timeout=10.0)
    assert {c.code: c.status.value for c in report.checks}["OSD503"] == "pass"
    time.sleep(1.2)  # statistics are flushed when the probe's backends end (at most once a second)
    after = asyncio.run(_counters())
    assert after == before, f"tuples inserted/updated/deleted changed: {before} -> {after}"
