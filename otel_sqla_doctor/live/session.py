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

from otel_sqla_doctor.live.backends import PROBE_PARAMETER, Backend, DriverConnection, Guard
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
    """`cache_skip`: why OSD508's measurement would measure nothing (no commenter on this engine).
    `restore`: the engine is the user's; its connection is closed afterwards (invalidated), never
    handed back to the pool with the probe's session settings."""
    url = engine.url
    problem = driver_option_problem(url, driver)
    if problem is not None:
        return ConnectOutcome(False, redactor.text(problem[0]), problem[1]), None, None
    started = time.monotonic()
    conn = engine.connect()
    try:
        await _bounded(conn.start(), timeout, "connecting")
        guard = await _bounded(guard_connection(conn, backend, driver, timeout), timeout, "setting the session read-only")
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
        await _close(conn, timeout, invalidate=restore)
        return ConnectOutcome(False, redactor.text(detail), remediation), None, None
    elapsed_ms = (time.monotonic() - started) * 1000
    connected = f"connected to {backend.describe_server(conn)} through {driver} in {elapsed_ms:.0f} ms"
    if not guard.read_only:
        # A safety claim must be true: without a read-only session the probe runs nothing.
        await _close(conn, timeout, invalidate=restore)
        return ConnectOutcome(
            False,
            f"{connected}, but {guard.describe()}; the probe ran no statement",
            "probe with a role or server that allows SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY "
            "(MySQL/MariaDB: SET SESSION TRANSACTION READ ONLY)",
        ), None, None
    connect = ConnectOutcome(True, f"{connected}; {guard.describe()}")

    try:
        query = await _probe_query(conn, backend, recorder, parent_tracer, timeout, redactor)
        cache = None
        if backend.name == "postgresql":
            if cache_skip:
                cache = CacheMeasurement(CACHE_EXECUTIONS, skipped=cache_skip)
            else:
                cache = await _measure_cache(conn, engine, backend, driver, parent_tracer, timeout, redactor)
    finally:
        await _close(conn, timeout, invalidate=restore)
    return connect, query, cache


async def guard_connection(conn: Any, backend: Backend, driver: str, timeout: float) -> Guard:
    """Make `conn`'s session read-only and bounded on the driver's own connection (no engine
    event, so no span and no comment) and read back what the server has in force."""
    raw = await DriverConnection.of(conn, driver)
    with suppress_instrumentation():  # a driver-level instrumentation (asyncpg's) honours it
        return await backend.guard(raw, timeout)


async def _close(conn: Any, timeout: float, *, invalidate: bool = False) -> None:
    try:
        with suppress_instrumentation():
            if invalidate:
                # The user's pool never gets a connection with the probe's session settings back.
                await asyncio.wait_for(conn.invalidate(), timeout)
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


async def _measure_cache(
    conn: Any, engine: Any, backend: Backend, driver: str, parent_tracer: Any, timeout: float, redactor: Redactor
) -> CacheMeasurement:
    """Count the server-side prepared statements N identical executions create: traced on the
    probed connection (a new traceparent, so new SQL text, each time), and plain on a connection
    of a second engine the probe creates on the same URL, with no tracer on it. Not by
    suppressing the instrumentation: 0.52b1 ignores suppress_instrumentation(), so its "plain"
    run carried comments too. Each PREPARE gets a new `__asyncpg_stmt_N__` name; reading
    pg_prepared_statements (on the driver's connection, so the read itself is never traced) after
    every execution counts them even when a small cache closes them again. The texts read there
    also show whether the comment was really on the traced statements and off the plain ones."""
    n = CACHE_EXECUTIONS
    if driver != "asyncpg":
        return CacheMeasurement(n, skipped=f"only measured with asyncpg (this engine uses {driver})")
    names_sql = "SELECT name, statement FROM pg_prepared_statements WHERE strpos(statement, $1) > 0"

    async def prepares(on: Any, marker: str, traced: bool) -> tuple[int, int]:
        """(distinct prepared statements, how many of their texts carry a traceparent)"""
        raw = await DriverConnection.of(on, driver)
        statement = f"SELECT '{marker}' AS statement_cache_probe"
        seen: dict[str, str] = {}
        for _ in range(n):
            if traced:
                await _bounded(on.exec_driver_sql(statement), timeout, "the statement-cache probe")
            else:
                with suppress_instrumentation():
                    await _bounded(on.exec_driver_sql(statement), timeout, "the statement-cache probe")
            with suppress_instrumentation():
                # The marker is a parameter, so this query's own text does not match itself.
                rows = await _bounded(raw.rows(names_sql, marker), timeout, "reading pg_prepared_statements")
            seen.update({name: text for name, text in rows})
        return len(seen), sum(1 for text in seen.values() if "traceparent=" in text)

    token = secrets.token_hex(4)
    try:
        with parent_tracer.start_as_current_span("otel-sqla-doctor statement-cache probe"):
            commented, with_comment = await prepares(conn, f"osd508-traced-{token}", traced=True)
    except Exception as exc:
        return CacheMeasurement(n, error=_one_line(exc, redactor))
    if commented and not with_comment:
        return CacheMeasurement(n, prepares_commented=commented, skipped="the traced statements reached the server without a traceparent comment, so there is no comment to measure (see OSD506)")
    try:
        cache_size = await _cache_size(conn)
        plain, plain_with_comment = await _bounded(
            _on_second_engine(engine, backend, driver, timeout, cache_size, lambda c: prepares(c, f"osd508-plain-{token}", traced=False)),
            timeout * 3, "the baseline on a second engine",
        )
    except Exception as exc:
        return CacheMeasurement(n, prepares_commented=commented, error=f"the baseline on a second, uninstrumented engine failed: {_one_line(exc, redactor)}")
    if plain_with_comment:
        return CacheMeasurement(n, prepares_commented=commented, error="the baseline statements still carried a sqlcommenter comment, so there is nothing to compare with")
    return CacheMeasurement(n, prepares_plain=plain, prepares_commented=commented, baseline="a second engine on the same URL that nothing instruments")


async def _cache_size(conn: Any) -> int | None:
    """The probed engine's asyncpg statement-cache size (the URL's or connect_args'
    prepared_statement_cache_size), so that the baseline engine caches alike."""
    fairy = await conn.get_raw_connection()
    adapted = getattr(fairy, "dbapi_connection", None)
    missing = object()
    cache = getattr(adapted, "_prepared_statement_cache", missing)
    if cache is missing:
        return None
    return 0 if cache is None else getattr(cache, "capacity", None)


def _uninstrumented_engine(url: Any, connect_args: dict) -> Any:
    """An AsyncEngine on `url` that no tracer watches: built by the original factory, with the
    tracers a global instrument() attached anyway removed, and SQLAlchemy's own Engine.connect
    (instrument() wraps it to record a "connect" span) for its connections."""
    import sqlalchemy.ext.asyncio
    from sqlalchemy.engine.base import Engine
    from sqlalchemy.pool import NullPool

    from otel_sqla_doctor.live.wiring import detach_tracers

    factory = sqlalchemy.ext.asyncio.create_async_engine
    factory = getattr(factory, "__wrapped__", factory)
    engine = factory(url, poolclass=NullPool, connect_args=connect_args)
    detach_tracers(engine.sync_engine)
    connect = vars(Engine)["connect"]
    connect = getattr(connect, "__wrapped__", connect)
    engine.sync_engine.connect = connect.__get__(engine.sync_engine)
    return engine


async def _on_second_engine(engine: Any, backend: Backend, driver: str, timeout: float, cache_size: int | None, work: Any) -> Any:
    from otel_sqla_doctor.live.wiring import engine_tracers

    connect_args = backend.connect_args(driver, timeout)
    if cache_size is not None:
        connect_args["prepared_statement_cache_size"] = cache_size
    second = _uninstrumented_engine(engine.url, connect_args)
    try:
        if engine_tracers(second.sync_engine):
            raise RuntimeError("a tracer could not be removed from it")
        async with second.connect() as conn:
            guard = await guard_connection(conn, backend, driver, timeout)
            if not guard.read_only:
                raise RuntimeError(guard.describe())
            return await work(conn)
    finally:
        try:
            await asyncio.wait_for(second.dispose(), timeout)
        except Exception:
            pass
