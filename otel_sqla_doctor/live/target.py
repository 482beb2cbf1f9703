"""Which database the probe talks to: parse and vet a DSN before anything connects.

A DSN whose driver is synchronous (`postgresql://`, `+psycopg2`, `mysql://`, `+pymysql`,
`sqlite://`) is refused with the async DSN to use instead, never silently re-mapped: probing a
driver the application does not use would prove nothing about the application, and a sync URL
in an asyncio service is itself the mistake (static rule OSD402).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from otel_sqla_doctor.errors import UsageError
from otel_sqla_doctor.redact import Redactor, mask_url

DEFAULT_DSN = "sqlite+aiosqlite://"

# backend -> {driver name in the URL: importable module}
ASYNC_DRIVERS: dict[str, dict[str, str]] = {
    "postgresql": {"asyncpg": "asyncpg", "psycopg": "psycopg", "psycopg_async": "psycopg"},
    "mysql": {"aiomysql": "aiomysql", "asyncmy": "asyncmy"},
    "sqlite": {"aiosqlite": "aiosqlite"},
}
# What a sync URL of each backend should use instead.
SUGGESTED_DRIVER = {"postgresql": "asyncpg", "mysql": "aiomysql", "sqlite": "aiosqlite"}
# URL schemes that name a backend differently.
BACKEND_ALIASES = {"postgres": "postgresql", "mariadb": "mysql", "postgresql": "postgresql", "mysql": "mysql", "sqlite": "sqlite"}
SUPPORTED = "postgresql+asyncpg, postgresql+psycopg, mysql+aiomysql, mysql+asyncmy, mariadb+aiomysql, sqlite+aiosqlite"


@dataclass(frozen=True)
class Target:
    """A vetted DSN: `url` is a SQLAlchemy URL, `display` its masked form for every output."""

    url: Any
    display: str
    backend: str  # postgresql | mysql | sqlite
    driver: str
    is_default: bool = False


def needs_encoding(url: Any) -> bool:
    """True when SQLAlchemy split a URL inside its password (an unencoded '@' in it): an '@' left
    in the host, port or database after the `user:password@` part."""
    if url.password is None:
        return False
    return any("@" in str(part) for part in (url.host, url.port, url.database) if part is not None)


def _echo(dsn: str) -> str:
    """The DSN as it may be shown: masked when its password can be located, else not at all."""
    masked = mask_url(dsn)
    if "://" in dsn and (masked != dsn or "@" not in dsn):
        return repr(masked)
    return "(not echoed: it may hold a password)"


def parse_target(dsn: str | None, redactor: Redactor) -> Target:
    """Parse and vet `dsn` (None: the in-memory SQLite default). Raises UsageError (exit 2)."""
    from sqlalchemy.engine import make_url

    is_default = dsn is None
    dsn = DEFAULT_DSN if dsn is None else dsn.strip()
    redactor.add_url(dsn)
    try:
        url = make_url(dsn)
    except Exception as exc:  # ArgumentError, or ValueError for a bad port
        raise UsageError(redactor.text(f"cannot parse DSN {_echo(dsn)}: {exc}")) from None
    redactor.add(url.password if isinstance(url.password, str) else None)
    if needs_encoding(url):
        # Refused before anything connects: the password's tail would be looked up as a host name.
        raise UsageError(
            f"the password in DSN {_echo(dsn)} contains an unencoded '@' (SQLAlchemy ends the password at "
            f"the first '@' and reads the rest as the host): percent-encode it, '@' as %40 "
            f"(urllib.parse.quote_plus(password) encodes every special character); the password is not shown"
        )
    display = redactor.text(url.render_as_string(hide_password=True))

    scheme = url.drivername
    backend_name, _, driver = scheme.partition("+")
    backend = BACKEND_ALIASES.get(backend_name)
    if backend is None:
        raise UsageError(f"no async driver the probe supports serves {scheme!r} ({display}); supported: {SUPPORTED}")
    if backend_name == "postgres":
        suggestion = url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=True)
        raise UsageError(f"SQLAlchemy does not accept the 'postgres://' scheme; use {redactor.text(suggestion)}")
    drivers = ASYNC_DRIVERS[backend]
    if driver not in drivers:
        suggestion = url.set(drivername=f"{backend_name}+{SUGGESTED_DRIVER[backend]}").render_as_string(hide_password=True)
        which = f"the sync driver {driver!r}" if driver else "SQLAlchemy's default sync driver"
        raise UsageError(
            f"{scheme}:// uses {which}, which create_async_engine cannot run; "
            f"use the async DSN {redactor.text(suggestion)} (see OSD402 sync-driver-url-in-async-engine)"
        )
    module = drivers[driver]
    if importlib.util.find_spec(module) is None:
        from otel_sqla_doctor.live.packages import DRIVER_DISTRIBUTIONS, MissingPackage

        raise MissingPackage(DRIVER_DISTRIBUTIONS.get(driver, module), f"{scheme}:// needs it")
    if backend == "sqlite":
        url = _read_only_sqlite(url)
    return Target(url=url, display=display, backend=backend, driver=driver, is_default=is_default)


def _read_only_sqlite(url: Any) -> Any:
    """Open a SQLite file read-only (URI mode=ro): sqlite3 would otherwise create a missing file."""
    database = url.database
    if not database or database == ":memory:" or url.query.get("uri") or database.startswith("file:"):
        return url
    return url.set(database=f"file:{database}", query={**url.query, "mode": "ro", "uri": "true"})
