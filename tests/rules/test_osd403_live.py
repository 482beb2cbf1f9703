"""OSD403 live: an engine created per request opens a pool per request and escapes instrumentation.

Against the real PostgreSQL, in a fresh interpreter shaped like a service: the handler module
imports `create_async_engine` at the top (as applications do), then start-up creates the app's
engine and instruments it (`instrument(engine=engine.sync_engine)`), then a handler that builds
its own engine is called N times. We count query spans and the server's connections.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.live_support import run_script

CALLS = 5

SCRIPT = """
import asyncio, gc
import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine  # the handler module's import, at the top
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

DSN = {dsn!r}
RAW_DSN = DSN.replace("postgresql+asyncpg://", "postgresql://")
TAG = {tag!r}
tracer = PROVIDER.get_tracer("osd403")


async def get_report():
    # What OSD403 reports: a new engine (a new pool) per request.
    engine = create_async_engine(DSN, connect_args={{"server_settings": {{"application_name": TAG}}}})
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()


async def connections(conn):
    return await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", TAG)


async def main():
    # Start-up: the app's engine, instrumented per engine.
    app_engine = create_async_engine(DSN)
    SQLAlchemyInstrumentor().instrument(engine=app_engine.sync_engine, tracer_provider=PROVIDER)
    app_pids = []
    with tracer.start_as_current_span("request startup-engine"):
        for _ in range({calls}):
            async with app_engine.connect() as conn:
                app_pids.append((await conn.execute(text("SELECT pg_backend_pid()"))).scalar())
    observer = await asyncpg.connect(RAW_DSN)
    results, open_after = [], []
    for i in range({calls}):
        with tracer.start_as_current_span(f"request {{i}}"):
            results.append(await get_report())
        open_after.append(await connections(observer))
    alive_engines = sum(1 for o in gc.get_objects() if type(o).__name__ == "AsyncEngine") - 1
    gc.collect()
    await asyncio.sleep(0.2)
    open_after_gc = await connections(observer)
    await observer.close()
    await app_engine.dispose()
    spans = EXPORTER.get_finished_spans()
    names = {{s.context.span_id: s.name for s in spans}}
    return {{
        "handler_pids": results,
        "app_pids": app_pids,
        "open_after_each_call": open_after,
        "handler_engines_alive": alive_engines,
        "open_after_gc": open_after_gc,
        "query_spans": [(s.name, names.get(s.parent.span_id) if s.parent else None) for s in spans if s.attributes.get("db.statement")],
    }}


report(**asyncio.run(main()))
"""


@pytest.mark.live
def test_engine_per_request_opens_a_pool_per_request_and_has_no_spans(pg_dsn):
    tag = "osd403-live"
    result = run_script(SCRIPT.format(dsn=pg_dsn, tag=tag, calls=CALLS))
    handler_spans = [s for s in result["query_spans"] if s[1] != "request startup-engine"]
    startup_spans = [s for s in result["query_spans"] if s[1] == "request startup-engine"]
    figures = (
        f"{CALLS} calls through the startup engine: {len(set(result['app_pids']))} server connection(s), "
        f"{len(startup_spans)} query spans; {CALLS} handler calls with their own engine: "
        f"{len(set(result['handler_pids']))} server connections (backend pids {result['handler_pids']}), "
        f"{len(handler_spans)} query spans; handler connections still open after each call "
        f"{result['open_after_each_call']} (closed only when the garbage collector finds the engine: "
        f"{result['open_after_gc']} after gc.collect())"
    )
    print(f"\n[OSD403] {figures}")
    warnings = sorted({line for line in result["stderr"].splitlines() if "garbage collector" in line or "Warning" in line})
    print(f"[OSD403] interpreter warnings: {warnings[:3]}")
    # The startup engine is traced, and reuses one connection; the handler's engines are never
    # traced, and each call opens a new pool and a new server connection.
    assert len(startup_spans) == CALLS and len(set(result["app_pids"])) == 1, figures
    assert handler_spans == [], figures
    assert len(set(result["handler_pids"])) == CALLS, figures
    assert max(result["open_after_each_call"]) >= 1, figures


def test_the_doctor_flags_the_handler(tmp_path: Path):
    from otel_sqla_doctor.api import load_config, scan_paths

    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    code = textwrap.dedent(
        """
        from fastapi import FastAPI
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        app = FastAPI()
        DSN = "postgresql+asyncpg://postgres@127.0.0.1/test"

        @app.get("/report")
        async def get_report():
            engine = create_async_engine(DSN)
            async with engine.connect() as conn:
                return (await conn.execute(text("SELECT 41 + 1"))).scalar()
        """
    ).lstrip()
    (tmp_path / "app.py").write_text(code)
    result = scan_paths([tmp_path], config=load_config([tmp_path], select=["OSD403"]), use_cache=False, cwd=tmp_path)
    flagged = [(f.line, code.splitlines()[f.line - 1].strip()) for f in result.findings]
    print(f"[OSD403] doctor: {flagged}")
    assert flagged == [(10, "engine = create_async_engine(DSN)")], flagged
