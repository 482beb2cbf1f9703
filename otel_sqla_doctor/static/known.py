"""The third-party APIs the rules understand, by canonical qualified name.

Aliases (the many import paths of one object) are folded to one canonical name, so a rule asks
`is this sqlalchemy.ext.asyncio.create_async_engine?` once, whatever the spelling in user code.
"""

from __future__ import annotations

# Many import paths, one object.
ALIASES: dict[str, str] = {
    "sqlalchemy.ext.asyncio.engine.create_async_engine": "sqlalchemy.ext.asyncio.create_async_engine",
    "sqlalchemy.ext.asyncio.engine.AsyncEngine": "sqlalchemy.ext.asyncio.AsyncEngine",
    "sqlalchemy.ext.asyncio.engine.AsyncConnection": "sqlalchemy.ext.asyncio.AsyncConnection",
    "sqlalchemy.ext.asyncio.session.AsyncSession": "sqlalchemy.ext.asyncio.AsyncSession",
    "sqlalchemy.ext.asyncio.session.async_sessionmaker": "sqlalchemy.ext.asyncio.async_sessionmaker",
    "sqlalchemy.ext.asyncio.scoping.async_scoped_session": "sqlalchemy.ext.asyncio.async_scoped_session",
    "sqlalchemy.engine.create_engine": "sqlalchemy.create_engine",
    "sqlalchemy.engine.create.create_engine": "sqlalchemy.create_engine",
    "sqlalchemy.Engine": "sqlalchemy.engine.Engine",
    "sqlalchemy.engine.base.Engine": "sqlalchemy.engine.Engine",
    "sqlalchemy.Connection": "sqlalchemy.engine.Connection",
    "sqlalchemy.engine.base.Connection": "sqlalchemy.engine.Connection",
    "sqlalchemy.orm.session.Session": "sqlalchemy.orm.Session",
    "sqlalchemy.orm.session.sessionmaker": "sqlalchemy.orm.sessionmaker",
    "sqlalchemy.orm.scoping.scoped_session": "sqlalchemy.orm.scoped_session",
    "sqlalchemy.sql.text": "sqlalchemy.text",
    "sqlalchemy.sql.expression.text": "sqlalchemy.text",
    "sqlalchemy.sql._elements_constructors.text": "sqlalchemy.text",
    "sqlmodel.Session": "sqlmodel.orm.session.Session",
    "sqlmodel.ext.asyncio.session.AsyncSession": "sqlalchemy.ext.asyncio.AsyncSession",
    "sqlmodel.create_engine": "sqlalchemy.create_engine",
    "sqlmodel.text": "sqlalchemy.text",
    "sqlmodel.sql.expression.text": "sqlalchemy.text",
    "opentelemetry.instrumentation.sqlalchemy.SQLAlchemyInstrumentor": "opentelemetry.instrumentation.sqlalchemy.SQLAlchemyInstrumentor",
    "opentelemetry.sdk.trace.export.SimpleSpanProcessor": "opentelemetry.sdk.trace.export.SimpleSpanProcessor",
    "opentelemetry.trace.set_tracer_provider": "opentelemetry.trace.set_tracer_provider",
    # Async drivers used directly (OSD301).
    "asyncpg.connection.connect": "asyncpg.connect",
    "asyncpg.connection.Connection": "asyncpg.Connection",
    "asyncpg.pool.create_pool": "asyncpg.create_pool",
    "asyncpg.pool.Pool": "asyncpg.Pool",
    "asyncpg.pool.PoolConnectionProxy": "asyncpg.Connection",
    "aiosqlite.core.connect": "aiosqlite.connect",
    "aiosqlite.core.Connection": "aiosqlite.Connection",
}


def canonical(qualname: str) -> str:
    return ALIASES.get(qualname, qualname)


# Calling one of these gives an object of this kind.
CALL_KINDS: dict[str, str] = {
    "sqlalchemy.ext.asyncio.create_async_engine": "async_engine",
    "sqlalchemy.ext.asyncio.AsyncEngine": "async_engine",
    "sqlalchemy.create_engine": "sync_engine",
    "sqlalchemy.engine.Engine": "sync_engine",
    "sqlalchemy.ext.asyncio.async_sessionmaker": "async_sessionmaker",
    "sqlalchemy.ext.asyncio.async_scoped_session": "async_sessionmaker",
    "sqlalchemy.orm.sessionmaker": "sync_sessionmaker",  # unless class_=AsyncSession
    "sqlalchemy.orm.scoped_session": "sync_scoped_session",
    "sqlalchemy.orm.Session": "sync_session",
    "sqlmodel.orm.session.Session": "sync_session",
    "sqlalchemy.ext.asyncio.AsyncSession": "async_session",
    "sqlalchemy.ext.asyncio.AsyncConnection": "async_connection",
    "sqlalchemy.engine.Connection": "sync_connection",
    "asyncpg.connect": "asyncpg_connection",
    "asyncpg.create_pool": "asyncpg_pool",
    "aiosqlite.connect": "aiosqlite_connection",
}

# An annotation naming one of these classes means an instance of this kind.
ANNOTATION_KINDS: dict[str, str] = {
    "sqlalchemy.ext.asyncio.AsyncEngine": "async_engine",
    "sqlalchemy.engine.Engine": "sync_engine",
    "sqlalchemy.orm.Session": "sync_session",
    "sqlmodel.orm.session.Session": "sync_session",
    "sqlalchemy.orm.scoped_session": "sync_scoped_session",
    "sqlalchemy.orm.sessionmaker": "sync_sessionmaker",
    "sqlalchemy.ext.asyncio.AsyncSession": "async_session",
    "sqlalchemy.ext.asyncio.async_sessionmaker": "async_sessionmaker",
    "sqlalchemy.ext.asyncio.AsyncConnection": "async_connection",
    "sqlalchemy.engine.Connection": "sync_connection",
    "asyncpg.Connection": "asyncpg_connection",
    "asyncpg.Pool": "asyncpg_pool",
    "aiosqlite.Connection": "aiosqlite_connection",
}

# (kind, attribute) -> kind of the attribute's value.
ATTRIBUTE_KINDS: dict[tuple[str, str], str] = {
    ("async_engine", "sync_engine"): "sync_engine",
    ("async_connection", "sync_connection"): "sync_connection",
    ("async_connection", "sync_engine"): "sync_engine",
    ("async_session", "sync_session"): "sync_session",
    ("async_session", "bind"): "async_engine",
}

# (kind, method) -> kind of what calling the method returns.
METHOD_KINDS: dict[tuple[str, str], str] = {
    ("sync_engine", "connect"): "sync_connection",
    ("sync_engine", "begin"): "sync_connection",
    ("async_engine", "connect"): "async_connection",
    ("async_engine", "begin"): "async_connection",
    ("sync_sessionmaker", "begin"): "sync_session",
    ("async_sessionmaker", "begin"): "async_session",
    ("sync_scoped_session", "__call__"): "sync_session",
    ("asyncpg_pool", "acquire"): "asyncpg_connection",
}

# Calling an object of this kind gives one of that kind (session factories).
CALLABLE_KINDS: dict[str, str] = {
    "sync_sessionmaker": "sync_session",
    "sync_scoped_session": "sync_session",
    "async_sessionmaker": "async_session",
}

# Connections and pools of async drivers used without SQLAlchemy (asyncpg, aiosqlite).
DRIVER_CONNECTION_KINDS = frozenset({"asyncpg_connection", "asyncpg_pool", "aiosqlite_connection"})

SQLALCHEMY_INSTRUMENTOR = "opentelemetry.instrumentation.sqlalchemy.SQLAlchemyInstrumentor"

# Instrumentors of DB drivers that trace the same statements as SQLAlchemy's (OSD105).
DRIVER_INSTRUMENTORS: dict[str, str] = {
    "opentelemetry.instrumentation.asyncpg.AsyncPGInstrumentor": "asyncpg",
    "opentelemetry.instrumentation.psycopg.PsycopgInstrumentor": "psycopg",
    "opentelemetry.instrumentation.psycopg2.Psycopg2Instrumentor": "psycopg2",
    "opentelemetry.instrumentation.aiopg.AiopgInstrumentor": "aiopg",
    "opentelemetry.instrumentation.pymysql.PyMySQLInstrumentor": "pymysql",
    "opentelemetry.instrumentation.mysqlclient.MySQLClientInstrumentor": "mysqlclient",
    "opentelemetry.instrumentation.mysql.MySQLInstrumentor": "mysql-connector",
    "opentelemetry.instrumentation.sqlite3.SQLite3Instrumentor": "sqlite3",
    "opentelemetry.instrumentation.dbapi.DatabaseApiIntegration": "dbapi",
}

SET_TRACER_PROVIDER = "opentelemetry.trace.set_tracer_provider"
