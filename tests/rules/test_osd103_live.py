"""OSD103 instrumentor-called-twice, reproduced with the real SDK and two real engines.

Ground truth row 12: the second `instrument()` logs "Attempting to instrument while already
instrumented", returns None, and its engine gets `connect` spans only; one call with
`engines=[a.sync_engine, b.sync_engine]` instruments both. The doctor's fix (merge into one
`engines=[...]` call) is applied to a real script and the fixed script is run too.
"""

from __future__ import annotations

import textwrap

import pytest

from live_support import run_script

pytestmark = pytest.mark.live

SERVICE = """
import asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

orders = create_async_engine("sqlite+aiosqlite://")
SQLAlchemyInstrumentor().instrument(engine=orders.sync_engine, tracer_provider=PROVIDER)
billing = create_async_engine("sqlite+aiosqlite://")
SQLAlchemyInstrumentor().instrument(engine=billing.sync_engine, tracer_provider=PROVIDER)
"""

QUERIES = """
async def query(engine, sql):
    async with engine.connect() as conn:
        await conn.execute(text(sql))

asyncio.run(query(orders, "SELECT 'orders'"))
orders_spans = [s.name for s in EXPORTER.get_finished_spans()]
EXPORTER.clear()
asyncio.run(query(billing, "SELECT 'billing'"))
report(orders_spans=orders_spans)
"""


def test_second_engine_gets_connect_spans_only_and_a_warning():
    result = run_script(SERVICE + QUERIES)
    print(f"\nOSD103 two calls: first engine {result['orders_spans']}, second engine {result['ended']}, logs {result['logs']}")
    assert result["orders_spans"] == ["connect", "SELECT"]
    assert result["ended"] == ["connect"], f"second engine: expected connect only, got {result['ended']}"
    assert result["statements"] == []
    assert "WARNING opentelemetry.instrumentation.instrumentor: Attempting to instrument while already instrumented" in result["logs"]


def test_one_call_with_engines_instruments_both():
    merged = SERVICE.replace(
        "SQLAlchemyInstrumentor().instrument(engine=orders.sync_engine, tracer_provider=PROVIDER)\n", ""
    ).replace(
        "instrument(engine=billing.sync_engine,", "instrument(engines=[orders.sync_engine, billing.sync_engine],"
    )
    result = run_script(merged + QUERIES)
    print(f"\nOSD103 engines=[...]: first engine {result['orders_spans']}, second engine {result['ended']}")
    assert result["orders_spans"] == ["connect", "SELECT"]
    assert result["ended"] == ["connect", "SELECT"] and result["statements"] == ["SELECT 'billing'"]
    assert not [line for line in result["logs"] if "already instrumented" in line]


def test_the_doctor_flags_it_and_its_fix_instruments_both(tmp_path):
    """Scan the service, apply the unsafe fix, run the fixed service."""
    from otel_sqla_doctor.api import load_config, scan_paths
    from otel_sqla_doctor.static.fixes import plan_fixes

    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    (tmp_path / "service.py").write_text(textwrap.dedent(SERVICE).lstrip("\n"))
    result = scan_paths([tmp_path], config=load_config([tmp_path], select=["OSD103"]), use_cache=False, cwd=tmp_path)
    assert [(f.code, f.path, f.line) for f in result.findings] == [("OSD103", "service.py", 9)]
    assert "service.py:7 ran first" in result.findings[0].message
    assert result.findings[0].fix is not None and not result.findings[0].fix.safe

    fixed = plan_fixes(result.findings, tmp_path, unsafe=True).changed["service.py"]
    assert fixed.count("instrument(") == 1
    assert "instrument(engines=[orders.sync_engine, billing.sync_engine], tracer_provider=PROVIDER)" in fixed
    after = run_script(fixed + QUERIES)
    print(f"\nOSD103 after the doctor's fix: first engine {after['orders_spans']}, second engine {after['ended']}")
    assert after["orders_spans"] == ["connect", "SELECT"] and after["ended"] == ["connect", "SELECT"]
