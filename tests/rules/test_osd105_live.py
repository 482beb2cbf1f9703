"""OSD105 duplicate-driver-instrumentation, reproduced on the real PostgreSQL through asyncpg.

Ground truth row 8: with AsyncPGInstrumentor beside SQLAlchemyInstrumentor one `SELECT` gives a
SQLAlchemy `SELECT` span and an asyncpg `SELECT` span, siblings under the request span (same
parent), plus asyncpg BEGIN/ROLLBACK spans; with SQLAlchemy's instrumentation alone, one span.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from live_support import run_script

pytestmark = pytest.mark.live

BODY = """
import asyncio
from sqlalchemy import text
import sqlalchemy.ext.asyncio as sa_async
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

engine = sa_async.create_async_engine({dsn!r})
SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=PROVIDER)
if {both}:
    AsyncPGInstrumentor().instrument(tracer_provider=PROVIDER)
tracer = PROVIDER.get_tracer("osd105")

async def warm_up():  # the dialect's first-connect queries are not what this test is about
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    await engine.dispose()  # its pooled connection belongs to this event loop

async def request():
    with tracer.start_as_current_span("request") as span:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 2"))
    await engine.dispose()
    return format(span.get_span_context().span_id, "016x")

asyncio.run(warm_up())
EXPORTER.clear()
request_id = asyncio.run(request())
spans = [
    dict(
        name=s.name,
        scope=s.instrumentation_scope.name.rsplit(".", 1)[-1],
        parent=format(s.parent.span_id, "016x") if s.parent else None,
        statement=s.attributes.get("db.statement"),
    )
    for s in EXPORTER.get_finished_spans()
]
report(request_id=request_id, spans=spans)
"""


def _selects(result) -> list[dict]:
    return [s for s in result["spans"] if s["statement"] == "SELECT 2"]


def test_both_instrumentors_trace_each_query_twice_as_siblings(pg_dsn):
    both = run_script(BODY.format(dsn=pg_dsn, both=True))
    alone = run_script(BODY.format(dsn=pg_dsn, both=False))
    selects, single = _selects(both), _selects(alone)
    print(
        f"\nOSD105 SQLAlchemy + asyncpg instrumentors: {len(both['spans'])} spans for one SELECT "
        f"({[(s['scope'], s['name']) for s in both['spans']]}); SQLAlchemy alone: {len(alone['spans'])} "
        f"({[(s['scope'], s['name']) for s in alone['spans']]})"
    )
    assert sorted(s["scope"] for s in selects) == ["asyncpg", "sqlalchemy"], selects
    assert {s["parent"] for s in selects} == {both["request_id"]}, f"siblings under the request span: {selects}"
    assert [s["scope"] for s in single] == ["sqlalchemy"] and single[0]["parent"] == alone["request_id"]
    driver_extra = [s["name"] for s in both["spans"] if s["scope"] == "asyncpg" and s["statement"] != "SELECT 2"]
    assert "BEGIN;" in driver_extra and "ROLLBACK;" in driver_extra, driver_extra
    assert len(both["spans"]) > len(alone["spans"])


def test_the_doctor_flags_it(tmp_path):
    from otel_sqla_doctor.api import load_config, scan_paths

    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    (tmp_path / "app.py").write_text(textwrap.dedent(
        """
        from sqlalchemy.ext.asyncio import create_async_engine
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor as Driver

        engine = create_async_engine("postgresql+asyncpg://app@db/app")
        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
        Driver().instrument()
        """
    ))
    result = scan_paths([tmp_path], config=load_config([tmp_path], select=["OSD105"]), use_cache=False, cwd=tmp_path)
    assert [(f.code, f.path, f.line) for f in result.findings] == [("OSD105", "app.py", 8)]


def _old_asyncpg_instrumentation(version: str) -> Path:
    """opentelemetry-instrumentation-asyncpg at `version`, unpacked once (it is pure Python)."""
    cache = Path(tempfile.gettempdir()) / f"osd105-instrumentation-asyncpg-{version}"
    if not (cache / "opentelemetry" / "instrumentation" / "asyncpg").is_dir():
        download = cache.with_name(cache.name + ".download")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(download), f"opentelemetry-instrumentation-asyncpg=={version}"],
            check=True, capture_output=True, timeout=300,
        )
        (wheel,) = download.glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(cache)
    return cache


def test_before_0_64_the_asyncpg_instrumentation_does_not_see_sqlalchemys_queries(pg_dsn):
    """Why OSD105 is silent for pins older than 0.64b0: those releases wrap Connection methods
    only, and SQLAlchemy's asyncpg dialect runs queries through PreparedStatement."""
    old = _old_asyncpg_instrumentation("0.63b0")
    result = run_script(BODY.format(dsn=pg_dsn, both=True), env=dict(os.environ, PYTHONPATH=str(old)))
    print(f"\nOSD105 with instrumentation-asyncpg 0.63b0: {[(s['scope'], s['name']) for s in result['spans']]}")
    assert [s["scope"] for s in _selects(result)] == ["sqlalchemy"], result["spans"]
