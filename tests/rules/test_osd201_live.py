"""OSD201 live: a second `set_tracer_provider` is ignored with only a WARNING; provider #2 gets nothing.

The reproduction is the two-module project of the rule's example, run as an application would
start: `app/telemetry.py` installs provider #1 at import, `app/main.py` then installs provider #2
and runs instrumented queries on an async engine (sqlite+aiosqlite).
"""

from __future__ import annotations

from pathlib import Path

from tests.live_support import run_script

TELEMETRY = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

FIRST = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(FIRST))
trace.set_tracer_provider(provider)
"""

MAIN = """
import asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from app import telemetry

SECOND = InMemorySpanExporter()
second = TracerProvider()
second.add_span_processor(SimpleSpanProcessor(SECOND))
trace.set_tracer_provider(second)

engine = create_async_engine("sqlite+aiosqlite://")
SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)


async def run():
    with trace.get_tracer("app").start_as_current_span("request"):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    await engine.dispose()
"""


def _write_project(root: Path) -> None:
    (root / "app").mkdir()
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "telemetry.py").write_text(TELEMETRY.lstrip())
    (root / "app" / "main.py").write_text(MAIN.lstrip())
    (root / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")


def test_second_provider_is_ignored_and_gets_no_spans(tmp_path: Path):
    _write_project(tmp_path)
    body = f"""
    import asyncio, sys
    sys.path.insert(0, {str(tmp_path)!r})
    from app import main, telemetry
    asyncio.run(main.run())
    report(
        first=[s.name for s in telemetry.FIRST.get_finished_spans()],
        second=[s.name for s in main.SECOND.get_finished_spans()],
        global_is_first=trace.get_tracer_provider() is telemetry.provider,
    )
    """
    result = run_script(body)
    warnings = [line for line in result["logs"] if "Overriding of current TracerProvider is not allowed" in line]
    figures = f"provider #1 spans: {result['first']}; provider #2 spans: {result['second']}; log: {warnings}"
    print(f"\n[OSD201] {figures}")
    # The second call only logs a WARNING ...
    assert warnings and warnings[0].startswith("WARNING opentelemetry.trace"), figures
    assert result["returncode"] == 0, result["stderr"]
    # ... the global provider stays #1, which receives every span, and #2 receives none.
    assert result["global_is_first"], figures
    assert result["second"] == [], figures
    assert "request" in result["first"] and any(name.startswith("SELECT") for name in result["first"]), figures


def test_the_doctor_flags_the_second_call(tmp_path: Path):
    from otel_sqla_doctor.api import load_config, scan_paths

    _write_project(tmp_path)
    result = scan_paths([tmp_path], config=load_config([tmp_path], select=["OSD201"]), use_cache=False, cwd=tmp_path)
    flagged = [(f.path, f.line, f.message) for f in result.findings]
    print(f"[OSD201] doctor: {flagged}")
    assert [(p, line) for p, line, _ in flagged] == [("app/main.py", 14)], flagged
    assert "app/telemetry.py:9" in flagged[0][2], flagged
