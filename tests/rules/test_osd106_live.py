"""OSD106 asyncio-imported-after-global-instrument, reproduced with the real SDK and a real engine.

Ground truth row 3a / upstream #2149: when `sqlalchemy.ext.asyncio` is first imported after
instrument(), `sqlalchemy.ext.asyncio.engine` binds the wrapped `create_engine`, so every AsyncEngine
gets two tracers: a query starts two spans and ends one, and with the commenter the statement the
database receives carries two comments (the first naming the span that is never exported). The
same happens under `opentelemetry-instrument`. Importing `sqlalchemy.ext.asyncio` before
instrument() gives one tracer.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from live_support import PREAMBLE, run_script

pytestmark = pytest.mark.live

APP_LATE_IMPORT = """
from opentelemetry.instrumentation import sqlalchemy as otel_sqlalchemy

otel_sqlalchemy.SQLAlchemyInstrumentor().instrument(enable_commenter=True)

from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402  first import, after instrument()

engine = create_async_engine("sqlite+aiosqlite://")
"""

APP_PREIMPORTED = """
import sqlalchemy.ext.asyncio  # noqa: F401  imported before instrument()
from opentelemetry.instrumentation import sqlalchemy as otel_sqlalchemy

otel_sqlalchemy.SQLAlchemyInstrumentor().instrument(enable_commenter=True)

from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

engine = create_async_engine("sqlite+aiosqlite://")
"""

# Runs the app module; records what sqlite receives (aiosqlite's trace callback) and span ids.
START = """
import asyncio
from sqlalchemy import text

assert "sqlalchemy.ext.asyncio" not in sys.modules, "the harness must not pre-import it"
trace.set_tracer_provider(PROVIDER)
import app

received = []

async def query():
    async with app.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.set_trace_callback(received.append)
        await conn.execute(text("SELECT 1"))

asyncio.run(query())
spans = EXPORTER.get_finished_spans()
report(received=[s for s in received if s.startswith("SELECT")],
       exported_ids=[format(s.context.span_id, "016x") for s in spans if s.name == "SELECT"])
"""


def _project(root: Path, files: dict) -> None:
    for relative, code in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(textwrap.dedent(code).lstrip("\n"))
    if "pyproject.toml" not in files:
        (root / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")


def _doctor(root: Path) -> list:
    from otel_sqla_doctor.api import load_config, scan_paths

    result = scan_paths([root], config=load_config([root], select=["OSD106"]), use_cache=False, cwd=root)
    return [(f.code, f.path, f.line) for f in result.findings]


def _comments(statement: str) -> list[str]:
    """The span ids in the traceparents of the sqlcommenter comments, in order."""
    return re.findall(r"traceparent='00-[0-9a-f]{32}-([0-9a-f]{16})-\d\d'", statement)


def test_late_asyncio_import_starts_two_spans_ends_one_and_comments_twice(tmp_path):
    _project(tmp_path, {"app.py": APP_LATE_IMPORT})
    result = run_script(START, cwd=tmp_path)
    assert result["returncode"] == 0, result["stderr"]
    started = [n for n in result["started"] if n == "SELECT"]
    ended = [n for n in result["ended"] if n == "SELECT"]
    statement = result["received"][0]
    comment_ids = _comments(statement)
    print(f"\nOSD106 late import: started={result['started']} ended={result['ended']}\n  sqlite received: {statement}")
    assert (started, ended) == (["SELECT", "SELECT"], ["SELECT"]), (
        f"expected 2 SELECT spans started, 1 ended; got started={result['started']} ended={result['ended']}"
    )
    assert len(comment_ids) == 2, f"expected two sqlcommenter comments, got: {statement}"
    leaked, exported = comment_ids
    assert exported in result["exported_ids"] and leaked not in result["exported_ids"], (
        f"the first comment names the span that is never exported: comments={comment_ids} exported={result['exported_ids']}"
    )
    assert _doctor(tmp_path) == [("OSD106", "app.py", 3)]


def test_asyncio_imported_before_instrument_gives_one_tracer(tmp_path):
    _project(tmp_path, {"app.py": APP_PREIMPORTED})
    result = run_script(START, cwd=tmp_path)
    assert result["returncode"] == 0, result["stderr"]
    statement = result["received"][0]
    print(f"\nOSD106 pre-imported: started={result['started']} ended={result['ended']}\n  sqlite received: {statement}")
    assert result["started"] == result["ended"] == ["connect", "SELECT"]
    assert _comments(statement) == result["exported_ids"], "one comment, naming the exported span"
    assert _doctor(tmp_path) == []


def test_opentelemetry_instrument_launcher_always_doubles(tmp_path):
    launcher = Path(sys.executable).parent / "opentelemetry-instrument"
    assert launcher.exists(), f"{launcher} is installed with opentelemetry-instrumentation"
    project = tmp_path / "project"
    _project(
        project,
        {
            "app.py": """
                from sqlalchemy.ext.asyncio import create_async_engine

                engine = create_async_engine("sqlite+aiosqlite://")
            """,
            "Procfile": "worker: opentelemetry-instrument python -m app\n",
            "requirements.txt": "sqlalchemy[asyncio]==2.0.58\nopentelemetry-instrumentation-sqlalchemy==0.66b1\n",
        },
    )
    script = tmp_path / "start.py"  # outside the scanned project
    script.write_text(
        PREAMBLE
        + textwrap.dedent(
            """
            import asyncio
            from sqlalchemy import text

            preimported = "sqlalchemy.ext.asyncio" in sys.modules  # by the launcher's instrument()
            provider = trace.get_tracer_provider()
            if hasattr(provider, "add_span_processor"):  # an SDK configurator set one up
                provider.add_span_processor(STARTS)
                provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
            else:
                trace.set_tracer_provider(PROVIDER)
            import app

            async def query():
                async with app.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))

            asyncio.run(query())
            report(preimported=preimported)
            """
        )
    )
    env = dict(os.environ, OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    env["PYTHONPATH"] = str(project)  # `import app`; the launcher prepends its own sitecustomize dir
    proc = subprocess.run(
        [str(launcher), sys.executable, str(script)], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("@@RESULT@@")]
    assert lines, f"no result (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    result = json.loads(lines[0][len("@@RESULT@@"):])
    print(f"\nOSD106 under opentelemetry-instrument: started={result['started']} ended={result['ended']}")
    assert result["preimported"] is True, "the launcher's instrument() imports sqlalchemy.ext.asyncio itself"
    assert result["started"].count("SELECT") == 2 and result["ended"].count("SELECT") == 1, result
    assert _doctor(project) == [("OSD106", "Procfile", 1)]


def test_auto_instrumentation_initialize_in_code_doubles_like_the_launcher(tmp_path):
    """bitcart's entry point calls `auto_instrumentation.initialize()` itself: the same start as
    `opentelemetry-instrument`, so the same two tracers per AsyncEngine."""
    project = tmp_path / "project"
    _project(
        project,
        {
            "main.py": """
                from opentelemetry.instrumentation.auto_instrumentation import initialize

                initialize()
                import app
            """,
            "app.py": """
                from sqlalchemy.ext.asyncio import create_async_engine

                engine = create_async_engine("sqlite+aiosqlite://")
            """,
            "requirements.txt": "sqlalchemy[asyncio]==2.0.58\nopentelemetry-instrumentation-sqlalchemy==0.66b1\n",
        },
    )
    script = tmp_path / "start.py"
    script.write_text(
        PREAMBLE
        + textwrap.dedent(
            """
            import asyncio
            import runpy
            from sqlalchemy import text

            trace.set_tracer_provider(PROVIDER)
            main = runpy.run_path("main.py", run_name="main")
            import app

            async def query():
                async with app.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))

            asyncio.run(query())
            report()
            """
        )
    )
    env = dict(os.environ, OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none", PYTHONPATH=str(project))
    proc = subprocess.run([sys.executable, str(script)], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("@@RESULT@@")]
    assert lines, f"no result (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    result = json.loads(lines[0][len("@@RESULT@@"):])
    print(f"\nOSD106 with initialize() in code: started={result['started']} ended={result['ended']}")
    assert result["started"].count("SELECT") == 2 and result["ended"].count("SELECT") == 1, result
    assert _doctor(project) == [("OSD106", "main.py", 3)]
