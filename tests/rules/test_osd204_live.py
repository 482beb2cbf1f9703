"""OSD204 live: a misplaced OpenTelemetry import inside `try/except ImportError` silently disables tracing.

The reproduction is the pattern seen in public code: the whole tracing setup sits in a `try`
whose `except ImportError` sets `TRACING = False`, and one import names a class that does not
exist in that module (`OTLPSpanExporter` from `opentelemetry.sdk.trace.export`). The app starts,
runs queries on an async engine, and exports nothing. The same app with the right import exports
its spans. A second test checks every row of the rule's table of misplaced names against the
installed packages.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from otel_sqla_doctor.static.rules.osd204_tracing_import_failure_swallowed import MISPLACED
from tests.live_support import run_script

APP = """
import asyncio, logging
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine("sqlite+aiosqlite://")
ERROR = None
try:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from {exporter_module} import OTLPSpanExporter
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    provider = TracerProvider()
    # The app would add SimpleSpanProcessor(OTLPSpanExporter(...)); the test records in memory.
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
    TRACING = True
except ImportError as exc:
    ERROR = str(exc)
    TRACING = False


async def main():
    tracer = trace.get_tracer("app")
    with tracer.start_as_current_span("request") as request:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    await engine.dispose()
    return {{"tracing": TRACING, "error": ERROR, "request_recording": request.is_recording()}}


report(**asyncio.run(main()))
"""

WRONG = "opentelemetry.sdk.trace.export"
RIGHT = "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"


def test_misplaced_import_leaves_tracing_off_without_a_word():
    broken = run_script(APP.format(exporter_module=WRONG))
    fixed = run_script(APP.format(exporter_module=RIGHT))
    figures = (
        f"misplaced import: ImportError {broken['error']!r}, TRACING={broken['tracing']}, request span recording="
        f"{broken['request_recording']}, spans={broken['ended']}, stderr={broken['stderr'].strip()!r}, "
        f"logs={broken['logs']} | right import: TRACING={fixed['tracing']}, spans={fixed['ended']}"
    )
    print(f"\n[OSD204] {figures}")
    assert broken["error"].startswith(f"cannot import name 'OTLPSpanExporter' from '{WRONG}'"), figures
    # The service starts and runs its queries, with tracing silently off: no spans, nothing logged.
    assert broken["returncode"] == 0 and broken["tracing"] is False, figures
    assert broken["request_recording"] is False and broken["started"] == [] and broken["ended"] == [], figures
    assert broken["stderr"].strip() == "" and broken["logs"] == [], figures
    # With the name imported from where it lives, the same code traces.
    assert fixed["error"] is None and fixed["tracing"] is True, figures
    assert "request" in fixed["ended"] and any(name.startswith("SELECT") for name in fixed["ended"]), figures


@pytest.mark.parametrize("module,name", sorted(MISPLACED), ids=[f"{m}:{n}" for m, n in sorted(MISPLACED)])
def test_table_of_misplaced_names_matches_the_installed_packages(module, name):
    namespace: dict = {}
    with pytest.raises(ImportError) as failure:
        exec(f"from {module} import {name}", namespace)
    print(f"[OSD204] from {module} import {name}: {type(failure.value).__name__}: {failure.value}")
    for home, real_name in MISPLACED[(module, name)]:
        assert hasattr(importlib.import_module(home), real_name), f"{real_name} is not in {home}"


def test_the_doctor_flags_the_misplaced_import(tmp_path: Path):
    from otel_sqla_doctor.api import load_config, scan_paths

    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    code = APP.format(exporter_module=WRONG).replace("report(**asyncio.run(main()))", "")
    (tmp_path / "app.py").write_text(code)
    result = scan_paths([tmp_path], config=load_config([tmp_path], select=["OSD204"]), use_cache=False, cwd=tmp_path)
    flagged = [(f.severity.value, code.splitlines()[f.line - 1].strip(), f.message) for f in result.findings]
    print(f"[OSD204] doctor: {flagged}")
    assert [(severity, line) for severity, line, _ in flagged] == [
        ("warning", "from opentelemetry.sdk.trace import TracerProvider"),
        ("error", f"from {WRONG} import OTLPSpanExporter"),
    ], flagged
