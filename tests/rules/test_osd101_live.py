"""OSD101 async-engine-passed-to-instrumentor, reproduced with the real SDK and a real engine.

Ground truth row 1: `instrument(engine=<AsyncEngine>)` raises NotImplementedError after it has
patched `create_engine`/`Engine.connect`, so only `connect` spans appear; a retry patches again,
and an engine created afterwards gets two tracers: 2 query spans started, 1 ended.
"""

from __future__ import annotations

import textwrap

import pytest

from live_support import run_script

pytestmark = pytest.mark.live

NOT_IMPLEMENTED = (
    "NotImplementedError: asynchronous events are not implemented at this time.  Apply synchronous listeners "
    "to the AsyncEngine.sync_engine or AsyncConnection.sync_connection attributes."
)

SETUP = """
import asyncio
from sqlalchemy import text
import sqlalchemy.ext.asyncio as sa_async
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

async def query(engine):
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))

def instrument(engine):
    try:
        SQLAlchemyInstrumentor().instrument(engine=engine, tracer_provider=PROVIDER)
        return None
    except Exception as exc:  # what services do: log it and start anyway
        return f"{type(exc).__name__}: {exc}"
"""


def test_async_engine_raises_and_leaves_connect_only_spans():
    result = run_script(
        SETUP
        + """
engine = sa_async.create_async_engine("sqlite+aiosqlite://")
error = instrument(engine)
asyncio.run(query(engine))
report(error=error, instrumented=SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry)
"""
    )
    print(f"\nOSD101 one failed call: error={result['error']!r} ended={result['ended']}")
    assert result["error"] == NOT_IMPLEMENTED
    assert result["ended"] == ["connect"], f"expected connect spans only, got {result['ended']}"
    assert result["statements"] == []
    assert result["instrumented"] is False


def test_two_failed_calls_then_a_later_engine_leaks_one_span_per_query():
    result = run_script(
        SETUP
        + """
first = sa_async.create_async_engine("sqlite+aiosqlite://")
errors = [instrument(first), instrument(first)]
later = sa_async.create_async_engine("sqlite+aiosqlite://")  # through the twice-wrapped factory
STARTS.started.clear(); EXPORTER.clear()
asyncio.run(query(later))
report(errors=errors)
"""
    )
    started_selects = [n for n in result["started"] if n.upper().startswith("SELECT")]
    ended_selects = [n for n in result["ended"] if n.upper().startswith("SELECT")]
    print(f"\nOSD101 after two failed calls: started={result['started']} ended={result['ended']}")
    assert result["errors"] == [NOT_IMPLEMENTED, NOT_IMPLEMENTED]
    assert (len(started_selects), len(ended_selects)) == (2, 1), (
        f"expected 2 SELECT spans started and 1 ended, got started={result['started']} ended={result['ended']}"
    )


def test_the_doctor_flags_it(tmp_path):
    from otel_sqla_doctor.api import load_config, scan_paths

    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    (tmp_path / "app.py").write_text(
        textwrap.dedent(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine("sqlite+aiosqlite://")
            SQLAlchemyInstrumentor().instrument(engine=engine)
            """
        )
    )
    config = load_config([tmp_path], select=["OSD101"])
    result = scan_paths([tmp_path], config=config, use_cache=False, cwd=tmp_path)
    assert [(f.code, f.path, f.line) for f in result.findings] == [("OSD101", "app.py", 6)]
