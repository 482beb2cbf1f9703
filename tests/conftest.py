"""Shared fixtures: real database servers for the live tests.

The live tests run over real connections, never mocks. On this project's machines PostgreSQL
(127.0.0.1:5432, trust auth) and MariaDB (127.0.0.1:3306, root, empty password) are running and
`.ci/run` makes sure of it. Elsewhere (a newcomer's laptop) a throwaway PostgreSQL is started from
the local `initdb` when one is installed. Under CI (CI=true) a missing server is a failure, never a
silent skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

PG_DSN_ENV = "DOCTOR_TEST_PG_DSN"
MYSQL_DSN_ENV = "DOCTOR_TEST_MYSQL_DSN"
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_MYSQL = "mysql+aiomysql://root@127.0.0.1:3306/test"


def _port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not reachable, and CI never skips live tests")
    pytest.skip(f"{what} is not reachable")


def _find_pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_throwaway_postgres() -> tuple[str, callable] | None:
    """initdb + pg_ctl in a temporary directory; returns (dsn, stop) or None when not possible."""
    initdb, pg_ctl = _find_pg_bin("initdb"), _find_pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        return None
    data = Path(tempfile.mkdtemp(prefix="doctor-pg-"))
    port = _free_port()
    prefix: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # initdb refuses to run as root
        if not shutil.which("runuser"):
            return None
        shutil.chown(data, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*prefix, initdb, "-D", str(data / "db"), "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
    opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    subprocess.run([*prefix, pg_ctl, "-D", str(data / "db"), "-o", opts, "-w", "-l", str(data / "log"), "start"], check=True, capture_output=True)
    subprocess.run([*prefix, _find_pg_bin("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "test"], check=True, capture_output=True)

    def stop() -> None:
        subprocess.run([*prefix, pg_ctl, "-D", str(data / "db"), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)

    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test", stop


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """An asyncpg DSN for a real PostgreSQL server (trust auth, database `test`)."""
    dsn = os.environ.get(PG_DSN_ENV, DEFAULT_PG)
    if _port_open("127.0.0.1", 5432) or PG_DSN_ENV in os.environ:
        yield dsn
        return
    started = None if os.environ.get("CI") else _start_throwaway_postgres()
    if started is None:
        _missing("PostgreSQL on 127.0.0.1:5432")
    dsn, stop = started
    try:
        yield dsn
    finally:
        stop()


@pytest.fixture(scope="session")
def mysql_dsn() -> str:
    """An aiomysql DSN for a real MariaDB/MySQL server (root, empty password, database `test`)."""
    dsn = os.environ.get(MYSQL_DSN_ENV, DEFAULT_MYSQL)
    if not (_port_open("127.0.0.1", 3306) or MYSQL_DSN_ENV in os.environ):
        _missing("MariaDB on 127.0.0.1:3306")
    return dsn
