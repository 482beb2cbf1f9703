"""Per-database knowledge: how to keep the session read-only and bounded, and how to read back
the SQL text the server actually received (comment included).

Every statement here except the probe query itself runs with instrumentation suppressed, so it
produces no span and no SQL comment and cannot be confused with the query under test.
"""

from __future__ import annotations

import math
from typing import Any

PROBE_PARAMETER = "probe_value"


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

    async def guard(self, conn: Any, timeout: float) -> str:
        """Make the connection read-only and statement-bounded; returns how, for OSD501."""
        raise NotImplementedError

    async def restore(self, conn: Any) -> None:
        """Undo session-level settings, for a connection that goes back into the user's pool."""

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

    async def guard(self, conn: Any, timeout: float) -> str:
        # First statement of the transaction; SET LOCAL ends with it, so the user's pool is untouched.
        await conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(timeout * 1000))}")
        return f"read-only transaction, statement_timeout {timeout:g}s"


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

    async def guard(self, conn: Any, timeout: float) -> str:
        await conn.exec_driver_sql("START TRANSACTION READ ONLY")
        if getattr(conn.dialect, "is_mariadb", False):
            await conn.exec_driver_sql(f"SET SESSION max_statement_time = {timeout:g}")
            return f"read-only transaction, max_statement_time {timeout:g}s"
        await conn.exec_driver_sql(f"SET SESSION max_execution_time = {max(1, int(timeout * 1000))}")
        return f"read-only transaction, max_execution_time {timeout:g}s"

    async def restore(self, conn: Any) -> None:
        variable = "max_statement_time" if getattr(conn.dialect, "is_mariadb", False) else "max_execution_time"
        await conn.exec_driver_sql(f"SET SESSION {variable} = DEFAULT")


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

    async def guard(self, conn: Any, timeout: float) -> str:
        await conn.exec_driver_sql("PRAGMA query_only = ON")
        return "PRAGMA query_only"

    async def restore(self, conn: Any) -> None:
        await conn.exec_driver_sql("PRAGMA query_only = OFF")

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
