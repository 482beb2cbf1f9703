"""Turn whatever a driver raised while connecting into one line a person can act on."""

from __future__ import annotations

import asyncio
import errno
import re
import socket
from collections.abc import Iterator

# MySQL/MariaDB client and server error numbers (pymysql/asyncmy put them in args[0]).
MYSQL_ACCESS_DENIED = 1045
MYSQL_UNKNOWN_DATABASE = 1049
MYSQL_CANNOT_CONNECT = 2003
MYSQL_UNKNOWN_HOST = 2005


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, SQLAlchemy's `.orig`, and every cause/context, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def describe_connect_error(exc: BaseException, *, host: str, port: int | None, user: str | None, database: str | None, timeout: float) -> tuple[str, str]:
    """(one-line detail, remediation) for a failed connection."""
    if "@" in (host or ""):
        # SQLAlchemy ended the password at its first '@': the rest of it is in `host` (never shown).
        return (
            "the URL's host name contains '@': the password holds an unencoded '@', and SQLAlchemy read the rest of it as the host (not shown)",
            "percent-encode the password: '@' as %40 (urllib.parse.quote_plus(password) encodes every special character)",
        )
    where = f"{host}:{port}" if port else host
    for err in _chain(exc):
        name = type(err).__name__
        if isinstance(err, (asyncio.TimeoutError, TimeoutError)) or name in ("ProbeTimeout",):
            return (f"no answer from {where} within {timeout:g}s", "check host, port and firewalls; raise --timeout for a slow network")
        if isinstance(err, socket.gaierror):
            return (f"unknown host {host!r}: the name does not resolve", "check the host name in the DSN")
        if isinstance(err, ConnectionRefusedError) or (isinstance(err, OSError) and err.errno == errno.ECONNREFUSED):
            return (f"connection refused by {where}: nothing is listening there", "start the server, or fix the host/port in the DSN")
        if name == "InvalidPasswordError":
            return (f"authentication failed for user {user!r}: wrong password", "fix the password (it is never printed)")
        if name == "InvalidAuthorizationSpecificationError":
            return (f"the server rejected user {user!r}: {_first_line(err)}", "use a role that exists and may log in")
        if name == "InvalidCatalogNameError":
            return (f"database {database!r} does not exist on {where}", "fix the database name in the DSN")
        code = err.args[0] if err.args and isinstance(err.args[0], int) else None
        if code == MYSQL_ACCESS_DENIED:
            return (f"access denied for user {user!r}: wrong password, or no grant for this client host", "fix the password or the user's host grant")
        if code == MYSQL_UNKNOWN_DATABASE:
            return (f"database {database!r} does not exist on {where}", "fix the database name in the DSN")
        if type(err).__module__.split(".", 1)[0] == "psycopg":
            described = _describe_libpq(_first_line(err), host=host, where=where, user=user, database=database, timeout=timeout)
            if described is not None:
                return described
    # pymysql wraps refused/unresolvable in 2003 without keeping the socket error: say what we know.
    for err in _chain(exc):
        code = err.args[0] if err.args and isinstance(err.args[0], int) else None
        if code in (MYSQL_CANNOT_CONNECT, MYSQL_UNKNOWN_HOST):
            if _resolves(host):
                return (f"cannot reach the server at {where}: connection refused or nothing listening", "start the server, or fix the host/port in the DSN")
            return (f"unknown host {host!r}: the name does not resolve", "check the host name in the DSN")
    return (f"{type(exc).__name__}: {_first_line(exc)}", "check the DSN and that the server accepts connections from this host")


# psycopg 3 raises OperationalError with no sqlstate for connection failures: libpq's message
# (English unless the server's lc_messages says otherwise) is all there is.
_LIBPQ = (
    (re.compile(r"Connection refused"), "refused"),
    (re.compile(r'database "[^"]*" does not exist'), "database"),
    (re.compile(r'role "[^"]*" does not exist|no pg_hba\.conf entry'), "role"),
    (re.compile(r"password authentication failed|no password supplied"), "password"),
    (re.compile(r"failed to resolve host|could not translate host name"), "host"),
    (re.compile(r"timeout expired"), "timeout"),
)


def _describe_libpq(message: str, *, host: str, where: str, user: str | None, database: str | None, timeout: float) -> tuple[str, str] | None:
    for pattern, kind in _LIBPQ:
        if not pattern.search(message):
            continue
        if kind == "refused":
            return (f"connection refused by {where}: nothing is listening there", "start the server, or fix the host/port in the DSN")
        if kind == "database":
            return (f"database {database!r} does not exist on {where}", "fix the database name in the DSN")
        if kind == "role":
            reason = message.split("FATAL:", 1)[-1].strip()
            return (f"the server rejected user {user!r}: {reason}", "use a role that exists and may log in")
        if kind == "password":
            return (f"authentication failed for user {user!r}: wrong password", "fix the password (it is never printed)")
        if kind == "host":
            return (f"unknown host {host!r}: the name does not resolve", "check the host name in the DSN")
        return (f"no answer from {where} within {timeout:g}s", "check host, port and firewalls; raise --timeout for a slow network")
    return None


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
        return True
    except OSError:
        return False
