"""OSD202 live: instrumentation without a TracerProvider produces only non-recording spans.

An async engine is instrumented with `enable_commenter=True` and no provider is ever set. A
`before_cursor_execute` listener registered after the instrumentation's own reads the span the
instrumentation put on the execution context and the SQL about to be sent. Against PostgreSQL,
`SELECT current_query()` returns the text the server received (ground truth 4b: no comment).
The control run is the same script with `trace.set_tracer_provider(PROVIDER)` first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live_support import run_script

SCRIPT = """
import asyncio
from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

if {set_provider}:
    trace.set_tracer_provider(PROVIDER)

engine = create_async_engine({url!r})
SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
seen = []

# Registered after the instrumentation's listeners, so it sees its span (still open) and the
# statement as the commenter left it.
@event.listens_for(engine.sync_engine, "before_cursor_execute")
def _before(conn, cursor, statement, parameters, context, executemany):
    span = getattr(context, "_otel_span", None)
    seen.append({{"span_type": type(span).__name__, "recording": span.is_recording(), "sent": statement}})


async def main():
    with trace.get_tracer("app").start_as_current_span("request") as request:
        async with engine.connect() as conn:
            received = (await conn.execute(text({query!r}))).scalar()
    await engine.dispose()
    return {{
        "provider": type(trace.get_tracer_provider()).__name__,
        "request_recording": request.is_recording(),
        "query_spans": seen,
        "received": received,
    }}


report(**asyncio.run(main()))
"""


def _run(url: str, query: str, set_provider: bool) -> dict:
    return run_script(SCRIPT.format(url=url, query=query, set_provider=set_provider))


def _check(result: dict, control: dict, label: str) -> None:
    figures = (
        f"[{label}] no provider: global={result['provider']}, request recording={result['request_recording']}, "
        f"query spans={[(s['span_type'], s['recording']) for s in result['query_spans']]}, exported={result['ended']}, "
        f"server received={result['received']!r} | with provider: query spans="
        f"{[(s['span_type'], s['recording']) for s in control['query_spans']]}, exported={control['ended']}, "
        f"server received={control['received']!r}"
    )
    print(f"\n[OSD202] {figures}")
    # Without a provider: the API's proxy hands out non-recording spans, nothing is exported ...
    assert result["provider"] == "ProxyTracerProvider", figures
    assert result["request_recording"] is False, figures
    assert result["query_spans"] and all(
        s["span_type"] == "NonRecordingSpan" and s["recording"] is False for s in result["query_spans"]
    ), figures
    assert result["ended"] == [], figures
    # ... and sqlcommenter adds nothing to the SQL (it only runs for recording spans).
    assert all("traceparent" not in s["sent"] for s in result["query_spans"]), figures
    # The control run proves the probe can see both: recording spans, exported, and the comment.
    assert control["query_spans"] and all(s["recording"] for s in control["query_spans"]), figures
    assert any(name.startswith("SELECT") for name in control["ended"]), figures
    assert all("traceparent=" in s["sent"] for s in control["query_spans"]), figures


def test_no_provider_sqlite_spans_are_no_ops():
    url = "sqlite+aiosqlite://"
    result, control = _run(url, "SELECT 1", False), _run(url, "SELECT 1", True)
    _check(result, control, "sqlite")


@pytest.mark.live
def test_no_provider_postgres_receives_no_comment(pg_dsn):
    query = "SELECT current_query()"
    result, control = _run(pg_dsn, query, False), _run(pg_dsn, query, True)
    _check(result, control, "postgresql")
    assert result["received"].strip() == query, result["received"]
    assert "traceparent=" in control["received"], control["received"]


def test_the_doctor_flags_the_instrumentation(tmp_path: Path):
    from otel_sqla_doctor.api import load_config, scan_paths

    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    code = SCRIPT.replace("{{", "{").replace("}}", "}").replace("{set_provider}", "False")
    code = code.replace("{url!r}", "'sqlite+aiosqlite://'").replace("{query!r}", "'SELECT 1'")
    code = code.replace("trace.set_tracer_provider(PROVIDER)", "pass").replace("report(**asyncio.run(main()))", "")
    (tmp_path / "app.py").write_text(code)
    result = scan_paths([tmp_path], config=load_config([tmp_path], select=["OSD202"]), use_cache=False, cwd=tmp_path)
    flagged = [(f.line, code.splitlines()[f.line - 1].strip()) for f in result.findings]
    print(f"[OSD202] doctor: {flagged}")
    assert [text for _, text in flagged] == [
        "SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)"
    ], flagged
