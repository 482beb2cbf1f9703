"""`doctor probe` against the real PostgreSQL server (asyncpg)."""

from __future__ import annotations

import re

import pytest

from probe_helpers import TRACEPARENT_IN_DETAIL

pytestmark = pytest.mark.live


def test_postgres_probe_passes_and_current_query_returns_the_query_spans_traceparent(invoke, pg_dsn):
    run = invoke("--format", "json", pg_dsn)

    assert run.exit_code == 0, run.output
    statuses = run.statuses()
    for code in ("OSD501", "OSD502", "OSD503", "OSD504", "OSD505", "OSD507", "OSD509"):
        assert statuses[code] == "pass", run.check(code)
    assert "read-only transaction" in run.check("OSD501")["detail"]

    commenter = run.check("OSD506")
    match = re.search(TRACEPARENT_IN_DETAIL, commenter["detail"])
    assert match and "current_query()" in commenter["detail"], commenter
    assert match[3] == re.search(r"span id ([0-9a-f]{16})", run.check("OSD503")["detail"])[1]
    assert match[2] in run.check("OSD504")["detail"]  # same trace as the probe's parent span
    # asyncpg sends the doubled %% as is (ground truth row 5).
    assert commenter["status"] == "warn" and "sqlalchemy%%3A" in commenter["detail"]


def test_statement_cache_cost_is_measured_on_the_server(invoke, pg_dsn):
    run = invoke("--format", "json", pg_dsn)

    cache = run.check("OSD508")
    assert cache["status"] == "warn", cache
    measured = re.search(r"(\d+) server-side prepares for (\d+) identical executions with the commenter .*?, (\d+) without it", cache["detail"])
    assert measured, cache["detail"]
    with_comment, executions, without = map(int, measured.groups())
    # Every execution carries a new traceparent, so every one is a new PREPARE; without it, one.
    assert with_comment == executions == 10
    assert without == 1
    assert "opentelemetry_values" in cache["remediation"]


def test_probe_closes_its_connection_instead_of_leaving_it_idle_in_transaction(invoke, pg_dsn):
    import asyncio
    import time

    import asyncpg

    async def probe_sessions() -> list:
        conn = await asyncpg.connect(pg_dsn.replace("postgresql+asyncpg", "postgresql"))
        try:
            return await conn.fetch("SELECT state FROM pg_stat_activity WHERE application_name = 'otel-sqla-doctor probe'")
        finally:
            await conn.close()

    run = invoke(pg_dsn)

    assert run.exit_code == 0
    deadline = time.monotonic() + 3  # a terminated backend leaves pg_stat_activity asynchronously
    while (sessions := asyncio.run(probe_sessions())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sessions == []


def test_semconv_opt_in_database_is_reported_and_checked(pg_dsn):
    from probe_helpers import clean_env, doctor

    # The instrumentation reads OTEL_SEMCONV_STABILITY_OPT_IN once per process: a fresh one.
    run = doctor("--format", "json", pg_dsn, env=clean_env(OTEL_SEMCONV_STABILITY_OPT_IN="database"))

    assert run.check("OSD505")["status"] == "pass"
    assert "db.system.name='postgresql'" in run.check("OSD505")["detail"]
    assert "db.query.text" in run.check("OSD509")["detail"]
