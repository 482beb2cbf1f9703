"""OSD102 engine-created-before-global-instrument, reproduced with the real SDK and a real engine.

Each case is a small project written to disk, started in a fresh interpreter exactly as a service
would import it (the entry module is imported after the tracer provider is set), queried once,
and scanned by the doctor. Ground truth rows 3b/3c: an engine created before the global
instrument(), or through a `create_async_engine` imported before it, shows `connect` spans only.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from live_support import run_script

pytestmark = pytest.mark.live

DB = """
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine("sqlite+aiosqlite://")
"""

LAZY_DB = """
from sqlalchemy.ext.asyncio import create_async_engine

def make_engine():
    return create_async_engine("sqlite+aiosqlite://")
"""

CASES = {
    # A module-level engine in a module imported before instrument() (row 3b).
    "engine_imported_first": {
        "app/__init__.py": "",
        "app/db.py": DB,
        "app/main.py": """
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
            from app.db import engine

            SQLAlchemyInstrumentor().instrument()
        """,
    },
    # The engine is created after instrument(), but through the name imported before it (row 3c).
    "early_binding": {
        "app/__init__.py": "",
        "app/db.py": LAZY_DB,
        "app/main.py": """
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
            from app.db import make_engine

            SQLAlchemyInstrumentor().instrument()
            engine = make_engine()
        """,
    },
    # The right order: instrument() first (with sqlalchemy.ext.asyncio imported before it, OSD106).
    "instrument_first": {
        "app/__init__.py": "",
        "app/db.py": DB,
        "app/main.py": """
            import sqlalchemy.ext.asyncio  # noqa: F401
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            SQLAlchemyInstrumentor().instrument()

            from app.db import engine  # noqa: E402
        """,
    },
}

START = """
import asyncio
from sqlalchemy import text

trace.set_tracer_provider(PROVIDER)  # instrument() uses the global provider (a proxy until now)
import app.main as main

async def query():
    async with main.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))

asyncio.run(query())
report()
"""


def _write(root: Path, files: dict) -> None:
    for relative, code in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(code).lstrip("\n"))
    (root / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")


def _start(root: Path, name: str) -> dict:
    _write(root, CASES[name])
    result = run_script(START, cwd=root)
    assert result["returncode"] == 0, result["stderr"]
    return result


def _doctor(root: Path) -> list:
    from otel_sqla_doctor.api import load_config, scan_paths

    result = scan_paths([root], config=load_config([root], select=["OSD102"]), use_cache=False, cwd=root)
    return [(f.code, f.path, f.line) for f in result.findings]


def test_engine_created_before_instrument_gets_connect_spans_only(tmp_path):
    result = _start(tmp_path, "engine_imported_first")
    print(f"\nOSD102 engine imported before instrument(): started={result['started']} ended={result['ended']}")
    assert result["ended"] == ["connect"], f"expected connect spans only, got {result['ended']}"
    assert result["statements"] == []
    assert _doctor(tmp_path) == [("OSD102", "app/main.py", 4)]


def test_early_bound_create_async_engine_gets_connect_spans_only(tmp_path):
    result = _start(tmp_path, "early_binding")
    print(f"\nOSD102 create_async_engine imported before instrument(): started={result['started']} ended={result['ended']}")
    assert result["ended"] == ["connect"], f"expected connect spans only, got {result['ended']}"
    assert result["statements"] == []
    assert _doctor(tmp_path) == [("OSD102", "app/main.py", 4)]


def test_instrument_first_gives_query_spans(tmp_path):
    result = _start(tmp_path, "instrument_first")
    print(f"\nOSD102 instrument() first: started={result['started']} ended={result['ended']}")
    assert result["ended"] == ["connect", "SELECT"], f"expected a query span, got {result['ended']}"
    assert result["started"] == ["connect", "SELECT"], "one tracer: every started span ends"
    assert result["statements"] == ["SELECT 1"]
    assert _doctor(tmp_path) == []
