"""Issue 15, honest checks: OSD501, OSD508 and OSD510 report what the server and the exporter
really did, and DSN mode says what it probed.

Every app here is written to tmp_path and probed as a user would (`doctor probe --engine`, a
fresh process), against the real PostgreSQL and MariaDB servers and real OTLP receivers.
"""

from __future__ import annotations

import json
import re
import socket
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from probe_helpers import clean_env, doctor

pytestmark = pytest.mark.live

SECRET = "s3cr3t-exporter-pw"
TOKEN = "Bearer tok-0123456789abcdef"


class Receiver:
    """A real OTLP/HTTP receiver: decodes every request into (span name, attributes)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, dict]] = []
        received = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            attributes = {a.key: a.value.string_value for a in span.attributes}
                            received.append((span.name, attributes))
                payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


TELEMETRY = """\
import os

from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter


def setup():
    # The endpoint comes from the app's own settings, not from OTEL_* variables.
    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=os.environ["APP_OTLP_ENDPOINT"], headers={"authorization": "%s"}, timeout=60)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    from app.db import engine

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=%s)
"""

DB = """\
import os

from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine(os.environ["APP_DATABASE_URL"]%s)
"""


def _app(tmp_path, *, commenter: bool = True, engine_options: str = "", extra_db: str = ""):
    package = tmp_path / "app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "telemetry.py").write_text(TELEMETRY % (TOKEN, commenter))
    (package / "db.py").write_text(DB % engine_options + textwrap.dedent(extra_db))
    return tmp_path


def _probe(app_dir, *args, timeout: str = "5", **env):
    return doctor(
        "--engine", "app.db:engine", "--setup", "app.telemetry:setup", "--app-dir", str(app_dir), "--timeout", timeout,
        *args, env=clean_env(**env), cwd=app_dir,
    )


# -- OSD508: the baseline is a second, uninstrumented engine; the probe's own statements stay out --


def test_osd508_measures_against_a_second_engine_and_only_probe_spans_reach_the_apps_exporter(tmp_path, pg_dsn, receiver):
    app = _app(tmp_path)

    run = _probe(app, "--format", "json", APP_DATABASE_URL=pg_dsn, APP_OTLP_ENDPOINT=receiver.endpoint)

    cache = run.check("OSD508")
    assert cache["status"] == "warn", cache
    assert re.search(r"^10 server-side prepares for 10 identical executions with the commenter .*, 1 without it \(on a second engine on the same URL that nothing instruments\)", cache["detail"]), cache
    statements = [attributes.get("db.statement", "") for _, attributes in receiver.spans if "db.statement" in attributes]
    # The probe query and the 10 traced executions; no guard, no read-back, no baseline statement.
    assert len(statements) == 11, statements
    assert sum("current_query()" in s for s in statements) == 1
    assert sum("osd508-traced-" in s for s in statements) == 10
    for statement in statements:
        assert not re.search(r"\b(SET|SHOW)\b|pg_prepared_statements|osd508-plain", statement), statement
    names = [name for name, _ in receiver.spans]
    assert "otel-sqla-doctor exporter test" in names
    assert run.check("OSD510")["status"] == "pass"


@pytest.mark.parametrize("wiring", ["commenter-off", "sdk-disabled"])
def test_osd508_skips_when_no_traceparent_reaches_the_server(tmp_path, pg_dsn, receiver, wiring):
    if wiring == "commenter-off":
        run = _probe(_app(tmp_path, commenter=False), "--format", "json", APP_DATABASE_URL=pg_dsn, APP_OTLP_ENDPOINT=receiver.endpoint)
        expected = "the commenter is off for this engine"
    else:
        # DSN mode with the SDK disabled: the doctor's engine has its tracer and its commenter, but
        # no recording span, so no traceparent. Before, 10 vs 10 prepares "passed".
        run = doctor("--format", "json", pg_dsn, env=clean_env(OTEL_SDK_DISABLED="true"))
        expected = "without a traceparent"

    cache = run.check("OSD508")
    assert cache["status"] == "skip", cache
    assert expected in cache["detail"]


# -- OSD501: what the server really has in force, on an AUTOCOMMIT engine too ---------------------

# Runs inside the user's engine, at the probe's own query: what does the server enforce right then,
# and does it refuse a write on that very connection? (await_only: SQLAlchemy's greenlet bridge.)
SPY = """

import json

from sqlalchemy import event
from sqlalchemy.util import await_only


async def _ask(driver_connection, sql):
    if hasattr(driver_connection, "fetch"):  # asyncpg
        return [tuple(row) for row in await driver_connection.fetch(sql)]
    cursor = await driver_connection.cursor()
    await cursor.execute(sql)
    rows = await cursor.fetchall()
    await cursor.close()
    return [tuple(row) for row in rows]


@event.listens_for(engine.sync_engine, "before_cursor_execute")
def _spy(conn, cursor, statement, parameters, context, executemany):
    if "current_query()" not in statement and "processlist" not in statement:
        return
    driver_connection = conn.connection.driver_connection
    if hasattr(driver_connection, "get_autocommit"):  # aiomysql
        autocommit = driver_connection.get_autocommit()
    else:  # SQLAlchemy's asyncpg adapter
        autocommit = conn.connection.dbapi_connection.autocommit
    seen = {"autocommit": bool(autocommit)}
    for sql in os.environ["APP_SPY_SQL"].split(";"):
        seen[sql] = [list(map(str, row)) for row in await_only(_ask(driver_connection, sql))]
    try:
        await_only(_ask(driver_connection, "CREATE TABLE osd_probe_guard_write (a int)"))
        seen["write"] = "ACCEPTED"
    except Exception as exc:
        seen["write"] = f"refused: {exc}"
    with open(os.environ["APP_SPY_FILE"], "w") as handle:
        json.dump(seen, handle)
"""


def _drop_guard_table(dsn: str) -> None:
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def drop():
        engine = create_async_engine(dsn)
        try:
            async with engine.begin() as conn:
                await conn.exec_driver_sql("DROP TABLE IF EXISTS osd_probe_guard_write")
        finally:
            await engine.dispose()

    asyncio.run(drop())


@pytest.mark.parametrize(
    ("backend", "spy_sql", "claim"),
    [
        ("postgresql", "SHOW transaction_read_only;SHOW statement_timeout", "transaction_read_only=on, statement_timeout=5s"),
        ("mariadb", "SELECT @@session.tx_read_only;SELECT @@session.max_statement_time", "tx_read_only=1, max_statement_time=5"),
    ],
)
def test_osd501_claim_is_what_the_server_enforces_on_an_autocommit_engine(tmp_path, pg_dsn, mysql_dsn, receiver, backend, spy_sql, claim):
    dsn = pg_dsn if backend == "postgresql" else mysql_dsn
    app = _app(tmp_path, engine_options=', isolation_level="AUTOCOMMIT"', extra_db=SPY)
    spy_file = tmp_path / "seen.json"
    _drop_guard_table(dsn)
    try:
        run = _probe(
            app, "--format", "json", APP_DATABASE_URL=dsn, APP_OTLP_ENDPOINT=receiver.endpoint, APP_SPY_SQL=spy_sql, APP_SPY_FILE=str(spy_file)
        )
    finally:
        _drop_guard_table(dsn)

    connect = run.check("OSD501")
    assert connect["status"] == "pass", (connect, run.stderr)
    assert f"the server confirms read-only transactions for this session: {claim}" in connect["detail"]
    seen = json.loads(spy_file.read_text())
    assert seen["autocommit"] is True  # the probe ran in AUTOCOMMIT, where SET TRANSACTION is a no-op
    first, second = spy_sql.split(";")
    if backend == "postgresql":
        assert seen[first] == [["on"]] and seen[second] == [["5s"]], seen
        assert "read-only transaction" in seen["write"], seen
    else:
        assert seen[first] == [["1"]] and float(seen[second][0][0]) == 5.0, seen
        assert "READ ONLY transaction" in seen["write"], seen
    assert run.check("OSD503")["status"] == "pass"


def test_guard_refusal_is_reported(pg_dsn, monkeypatch):
    """When the read-back does not show read-only (as behind a transaction-mode pooler, which
    hands the next statement another server session), OSD501 fails and no probe statement runs.
    The pooler is played by undoing the setting on the real server before it is read back."""
    from otel_sqla_doctor.live import backends
    from otel_sqla_doctor.live.runner import probe

    original = backends.PostgresBackend.guard

    async def weak_guard(self, raw, timeout):
        guard = await original(self, raw, timeout)
        # What a transaction-mode pooler does: the session setting is gone on the next statement.
        await raw.rows("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        guard.read_only = str(await raw.value("SHOW transaction_read_only")) == "on"
        guard.read_back = f"transaction_read_only={await raw.value('SHOW transaction_read_only')}"
        return guard

    monkeypatch.setattr(backends.PostgresBackend, "guard", weak_guard)
    report = probe(pg_dsn)

    connect = report.check("OSD501")
    assert connect.status.value == "fail"
    assert "the session could not be made read-only (the server reports transaction_read_only=off); the probe ran no statement" in connect.detail
    assert report.check("OSD503").status.value == "skip"
    assert report.exit_code == 1


# -- OSD510: the exporters the app's provider really has, and a prompt end --------------------------


def test_osd510_tests_the_exporter_configured_in_code(tmp_path, receiver):
    app = _app(tmp_path)

    run = _probe(app, "--format", "json", APP_DATABASE_URL="sqlite+aiosqlite://", APP_OTLP_ENDPOINT=receiver.endpoint)

    exporter = run.check("OSD510")
    assert exporter["status"] == "pass", exporter
    assert exporter["detail"] == (
        "exporters of your TracerProvider (no OTEL_EXPORTER_OTLP_* endpoint set): "
        f"OTLPSpanExporter (HTTP) to {receiver.endpoint} accepted the test span"
    )
    assert "otel-sqla-doctor exporter test" in [name for name, _ in receiver.spans]
    assert run.exit_code == 0, run.stdout


def test_osd510_unreachable_exporter_fails_masked_and_the_probe_ends_promptly(tmp_path):
    port = _free_port()
    endpoint = f"http://app:{SECRET}@127.0.0.1:{port}/v1/traces"
    app = _app(tmp_path)

    started = time.monotonic()
    run = _probe(app, APP_DATABASE_URL="sqlite+aiosqlite://", APP_OTLP_ENDPOINT=endpoint, timeout="2")
    elapsed = time.monotonic() - started

    line = next(line for line in run.stdout.splitlines() if "OSD510" in line)
    assert line.startswith(f"[✗] OSD510 exporter-reachable: exporters of your TracerProvider (no OTEL_EXPORTER_OTLP_* endpoint set): OTLPSpanExporter (HTTP) to http://app:***@127.0.0.1:{port}/v1/traces did not accept the test span (no answer within 2s"), line
    assert run.exit_code == 1
    assert SECRET not in run.output and "tok-0123456789abcdef" not in run.output
    assert "Traceback" not in run.stderr
    # The exporter retries for 60 s (timeout=60 in the app) at exit: the probe does not wait for it.
    assert elapsed < 2 + 8, elapsed


def test_osd510_provider_without_exporter_warns(tmp_path):
    app = tmp_path / "bare"
    app.mkdir()
    (app / "db.py").write_text(textwrap.dedent("""\
        from opentelemetry import trace
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine("sqlite+aiosqlite://")


        def setup():
            trace.set_tracer_provider(TracerProvider())
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
        """))

    run = doctor("--engine", "db:engine", "--setup", "db:setup", "--app-dir", str(app), "--format", "json", cwd=app)

    exporter = run.check("OSD510")
    assert exporter["status"] == "warn", exporter
    assert "your TracerProvider has no span processor: its spans are exported nowhere" in exporter["detail"]


# -- DSN mode says what it probed, and words its fixes for the user ------------------------------


def test_dsn_mode_states_its_scope_and_words_fixes_for_the_user(pg_dsn):
    run = doctor(pg_dsn)

    lines = run.stdout.splitlines()
    assert lines[1] == (
        "scope: DSN mode: checks this database and its driver path with the doctor's reference wiring (its own engine, "
        "instrumented with the commenter on), not your application's engine; --engine probes your app's own wiring"
    )
    fixes = [line.strip() for line in lines if line.strip().startswith("fix:")]
    assert "fix: if your app enables the commenter (enable_commenter=True) on an asyncpg engine: keep the commenter but drop the traceparent" in "\n".join(fixes)
    assert any(f.startswith("fix: if your app enables the commenter (enable_commenter=True) with asyncpg, its comments arrive the same way") for f in fixes), fixes
    assert not any("nothing to change in the app:" in f for f in fixes)


def test_engine_mode_has_no_dsn_scope_and_speaks_of_the_apps_engine(tmp_path, pg_dsn, receiver):
    run = _probe(_app(tmp_path), "--format", "json", APP_DATABASE_URL=pg_dsn, APP_OTLP_ENDPOINT=receiver.endpoint)

    assert "scope" not in run.json()
    assert run.check("OSD508")["remediation"].startswith("keep the commenter but drop the traceparent")
