"""Record the span fixtures in tests/spans/fixtures/ by running real code against real databases.

    python tests/spans/record_fixtures.py                 # all scenarios, into tests/spans/fixtures/
    python tests/spans/record_fixtures.py duplicates      # one scenario
    python tests/spans/record_fixtures.py --out DIR ...   # somewhere else (the live tests do this)

Every span in the fixtures comes from a real SDK span of a real query: each scenario is a small
program run in a fresh interpreter (instrumentation state is process-global) under the same
bootstrap `doctor trace` uses, which writes OTLP JSON lines. Three files are then re-encoded from
recorded spans, never written by hand:
- `literals.otlp.json`: the recorded lines merged into one OTLP JSON document (pretty-printed), the
  shape of an OTLP/HTTP JSON request body;
- `n_plus_one.console.txt`: the program's stdout with the SDK's ConsoleSpanExporter on it (its own
  prints are mixed in, as they are in real captures);
- `*.jaeger.json`: recorded spans translated to Jaeger's JSON trace export following the collector's
  OTLP-to-Jaeger mapping (pkg/translator/jaeger): no Jaeger server is available offline.

PostgreSQL scenarios use DOCTOR_TEST_PG_DSN (default postgresql+asyncpg://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FIXTURES = HERE / "fixtures"
APP = ROOT / "sample_projects" / "n_plus_one_app" / "app.py"
PG_DSN = os.environ.get("DOCTOR_TEST_PG_DSN", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")

sys.path.insert(0, str(ROOT))
from otel_sqla_doctor.spans.bootstrap import prepare  # noqa: E402

# --- scenario programs -------------------------------------------------------------------------

# #2149: the app installs its provider and instruments globally, and only then imports
# sqlalchemy.ext.asyncio: every async engine gets two tracers, each query starts two spans, ends one.
UNENDED = """
import asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

trace.set_tracer_provider(TracerProvider())
SQLAlchemyInstrumentor().instrument()
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine   # first imported after instrument()

tracer = trace.get_tracer("unended-app")

async def main(url):
    engine = create_async_engine(url)
    with tracer.start_as_current_span("GET /health"):
        async with engine.connect() as conn:
            for i in range(3):
                await conn.execute(text("SELECT :i"), {"i": i})
    await engine.dispose()

asyncio.run(main(URL))
"""

DUPLICATES = """
import asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
trace.set_tracer_provider(TracerProvider())
import sqlalchemy.ext.asyncio
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
SQLAlchemyInstrumentor().instrument()
AsyncPGInstrumentor().instrument()   # both on: every query is traced twice (ground truth row 8)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

tracer = trace.get_tracer("duplicates-app")

async def main(url):
    engine = create_async_engine(url)
    with tracer.start_as_current_span("GET /users/7"):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT CAST(:id AS integer) AS id"), {"id": 7})
            await conn.execute(text("SELECT current_database()"))
    await engine.dispose()

asyncio.run(main(URL))
"""

LITERALS = """
import asyncio
from opentelemetry import trace
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

tracer = trace.get_tracer("literals-app")

async def main(url):
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        with tracer.start_as_current_span("migrate"):
            await conn.execute(text("CREATE TABLE IF NOT EXISTS lit_users (id INTEGER PRIMARY KEY, name TEXT)"))
            await conn.execute(text("INSERT INTO lit_users (id, name) VALUES (:id, :name)"),
                               [{"id": i, "name": f"user {i}"} for i in range(1, 6)])
    for user_id in range(1, 6):
        with tracer.start_as_current_span("GET /users/{id}"):
            async with engine.connect() as conn:
                # interpolated: a new statement text for every id
                await conn.execute(text(f"SELECT name FROM lit_users WHERE id = {user_id}"))
                # bound: one statement text
                await conn.execute(text("SELECT id FROM lit_users WHERE name = :name"), {"name": f"user {user_id}"})
    await engine.dispose()

asyncio.run(main(URL))
"""

POOL_WAIT = """
import asyncio
from opentelemetry import trace
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

tracer = trace.get_tracer("pool-app")

async def orders(engine, n):
    with tracer.start_as_current_span("GET /orders"):
        async with engine.connect() as conn:           # waits here while the one connection is busy
            await conn.execute(text("SELECT CAST(:n AS integer)"), {"n": n})
            await asyncio.sleep(0.15)                   # slow non-database work, connection held
            await conn.execute(text("SELECT pg_backend_pid()"))

async def report(engine):
    with tracer.start_as_current_span("GET /report"):
        await asyncio.sleep(0.2)                        # slow app work before the first query: not the pool
        async with engine.connect() as conn:
            await conn.execute(text("SELECT CAST(:n AS integer)"), {"n": 0})

async def main(url):
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=10)
    async with engine.connect() as conn:                # open the one connection before the requests
        with tracer.start_as_current_span("warm-up"):
            await conn.execute(text("SELECT 1"))
    await asyncio.gather(*(orders(engine, n) for n in range(4)))
    await report(engine)
    await engine.dispose()

asyncio.run(main(URL))
"""

ROOT_SPANS = """
import asyncio
from opentelemetry import trace
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

tracer = trace.get_tracer("roots-app")

async def main(url):
    engine = create_async_engine(url)
    async with engine.connect() as conn:               # startup work outside any span
        await conn.execute(text("CREATE TABLE IF NOT EXISTS root_prices (id INTEGER PRIMARY KEY, p REAL)"))
        await conn.execute(text("SELECT count(*) FROM root_prices"))
    with tracer.start_as_current_span("GET /prices"):  # a request: its query has a parent
        async with engine.connect() as conn:
            await conn.execute(text("SELECT id, p FROM root_prices"))
    await engine.dispose()

asyncio.run(main(URL))
"""

CONSOLE = """
import runpy, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))   # to stdout, with the app's prints
trace.set_tracer_provider(provider)
import sqlalchemy.ext.asyncio
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
SQLAlchemyInstrumentor().instrument()
sys.argv = [APP]
runpy.run_path(APP, run_name="__main__")
"""


def _sqlite_url(workdir: Path) -> str:
    return f"sqlite+aiosqlite:///{workdir}/app.db"


def _run_recorded(program: list[str], *, instrument: bool, workdir: Path, stdout=subprocess.DEVNULL) -> list[Path]:
    env, out = prepare(workdir, instrument=instrument)
    proc = subprocess.run(program, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120, cwd=workdir)
    if proc.returncode != 0:
        raise RuntimeError(f"{program} failed ({proc.returncode}):\n{proc.stderr}")
    return sorted(out.glob("spans-*.jsonl"))


def _script(body: str, url: str, workdir: Path) -> list[str]:
    path = workdir / "scenario.py"
    path.write_text(f"URL = {url!r}\nAPP = {str(APP)!r}\n" + textwrap.dedent(body), encoding="utf-8")
    return [sys.executable, str(path)]


def _concat(files: list[Path], target: Path) -> Path:
    with open(target, "w", encoding="utf-8") as out:
        for path in files:
            out.write(path.read_text(encoding="utf-8"))
    return target


def record(name: str, out_dir: Path, *, pg_dsn: str = PG_DSN) -> Path:
    """Run one scenario and write its fixture into out_dir; returns the fixture's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"doctor-fixture-{name}-"))
    try:
        if name == "n_plus_one":
            files = _run_recorded([sys.executable, str(APP)], instrument=True, workdir=workdir)
            return _concat(files, out_dir / "n_plus_one.otlp.jsonl")
        if name == "selectinload":
            files = _run_recorded([sys.executable, str(APP), "--fixed"], instrument=True, workdir=workdir)
            return _concat(files, out_dir / "selectinload.otlp.jsonl")
        if name == "literals":
            files = _run_recorded(_script(LITERALS, _sqlite_url(workdir), workdir), instrument=True, workdir=workdir)
            document = {"resourceSpans": []}
            for path in files:
                for line in path.read_text(encoding="utf-8").splitlines():
                    document["resourceSpans"].extend(json.loads(line)["resourceSpans"])
            target = out_dir / "literals.otlp.json"
            target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            return target
        if name == "duplicates":
            files = _run_recorded(_script(DUPLICATES, pg_dsn, workdir), instrument=False, workdir=workdir)
            return _concat(files, out_dir / "duplicates.otlp.jsonl")
        if name == "unended":
            files = _run_recorded(_script(UNENDED, _sqlite_url(workdir), workdir), instrument=False, workdir=workdir)
            return _concat(files, out_dir / "unended.otlp.jsonl")
        if name == "pool_wait":
            files = _run_recorded(_script(POOL_WAIT, pg_dsn, workdir), instrument=True, workdir=workdir)
            return _concat(files, out_dir / "pool_wait.otlp.jsonl")
        if name == "root_spans":
            files = _run_recorded(_script(ROOT_SPANS, _sqlite_url(workdir), workdir), instrument=True, workdir=workdir)
            return _concat(files, out_dir / "root_spans.otlp.jsonl")
        if name == "console":
            target = out_dir / "n_plus_one.console.txt"
            program = _script(CONSOLE, "", workdir)
            with open(target, "w", encoding="utf-8") as stdout:
                proc = subprocess.run(program, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120, cwd=workdir)
            if proc.returncode != 0:
                raise RuntimeError(f"console scenario failed:\n{proc.stderr}")
            return target
        if name in ("jaeger", "jaeger_duplicates"):
            source_name = "n_plus_one" if name == "jaeger" else "duplicates"
            source = record(source_name, workdir / "source", pg_dsn=pg_dsn)
            target = out_dir / f"{source_name}.jaeger.json"
            target.write_text(json.dumps(otlp_to_jaeger(source), indent=2) + "\n", encoding="utf-8")
            return target
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


SCENARIOS = (
    "n_plus_one", "selectinload", "literals", "duplicates", "unended", "pool_wait", "root_spans",
    "console", "jaeger", "jaeger_duplicates",
)


# --- OTLP JSON -> Jaeger JSON (collector-contrib pkg/translator/jaeger mapping) -------------------

_KINDS = {2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _tag(key: str, value: dict) -> dict:
    (kind, inner), = value.items()
    if kind == "stringValue":
        return {"key": key, "type": "string", "value": inner}
    if kind == "boolValue":
        return {"key": key, "type": "bool", "value": inner}
    if kind == "intValue":
        return {"key": key, "type": "int64", "value": int(inner)}
    if kind == "doubleValue":
        return {"key": key, "type": "float64", "value": inner}
    return {"key": key, "type": "string", "value": json.dumps(inner)}


def otlp_to_jaeger(path: Path) -> dict:
    traces: dict[str, dict] = {}
    processes: dict[tuple, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            resource = {a["key"]: a["value"] for a in rs.get("resource", {}).get("attributes", [])}
            service = resource.get("service.name", {}).get("stringValue", "unknown_service")
            process_tags = [_tag(k, v) for k, v in resource.items() if k != "service.name"]
            pkey = (service, json.dumps(process_tags, sort_keys=True))
            for ss in rs.get("scopeSpans", []):
                scope = ss.get("scope", {})
                for span in ss.get("spans", []):
                    trace = traces.setdefault(span["traceId"], {"traceID": span["traceId"], "spans": [], "processes": {}, "warnings": None})
                    pid = processes.setdefault(pkey, f"p{len(processes) + 1}")
                    trace["processes"][pid] = {"serviceName": service, "tags": process_tags}
                    tags = [_tag(a["key"], a["value"]) for a in span.get("attributes", [])]
                    if scope.get("name"):
                        tags.append({"key": "otel.scope.name", "type": "string", "value": scope["name"]})
                    if scope.get("version"):
                        tags.append({"key": "otel.scope.version", "type": "string", "value": scope["version"]})
                    if span.get("kind") in _KINDS:
                        tags.append({"key": "span.kind", "type": "string", "value": _KINDS[span["kind"]]})
                    if span.get("status", {}).get("code") == 2:
                        tags.append({"key": "error", "type": "bool", "value": True})
                    start_us = int(span["startTimeUnixNano"]) // 1000
                    end_us = int(span.get("endTimeUnixNano", span["startTimeUnixNano"])) // 1000
                    references = []
                    if span.get("parentSpanId"):
                        references.append({"refType": "CHILD_OF", "traceID": span["traceId"], "spanID": span["parentSpanId"]})
                    trace["spans"].append({
                        "traceID": span["traceId"],
                        "spanID": span["spanId"],
                        "operationName": span["name"],
                        "references": references,
                        "startTime": start_us,
                        "duration": end_us - start_us,
                        "tags": tags,
                        "logs": [],
                        "processID": pid,
                        "warnings": None,
                        "flags": 1,
                    })
    return {"data": list(traces.values()), "total": 0, "limit": 0, "offset": 0, "errors": None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", choices=[[], *SCENARIOS], default=[], metavar="SCENARIO",
                        help=f"one or more of: {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--out", type=Path, default=FIXTURES)
    parser.add_argument("--pg-dsn", default=PG_DSN)
    args = parser.parse_args()
    for name in args.scenarios or SCENARIOS:
        path = record(name, args.out, pg_dsn=args.pg_dsn)
        print(f"{name}: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
