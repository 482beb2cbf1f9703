"""One probe session on a live connection: connect, lock it read-only, run the probe query under
a parent span, read back what the server received, and (PostgreSQL + asyncpg) measure what the
commenter costs the statement cache. Every step is bounded by the timeout."""

from __future__ import annotations

import asyncio
import importlib
import re
import secrets
import time
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy import text

from otel_sqla_doctor.live.backends import PROBE_PARAMETER, Backend
from otel_sqla_doctor.live.capture import SpanRecorder
from otel_sqla_doctor.live.connect_errors import describe_connect_error
from otel_sqla_doctor.live.observations import CacheMeasurement, ConnectOutcome, QueryOutcome
from otel_sqla_doctor.redact import Redactor

CACHE_EXECUTIONS = 10


class ProbeTimeout(Exception):
    pass


async def _bounded(awaitable: Any, timeout: float, what: str) -> Any:
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise ProbeTimeout(f"{what} took longer than {timeout:g}s") from None


def _one_line(exc: BaseException, redactor: Redactor) -> str:
    lines = str(exc).strip().splitlines()
    return redactor.text(f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": "))


# The module whose charset_by_name() each MySQL driver uses (None for a name it does not know).
_MYSQL_CHARSETS = {"aiomysql": "pymysql.charset", "asyncmy": "asyncmy.charset", "pymysql": "pymysql.charset"}
_UNKNOWN_ARGUMENT = re.compile(r"unexpected keyword argument '([^']+)'")


def driver_option_problem(url: Any, driver: str | None) -> tuple[str, str] | None:
    """(what is wrong, what to write) for a URL query option the driver would choke on with a
    TypeError or an AttributeError from deep inside it: checked before connecting."""
    query = {key: value if isinstance(value, str) else ",".join(value) for key, value in url.query.items()}
    if driver == "asyncpg" and "sslmode" in query:
        mode = query["sslmode"]
        return (
            f"asyncpg does not take sslmode={mode} (that is libpq's and psycopg's spelling)",
            f"write ?ssl={mode} in the URL: asyncpg's ssl= takes disable, allow, prefer, require, verify-ca or verify-full",
        )
    if url.get_backend_name() in ("mysql", "mariadb") and "charset" in query and driver in _MYSQL_CHARSETS:
        try:
            lookup = importlib.import_module(_MYSQL_CHARSETS[driver]).charset_by_name
            known = lookup(query["charset"]) is not None
        except Exception:  # the driver is missing or changed: let it speak for itself
            known = True
        if not known:
            return (
                f"{driver} knows no character set {query['charset']!r} (the URL's ?charset=)",
                "use a MySQL character set name, e.g. ?charset=utf8mb4",
            )
    return None


def _driver_argument_problem(exc: BaseException, driver: str | None) -> tuple[str, str] | None:
    """A URL query option the driver's connect() does not take (TypeError: unexpected keyword)."""
    match = _UNKNOWN_ARGUMENT.search(str(exc)) if isinstance(exc, TypeError) else None
    if match is None:
        return None
    return (
        f"{driver or 'the driver'} does not take the URL's query option {match.group(1)!r}",
        f"remove ?{match.group(1)}= from the URL, or spell it as {driver or 'the driver'}.connect() names it",
    )


async def run_session(
    engine: Any,
    backend: Backend,
    driver: str,
    recorder: SpanRecorder,
    parent_tracer: Any,
    *,
    timeout: float,
    redactor: Redactor,
    restore: bool,
    cache_skip: str | None = None,
) -> tuple[ConnectOutcome, QueryOutcome | None, CacheMeasurement | None]:
    """`cache_skip`: why OSD508's measurement would measure nothing (no commenter on this engine)."""
    url = engine.url
    problem = driver_option_problem(url, driver)
    if problem is not None:
        return ConnectOutcome(False, redactor.text(problem[0]), problem[1]), None, None
    started = time.monotonic()
    conn = engine.connect()
    try:
        await _bounded(conn.start(), timeout, "connecting")
        with suppress_instrumentation():
            guards = await _bounded(backend.guard(conn, timeout), timeout, "setting the session read-only")
    except Exception as exc:
        argument = _driver_argument_problem(exc, driver)
        if argument is not None:
            detail, remediation = argument
        elif backend.name == "sqlite":
            detail, remediation = (f"cannot open SQLite database {(url.database or '').removeprefix('file:')!r}: {_one_line(exc, redactor)}", "check the path and its permissions")
        else:
            detail, remediation = describe_connect_error(
                exc, host=url.host or "localhost", port=url.port or backend.default_port, user=url.username,
                database=url.database, timeout=timeout,
            )
        await _close(conn, timeout)
        return ConnectOutcome(False, redactor.text(detail), remediation), None, None
    elapsed_ms = (time.monotonic() - started) * 1000
    connect = ConnectOutcome(True, f"connected to {backend.describe_server(conn)} through {driver} in {elapsed_ms:.0f} ms; {guards}")

    try:
        query = await _probe_query(conn, backend, recorder, parent_tracer, timeout, redactor)
        cache = None
        if backend.name == "postgresql":
            if cache_skip:
                cache = CacheMeasurement(CACHE_EXECUTIONS, skipped=cache_skip)
            else:
                cache = await _measure_cache(conn, driver, parent_tracer, timeout, redactor)
        if restore:
            try:
                with suppress_instrumentation():
                    await _bounded(conn.rollback(), timeout, "rolling back")
                    await _bounded(backend.restore(conn), timeout, "restoring session settings")
            except Exception:  # never hand a connection with the probe's settings back to the pool
                try:
                    await asyncio.wait_for(conn.invalidate(), timeout)
                except Exception:
                    pass
    finally:
        await _close(conn, timeout)
    return connect, query, cache


async def _close(conn: Any, timeout: float) -> None:
    try:
        with suppress_instrumentation():
            await asyncio.wait_for(conn.close(), timeout)
    except Exception:  # a dead or hung connection: nothing more to learn from it
        pass


async def _probe_query(
    conn: Any, backend: Backend, recorder: SpanRecorder, parent_tracer: Any, timeout: float, redactor: Redactor
) -> QueryOutcome:
    sentinel = f"osd-probe-{secrets.token_hex(6)}"
    try:
        with suppress_instrumentation():
            await _bounded(backend.start_reading(conn), timeout, "installing the sqlite3 trace callback")
    except Exception as exc:
        return QueryOutcome(sentinel=sentinel, parent_trace_id=0, parent_span_id=0, error=_one_line(exc, redactor))
    mark = recorder.mark()
    row = None
    error = None
    with parent_tracer.start_as_current_span("otel-sqla-doctor probe") as parent:
        context = parent.get_span_context()
        try:
            result = await _bounded(conn.execute(text(backend.probe_sql), {PROBE_PARAMETER: sentinel}), timeout, "the probe query")
            row = result.one()
        except Exception as exc:
            error = _one_line(exc, redactor)
    started, ended = recorder.since(mark)
    with suppress_instrumentation():
        try:
            await _bounded(backend.stop_reading(conn), timeout, "removing the sqlite3 trace callback")
        except Exception:
            pass
    server_text = None
    if error is None:
        server_text = backend.server_text(row, sentinel)
    return QueryOutcome(
        sentinel=sentinel,
        parent_trace_id=context.trace_id,
        parent_span_id=context.span_id,
        error=error,
        server_text=server_text,
        server_text_source=backend.server_text_source,
        started=started,
        ended=ended,
    )


async def _measure_cache(conn: Any, driver: str, parent_tracer: Any, timeout: float, redactor: Redactor) -> CacheMeasurement:
    """Count the server-side prepared statements N identical executions create on this
    connection: once with instrumentation suppressed (no comment), once traced (a new
    traceparent, so new SQL text, each time). Each PREPARE gets a new `__asyncpg_stmt_N__` name;
    reading pg_prepared_statements after every execution counts them even when a small cache
    closes them again."""
    n = CACHE_EXECUTIONS
    if driver != "asyncpg":
        return CacheMeasurement(n, skipped=f"only measured with asyncpg (this engine uses {driver})")
    names_sql = text("SELECT name FROM pg_prepared_statements WHERE strpos(statement, :marker) > 0")

    async def prepares(marker: str, traced: bool) -> int:
        statement = f"SELECT '{marker}' AS statement_cache_probe"
        names: set[str] = set()
        for _ in range(n):
            if traced:
                await _bounded(conn.exec_driver_sql(statement), timeout, "the statement-cache probe")
            else:
                with suppress_instrumentation():
                    await _bounded(conn.exec_driver_sql(statement), timeout, "the statement-cache probe")
            with suppress_instrumentation():
                # The marker is a parameter, so this query's own text does not match itself.
                rows = await _bounded(conn.execute(names_sql, {"marker": marker}), timeout, "reading pg_prepared_statements")
                names.update(rows.scalars())
        return len(names)

    token = secrets.token_hex(4)
    try:
        plain = await prepares(f"osd508-plain-{token}", traced=False)
        with parent_tracer.start_as_current_span("otel-sqla-doctor statement-cache probe"):
            commented = await prepares(f"osd508-traced-{token}", traced=True)
    except Exception as exc:
        return CacheMeasurement(n, error=_one_line(exc, redactor))
    return CacheMeasurement(n, prepares_plain=plain, prepares_commented=commented)
