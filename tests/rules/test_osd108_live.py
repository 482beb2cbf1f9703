"""OSD108 instrumentor-method-called-on-class, reproduced with the real instrumentors."""

from __future__ import annotations

import textwrap

import pytest

from live_support import run_script

pytestmark = pytest.mark.live


def test_instrument_on_the_class_raises_type_error_and_instruments_nothing():
    result = run_script(
        """
import asyncio
from sqlalchemy import text
import sqlalchemy.ext.asyncio as sa_async
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

errors = []
engine = sa_async.create_async_engine("sqlite+aiosqlite://")
for call in (
    lambda: SQLAlchemyInstrumentor.instrument(engine=engine.sync_engine, tracer_provider=PROVIDER),
    lambda: AsyncPGInstrumentor.instrument(tracer_provider=PROVIDER),
    lambda: SQLAlchemyInstrumentor.uninstrument(),
):
    try:
        call()
        errors.append(None)
    except TypeError as exc:
        errors.append(f"{type(exc).__name__}: {exc}")

async def main():
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))

asyncio.run(main())
report(errors=errors, instrumented=SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry)
"""
    )
    print(f"\nOSD108: {result['errors']}; spans after the failed call: {result['ended']}")
    assert result["errors"] == [
        "TypeError: BaseInstrumentor.instrument() missing 1 required positional argument: 'self'",
        "TypeError: BaseInstrumentor.instrument() missing 1 required positional argument: 'self'",
        "TypeError: BaseInstrumentor.uninstrument() missing 1 required positional argument: 'self'",
    ]
    assert result["ended"] == [] and result["instrumented"] is False, "nothing is instrumented"


def test_uncaught_it_stops_the_service_at_startup(tmp_path):
    import subprocess
    import sys

    app = tmp_path / "app.py"
    app.write_text("from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor\n"
                   "SQLAlchemyInstrumentor.instrument()\nprint('started')\n")
    proc = subprocess.run([sys.executable, str(app)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "started" not in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == (
        "TypeError: BaseInstrumentor.instrument() missing 1 required positional argument: 'self'"
    )


def test_the_doctor_flags_it(tmp_path):
    from otel_sqla_doctor.api import load_config, scan_paths

    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    (tmp_path / "app.py").write_text(textwrap.dedent(
        """
        from opentelemetry.instrumentation import sqlalchemy as otel_sa

        otel_sa.SQLAlchemyInstrumentor.instrument()
        """
    ))
    result = scan_paths([tmp_path], config=load_config([tmp_path], select=["OSD108"]), use_cache=False, cwd=tmp_path)
    assert [(f.code, f.path, f.line) for f in result.findings] == [("OSD108", "app.py", 4)]
