"""OSD401 live: a sync engine inside `async def` stalls the event loop, and the spans do not show it.

Against the real PostgreSQL: `SELECT pg_sleep(0.3)` runs once through a sync engine (psycopg2) and
once through the async engine (asyncpg), each inside an `async def` request handler, while a 5 ms
ticker task measures the largest gap between its wake-ups. Both engines are instrumented; the
query spans are compared too.
"""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest

from tests.live_support import run_script

QUERY_SECONDS = 0.3

SCRIPT = """
import asyncio, time
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

sync_engine = create_engine({sync_url!r})
async_engine = create_async_engine({async_url!r})
SQLAlchemyInstrumentor().instrument(engines=[sync_engine, async_engine.sync_engine], tracer_provider=PROVIDER)
tracer = PROVIDER.get_tracer("osd401")
QUERY = text("SELECT pg_sleep({seconds})")


async def sync_handler():
    with tracer.start_as_current_span("request sync"):
        with sync_engine.connect() as conn:  # what OSD401 reports
            conn.execute(QUERY)


async def async_handler():
    with tracer.start_as_current_span("request async"):
        async with async_engine.connect() as conn:
            await conn.execute(QUERY)


async def measure(handler):
    gaps = []
    stop = asyncio.Event()

    async def ticker():
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)  # let the ticker settle
    started = time.perf_counter()
    await handler()
    wall = time.perf_counter() - started
    await asyncio.sleep(0.05)
    stop.set()
    await task
    return {{"max_gap_ms": round(max(gaps) * 1000, 1), "wall_s": round(wall, 3)}}


async def main():
    # Warm both pools so that connecting is not measured.
    with sync_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    async with async_engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    EXPORTER.clear()
    figures = {{"sync": await measure(sync_handler), "async": await measure(async_handler)}}
    await async_engine.dispose()
    sync_engine.dispose()
    spans = EXPORTER.get_finished_spans()
    ids = {{s.context.span_id: s.name for s in spans}}
    figures["spans"] = [
        [s.name, ids.get(s.parent.span_id) if s.parent else None, s.attributes.get("db.statement"), s.attributes.get("db.system")]
        for s in spans
        if s.attributes.get("db.statement")
    ]
    return figures


report(**asyncio.run(main()))
"""


@pytest.mark.live
def test_sync_engine_in_async_def_stalls_the_event_loop(pg_dsn):
    if importlib.util.find_spec("psycopg2") is None:
        pytest.fail("psycopg2 (psycopg2-binary) is needed for the sync PostgreSQL engine; pip install psycopg2-binary")
    sync_url = pg_dsn.replace("postgresql+asyncpg://", "postgresql+psycopg2://")
    result = run_script(SCRIPT.format(sync_url=sync_url, async_url=pg_dsn, seconds=QUERY_SECONDS))
    sync, async_ = result["sync"], result["async"]
    figures = (
        f"pg_sleep({QUERY_SECONDS}) through a sync engine in async def: max event-loop gap {sync['max_gap_ms']} ms "
        f"(query wall {sync['wall_s']} s); through asyncpg: {async_['max_gap_ms']} ms (query wall {async_['wall_s']} s)"
    )
    print(f"\n[OSD401] {figures}")
    print(f"[OSD401] query spans (name, parent, db.statement, db.system): {result['spans']}")
    # The loop is frozen for the whole query with the sync engine, and not with the async one.
    assert sync["max_gap_ms"] >= QUERY_SECONDS * 1000 * 0.9, figures
    assert async_["max_gap_ms"] < 100, figures
    # ... and the telemetry looks the same: one query span per handler, child of the request span.
    by_parent = {parent: (name, statement, system) for name, parent, statement, system in result["spans"]}
    assert set(by_parent) == {"request sync", "request async"}, result["spans"]
    for parent, (name, statement, system) in by_parent.items():
        assert name.startswith("SELECT") and statement == f"SELECT pg_sleep({QUERY_SECONDS})" and system == "postgresql", (
            parent,
            name,
        )


def test_the_doctor_flags_the_handler(tmp_path: Path):
    from otel_sqla_doctor.api import load_config, scan_paths

    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    handler = SCRIPT.split("async def sync_handler", 1)[1].split("async def async_handler", 1)[0]
    code = textwrap.dedent(
        """
        from sqlalchemy import create_engine, text
        from sqlalchemy.ext.asyncio import create_async_engine

        sync_engine = create_engine("postgresql+psycopg2://postgres@127.0.0.1/test")
        async_engine = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1/test")
        QUERY = text("SELECT pg_sleep(0.3)")
        tracer = None

        """
    ).lstrip() + "async def sync_handler" + handler.replace("{{", "{").replace("}}", "}") + textwrap.dedent(
        """
        async def async_handler():
            async with async_engine.connect() as conn:
                await conn.execute(QUERY)
        """
    )
    (tmp_path / "app.py").write_text(code)
    result = scan_paths([tmp_path], config=load_config([tmp_path], select=["OSD401"]), use_cache=False, cwd=tmp_path)
    flagged = [(f.line, code.splitlines()[f.line - 1].strip()) for f in result.findings]
    print(f"[OSD401] doctor: {flagged}")
    assert flagged == [(11, "with sync_engine.connect() as conn:  # what OSD401 reports")], flagged


AWAIT_SYNC_SCRIPT = """
import asyncio
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

engine = create_engine("sqlite://")


async def handler():
    with Session(engine) as session:
        try:
            await session.execute(text("SELECT 1"))
        except TypeError as exc:
            return str(exc)
        return "awaited"


report(error=asyncio.run(handler()))
"""


def test_awaiting_a_sync_session_call_is_a_type_error():
    """Why OSD401 never reports an awaited call: on a sync Session it cannot run at all, so an
    awaited `session.execute()` in working code is an AsyncSession, whatever its annotation."""
    result = run_script(AWAIT_SYNC_SCRIPT)
    print(f"\n[OSD401] await on a sync Session.execute(): {result['error']}")
    assert "can't be used in 'await' expression" in result["error"]


def test_the_doctor_trusts_await_over_a_wrong_annotation(tmp_path: Path):
    from otel_sqla_doctor.api import load_config, scan_paths

    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    (tmp_path / "history.py").write_text(textwrap.dedent(
        """
        import sqlalchemy as sa

        async def history(session: sa.orm.Session, query):
            result = await session.execute(query)     # awaited: really an AsyncSession
            rows = session.execute(query)             # not awaited on a Session: blocks
            return result, rows
        """
    ).lstrip())
    result = scan_paths([tmp_path], config=load_config([tmp_path], select=["OSD401"]), use_cache=False, cwd=tmp_path)
    assert [(f.path, f.line) for f in result.findings] == [("history.py", 5)]
