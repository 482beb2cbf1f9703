"""Per-database knowledge: how to keep the session read-only and bounded, and how to read back
the SQL text the server actually received (comment included).

The guard and its read-back run on the driver's own connection, beneath SQLAlchemy: no engine
event fires, so no tracer sees them (no span, no SQL comment) whatever the instrumentation release
does with `suppress_instrumentation()` (0.52b1 ignores it). The guard is set for the session, so it
holds for every transaction, also on an AUTOCOMMIT engine; what the server then reports is what
the probe claims, nothing else.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

PROBE_PARAMETER = "probe_value"


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class DriverConnection:
    """The async driver's connection under a SQLAlchemy AsyncConnection, used directly."""

    def __init__(self, driver_connection: Any, driver: str) -> None:
        self.raw = driver_connection
        self.driver = driver

    @classmethod
    async def of(cls, conn: Any, driver: str) -> "DriverConnection":
        fairy = await conn.get_raw_connection()
        return cls(fairy.driver_connection, driver)

    async def rows(self, sql: str, *params: Any) -> list[tuple]:
        raw = self.raw
        if self.driver == "asyncpg":
            return [tuple(row) for row in await raw.fetch(sql, *params)]
        if self.driver in ("aiomysql", "asyncmy"):
            cursor = await _maybe(raw.cursor())
            try:
                await cursor.execute(sql, params or None)
                return [tuple(row) for row in (await cursor.fetchall() or ())]
            finally:
                await _maybe(cursor.close())
        # psycopg (AsyncConnection.execute) and aiosqlite (Connection.execute) return a cursor
        cursor = await raw.execute(sql, params or None) if params else await raw.execute(sql)
        try:
            return [tuple(row) for row in await cursor.fetchall()] if cursor.description else []
        finally:
            await _maybe(cursor.close())

    async def value(self, sql: str) -> Any:
        rows = await self.rows(sql)
        return rows[0][0] if rows and rows[0] else None

    async def settle(self) -> None:
        """End the transaction the driver opened implicitly for our statements (psycopg, the MySQL
        drivers, sqlite3 without autocommit), so session settings stay and the next transaction
        starts with them. It holds only SET and SELECT: committing it writes nothing."""
        raw = self.raw
        if self.driver == "asyncpg":
            return  # asyncpg opens no implicit transaction
        if self.driver == "psycopg":
            if raw.info.transaction_status != 0:  # not IDLE
                await raw.commit()
            return
        if self.driver == "aiosqlite":
            if raw.in_transaction:
                await raw.commit()
            return
        await _maybe(raw.commit())


@dataclass
class Guard:
    """What the server reports after the guard: `read_only` decides whether the probe may run."""

    read_only: bool
    bounded: bool
    read_back: str  # e.g. "transaction_read_only=on, statement_timeout=5s"
    who: str = "the server"

    def describe(self) -> str:
        if not self.read_only:
            return f"the session could not be made read-only ({self.who} reports {self.read_back})"
        bound = "" if self.bounded else "; no server-side statement timeout in force (statements are bounded by the client only)"
        return f"{self.who} confirms read-only transactions for this session: {self.read_back}{bound}"


class Backend:
    name = ""
    label = ""
    systems: tuple[str, ...] = ()  # accepted db.system / db.system.name values
    probe_sql = ""
    server_text_source = ""
    default_port: int | None = None

    def connect_args(self, driver: str, timeout: float) -> dict[str, Any]:
        return {}

    def describe_server(self, conn: Any) -> str:
        """e.g. "PostgreSQL 15.20", for OSD501."""
        info = conn.dialect.server_version_info or ()
        return f"{self.label} {'.'.join(str(part) for part in info)}".strip()

    async def guard(self, raw: DriverConnection, timeout: float) -> Guard:
        """Make the session read-only and statement-bounded, then read back what is in force."""
        raise NotImplementedError

    async def start_reading(self, conn: Any) -> None:
        """Prepare to read the server-side text (only SQLite needs to)."""

    async def stop_reading(self, conn: Any) -> None:
        pass

    def server_text(self, row: Any, sentinel: str) -> str | None:
        return row.server_text


class PostgresBackend(Backend):
    name = "postgresql"
    label = "PostgreSQL"
    systems = ("postgresql",)
    # current_query() returns the statement being executed: itself, with the comment appended.
    probe_sql = "SELECT current_query() AS server_text, CAST(:probe_value AS TEXT) AS probe_value"
    server_text_source = "current_query()"
    default_port = 5432

    def connect_args(self, driver: str, timeout: float) -> dict[str, Any]:
        if driver == "asyncpg":
            return {"timeout": timeout, "command_timeout": timeout, "server_settings": {"application_name": "otel-sqla-doctor probe"}}
        return {"connect_timeout": max(1, math.ceil(timeout)), "application_name": "otel-sqla-doctor probe"}

    async def guard(self, raw: DriverConnection, timeout: float) -> Guard:
        # Session-wide, so it also holds for AUTOCOMMIT statements (SET TRANSACTION would need an
        # open transaction, which an AUTOCOMMIT engine never has). The probe never hands this
        # connection back to a pool: it is closed afterwards.
        await raw.rows("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        await raw.rows(f"SET statement_timeout = {max(1, int(timeout * 1000))}")
        await raw.settle()
        read_only = str(await raw.value("SHOW transaction_read_only"))
        statement_timeout = str(await raw.value("SHOW statement_timeout"))
        await raw.settle()
        return Guard(read_only == "on", statement_timeout not in ("0", "0ms"), f"transaction_read_only={read_only}, statement_timeout={statement_timeout}")


class MySQLBackend(Backend):
    name = "mysql"
    label = "MySQL"
    systems = ("mysql", "mariadb")
    # The process list shows the statement this connection is running: this one, comment included.
    probe_sql = (
        "SELECT info AS server_text, :probe_value AS probe_value "
        "FROM information_schema.processlist WHERE id = CONNECTION_ID()"
    )
    server_text_source = "information_schema.processlist"
    default_port = 3306

    def connect_args(self, driver: str, timeout: float) -> dict[str, Any]:
        return {"connect_timeout": max(1, math.ceil(timeout))}

    def describe_server(self, conn: Any) -> str:
        info = ".".join(str(part) for part in (conn.dialect.server_version_info or ())[:3])
        return f"MariaDB {info}" if getattr(conn.dialect, "is_mariadb", False) else f"MySQL {info}"

    async def guard(self, raw: DriverConnection, timeout: float) -> Guard:
        # The session characteristic applies from the next transaction on, and to every
        # statement under autocommit; settle() ends the implicit transaction already open.
        await raw.rows("SET SESSION TRANSACTION READ ONLY")
        version = str(await raw.value("SELECT VERSION()"))
        if "mariadb" in version.lower():
            variable, value = "max_statement_time", f"{timeout:g}"  # seconds
        else:
            variable, value = "max_execution_time", str(max(1, int(timeout * 1000)))  # ms, SELECT only
        await raw.rows(f"SET SESSION {variable} = {value}")
        await raw.settle()
        read_only = None
        for name in ("transaction_read_only", "tx_read_only"):  # MySQL 8 / MariaDB < 11.1
            try:
                read_only = await raw.value(f"SELECT @@session.{name}")
                break
            except Exception:
                continue
        bound = await raw.value(f"SELECT @@session.{variable}")
        await raw.settle()
        shown = f"{float(bound):g}" if bound is not None else "unknown"
        return Guard(str(read_only) == "1", bool(bound), f"{name}={read_only}, {variable}={shown}")


class SQLiteBackend(Backend):
    name = "sqlite"
    label = "SQLite"
    systems = ("sqlite",)
    probe_sql = "SELECT :probe_value AS probe_value"
    server_text_source = "sqlite3 trace callback"

    def __init__(self) -> None:
        self.traced: list[str] = []

    def connect_args(self, driver: str, timeout: float) -> dict[str, Any]:
        return {"timeout": timeout}

    def describe_server(self, conn: Any) -> str:
        import sqlite3  # here: some Python builds lack it, and a PostgreSQL probe must not need it

        return f"SQLite {sqlite3.sqlite_version}"

    async def guard(self, raw: DriverConnection, timeout: float) -> Guard:
        await raw.rows("PRAGMA query_only = ON")
        query_only = await raw.value("PRAGMA query_only")
        await raw.settle()
        # SQLite has no statement timeout; the client's --timeout bounds every call.
        return Guard(str(query_only) == "1", True, f"PRAGMA query_only={query_only}", who="SQLite")

    async def _driver_connection(self, conn: Any) -> Any:
        raw = await conn.get_raw_connection()
        return raw.driver_connection

    async def start_reading(self, conn: Any) -> None:
        # sqlite3 calls this with every statement it runs (parameters expanded), from the
        # aiosqlite worker thread; list.append is atomic.
        await (await self._driver_connection(conn)).set_trace_callback(self.traced.append)

    async def stop_reading(self, conn: Any) -> None:
        await (await self._driver_connection(conn)).set_trace_callback(None)

    def server_text(self, row: Any, sentinel: str) -> str | None:
        return next((sql for sql in reversed(self.traced) if sentinel in sql), None)


def backend_for(name: str) -> Backend:
    return {"postgresql": PostgresBackend, "mysql": MySQLBackend, "mariadb": MySQLBackend, "sqlite": SQLiteBackend}[name]()
