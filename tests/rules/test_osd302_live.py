"""OSD302 live: with `enable_attribute_commenter=True`, N traces give N distinct `db.statement` values.

The same query runs once in each of N traces with the real SDK; with the attribute commenter the
traceparent lands in `db.statement` (one value per trace), without it there is one value.
"""

from __future__ import annotations

import textwrap

import pytest

from live_support import run_script
from otel_sqla_doctor.api import load_config, scan_paths

N = 5

SCRIPT = '''
import asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

engine = create_async_engine({url!r})
SQLAlchemyInstrumentor().instrument(
    engine=engine.sync_engine, tracer_provider=PROVIDER, enable_commenter=True, enable_attribute_commenter={attribute}
)
tracer = PROVIDER.get_tracer("osd302")

async def main():
    async with engine.connect() as conn:
        for _ in range({n}):
            with tracer.start_as_current_span("request"):
                await conn.execute(text("SELECT 1"))
    await engine.dispose()

asyncio.run(main())
report(select_statements=[s for s in (x.attributes.get("db.statement") for x in EXPORTER.get_finished_spans()) if s and s.startswith("SELECT 1")])
'''


def _distinct(url: str, attribute: bool) -> list[str]:
    result = run_script(SCRIPT.format(url=url, attribute=attribute, n=N))
    assert result["returncode"] == 0, result["stderr"]
    statements = result["select_statements"]
    assert len(statements) == N, result
    return statements


def _check(url: str) -> None:
    with_attribute = _distinct(url, True)
    without = _distinct(url, False)
    label = url.split(":")[0]
    print(f"\n[OSD302 {label}] {N} traces, enable_attribute_commenter=True: {len(set(with_attribute))} distinct db.statement, e.g. {with_attribute[0]!r}")
    print(f"[OSD302 {label}] {N} traces, without it:                    {len(set(without))} distinct db.statement: {without[0]!r}")
    assert len(set(with_attribute)) == N, with_attribute
    assert all("traceparent=" in s for s in with_attribute), with_attribute
    assert set(without) == {"SELECT 1"}, without


def test_attribute_commenter_one_statement_per_trace_sqlite():
    _check("sqlite+aiosqlite://")


@pytest.mark.live
def test_attribute_commenter_one_statement_per_trace_postgresql(pg_dsn):
    _check(pg_dsn)


def test_doctor_flags_it(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n", encoding="utf-8")
    (tmp_path / "telemetry.py").write_text(
        textwrap.dedent(
            """
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            def setup(engine):
                SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True, enable_attribute_commenter=True)
            """
        ).lstrip(),
        encoding="utf-8",
    )
    result = scan_paths([tmp_path], config=load_config([tmp_path], select=["OSD302"]), use_cache=False, cwd=tmp_path)
    assert [(f.path, f.line, f.code) for f in result.findings] == [("telemetry.py", 4, "OSD302")], result.findings
