"""OSD104 async-engine-never-instrumented, reproduced with the real SDK and a real engine.

An AsyncEngine that no instrumentation reaches: the instrumentor is given another engine only
(`engine=other.sync_engine`), after both exist. The missed engine emits zero query spans (only the
`connect` span of the global `Engine.connect` patch), while the named engine is traced. And the
counter-case the rule relies on: an engine created *after* any instrument() call, even a
per-engine one, is traced, because every call wraps `create_async_engine`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from live_support import run_script

pytestmark = pytest.mark.live

MISSED = """
import sqlalchemy.ext.asyncio as sa_async
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

reports = sa_async.create_async_engine("sqlite+aiosqlite://")
orders = sa_async.create_async_engine("sqlite+aiosqlite://", pool_pre_ping=True)
SQLAlchemyInstrumentor().instrument(engine=orders.sync_engine)
"""

CREATED_AFTER = """
import sqlalchemy.ext.asyncio as sa_async
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

orders = sa_async.create_async_engine("sqlite+aiosqlite://", pool_pre_ping=True)
SQLAlchemyInstrumentor().instrument(engine=orders.sync_engine)
reports = sa_async.create_async_engine("sqlite+aiosqlite://")
"""

START = """
import asyncio
from sqlalchemy import text

trace.set_tracer_provider(PROVIDER)
import app.db as db

async def query(engine, sql):
    async with engine.connect() as conn:
        await conn.execute(text(sql))

def measure(engine, sql):
    STARTS.started.clear(); EXPORTER.clear()
    asyncio.run(query(engine, sql))
    spans = EXPORTER.get_finished_spans()
    return {"started": list(STARTS.started), "ended": [s.name for s in spans],
            "statements": [s.attributes.get("db.statement") for s in spans if s.attributes.get("db.statement")]}

report(reports=measure(db.reports, "SELECT 'reports'"), orders=measure(db.orders, "SELECT 'orders'"))
"""


def _project(root: Path, db_code: str) -> None:
    (root / "app").mkdir()
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "db.py").write_text(textwrap.dedent(db_code).lstrip("\n"))
    (root / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")


def _doctor(root: Path) -> list:
    from otel_sqla_doctor.api import load_config, scan_paths

    result = scan_paths([root], config=load_config([root], select=["OSD104"]), use_cache=False, cwd=root)
    return [(f.code, f.path, f.line) for f in result.findings]


def test_engine_missed_by_per_engine_instrument_emits_no_query_spans(tmp_path):
    _project(tmp_path, MISSED)
    result = run_script(START, cwd=tmp_path)
    assert result["returncode"] == 0, result["stderr"]
    missed, named = result["reports"], result["orders"]
    print(f"\nOSD104 missed engine: {missed}\nOSD104 named engine: {named}")
    query_spans = [n for n in missed["started"] if n != "connect"]
    assert query_spans == [] and missed["statements"] == [], f"expected zero query spans, got {missed}"
    assert missed["ended"] == ["connect"], f"only the global connect patch shows: {missed}"
    assert named["statements"] == ["SELECT 'orders'"], f"the named engine is traced: {named}"
    assert _doctor(tmp_path) == [("OSD104", "app/db.py", 4)]


def test_engine_created_after_any_instrument_call_is_traced(tmp_path):
    _project(tmp_path, CREATED_AFTER)
    result = run_script(START, cwd=tmp_path)
    assert result["returncode"] == 0, result["stderr"]
    later = result["reports"]
    print(f"\nOSD104 engine created after instrument(engine=other): {later}")
    assert later["statements"] == ["SELECT 'reports'"], f"the wrapped create_async_engine traces it: {later}"
    assert later["started"] == later["ended"], "one tracer, nothing leaked"
    assert _doctor(tmp_path) == []
