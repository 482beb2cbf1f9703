"""OSD303 live, on the real PostgreSQL: the commenter's traceparent makes asyncpg prepare every execution.

N executions of one query, each in its own trace, through an instrumented asyncpg engine. With
`enable_commenter=True` (traceparent on, the default) the server holds one prepared statement per
execution; with the traceparent turned off (`opentelemetry_values: False`, the rule's hint) or no
commenter, one. The median time per execution is printed for each variant.
"""

from __future__ import annotations

import textwrap

import pytest

from live_support import run_script
from otel_sqla_doctor.api import load_config, scan_paths

N = 50

SCRIPT = '''
import asyncio, statistics, time
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

engine = create_async_engine({url!r})
# instrument(engine=...) returns the EngineTracer; its settings are read on every execution, so the
# variants can take turns in one process, under the same machine load (fair timings).
engine_tracer = SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=PROVIDER, enable_commenter=True)
tracer = PROVIDER.get_tracer("osd303")
VARIANTS = {variants!r}

async def main():
    results = {{label: {{"prepared": [], "texts": [], "timings": [], "example": None}} for label in VARIANTS}}
    async with engine.connect() as conn:
        fairy = await conn.get_raw_connection()
        for i in range(20):  # warm up the connection and the code paths
            await conn.execute(text("SELECT 1"))
        for round_ in range({rounds}):
            for number, (label, settings) in enumerate(VARIANTS.items()):
                engine_tracer.enable_commenter = settings["enable_commenter"]
                engine_tracer.commenter_options = settings["commenter_options"]
                marker = f"osd303_probe_{{number}}_{{round_}}"
                query = text(f"SELECT CAST(:v AS integer) + 1 AS {{marker}}")
                for i in range({n}):
                    with tracer.start_as_current_span("request"):
                        started = time.perf_counter()
                        await conn.execute(query, {{"v": i}})
                        results[label]["timings"].append(time.perf_counter() - started)
                rows = await fairy.driver_connection.fetch(
                    "SELECT name, statement FROM pg_prepared_statements WHERE statement LIKE $1 AND statement NOT LIKE '%pg_prepared_statements%'",
                    f"%{{marker}}%",
                )
                results[label]["prepared"].append(len({{r["name"] for r in rows}}))
                results[label]["texts"].append(len({{r["statement"] for r in rows}}))
                results[label]["example"] = rows[-1]["statement"] if rows else None
        adapter_cache = len(fairy.dbapi_connection._prepared_statement_cache)
    await engine.dispose()
    for r in results.values():
        r["median_us"] = statistics.median(r.pop("timings")) * 1e6
    return {{"variants": results, "adapter_cache": adapter_cache}}

report(**asyncio.run(main()))
'''

VARIANTS = {
    "commenter (traceparent on)": {"enable_commenter": True, "commenter_options": {}},
    "commenter, opentelemetry_values=False": {"enable_commenter": True, "commenter_options": {"opentelemetry_values": False}},
    "no commenter": {"enable_commenter": False, "commenter_options": {}},
}
ROUNDS = 3


@pytest.mark.live
def test_commenter_prepares_every_execution_again(pg_dsn):
    result = run_script(SCRIPT.format(url=pg_dsn, variants=VARIANTS, n=N, rounds=ROUNDS))
    assert result["returncode"] == 0, result["stderr"]
    results = result["variants"]
    lines = [f"[OSD303 PostgreSQL] {ROUNDS} rounds x {N} executions of one query per variant, one trace each:"]
    for label, r in results.items():
        lines.append(
            f"  {label:<40} server-side prepared statements per {N} executions: {r['prepared']} | "
            f"median {r['median_us']:.0f} us/execution"
        )
    base = results["no commenter"]["median_us"]
    commenter = results["commenter (traceparent on)"]
    lines.append(
        f"  median ratio commenter / no commenter: {commenter['median_us'] / base:.2f}x; "
        f"without traceparent / no commenter: {results['commenter, opentelemetry_values=False']['median_us'] / base:.2f}x"
    )
    lines.append(f"  SQLAlchemy asyncpg adapter cache entries at the end: {result['adapter_cache']} (LRU, 100 by default)")
    lines.append(f"  e.g. {commenter['example']}")
    figures = "\n".join(lines)
    print("\n" + figures)

    assert commenter["prepared"] == [N] * ROUNDS and commenter["texts"] == [N] * ROUNDS, figures
    assert "traceparent=" in commenter["example"], figures
    assert results["commenter, opentelemetry_values=False"]["prepared"] == [1] * ROUNDS, figures
    assert results["no commenter"]["prepared"] == [1] * ROUNDS, figures


@pytest.mark.live
def test_with_the_statement_cache_off_the_commenter_adds_no_prepares(pg_dsn):
    """Why OSD303 is silent when `statement_cache_size=0` (pgbouncer set-ups): asyncpg then keeps
    no prepared statement for any text, so the traceparent has nothing to defeat."""
    script = SCRIPT.format(url=pg_dsn, variants=VARIANTS, n=N, rounds=1).replace(
        f"create_async_engine({pg_dsn!r})",
        f"create_async_engine({pg_dsn!r}, connect_args={{'statement_cache_size': 0, 'prepared_statement_cache_size': 0}})",
    )
    script = script.replace("len(fairy.dbapi_connection._prepared_statement_cache)", "len(fairy.dbapi_connection._prepared_statement_cache or ())")
    assert "statement_cache_size" in script
    result = run_script(script)
    assert result["returncode"] == 0, result["stderr"]
    prepared = {label: r["prepared"] for label, r in result["variants"].items()}
    print(f"\n[OSD303 PostgreSQL, statement cache off] server-side prepared statements kept: {prepared}")
    assert prepared["commenter (traceparent on)"] == prepared["no commenter"] == [0], prepared


def test_doctor_flags_it(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n", encoding="utf-8")
    (tmp_path / "app.py").write_text(
        textwrap.dedent(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:5432/test")
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
            SQLAlchemyInstrumentor().instrument(
                engine=engine.sync_engine, enable_commenter=True, commenter_options={"opentelemetry_values": False}
            )
            """
        ).lstrip(),
        encoding="utf-8",
    )
    result = scan_paths([tmp_path], config=load_config([tmp_path], select=["OSD303"]), use_cache=False, cwd=tmp_path)
    assert [(f.path, f.line, f.code) for f in result.findings] == [("app.py", 5, "OSD303")], result.findings
