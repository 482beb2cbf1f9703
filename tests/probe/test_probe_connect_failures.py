"""Connection failures and unusable DSNs: one clear line each, no traceback, no password, and
the documented exit code (1 = a check failed, 2 = usage error)."""

from __future__ import annotations

import socket
import time

import pytest

from probe_helpers import doctor

pytestmark = pytest.mark.live

SECRET = "Hunter2:s/ecr@t"
SECRET_ENCODED = "Hunter2%3As%2Fecr%40t"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _assert_clean(run, *secrets: str) -> None:
    assert "Traceback" not in run.output
    for secret in secrets:
        assert secret not in run.output


@pytest.mark.parametrize("scheme", ["postgresql+asyncpg", "mysql+aiomysql"])
def test_refused_port(scheme):
    port = _free_port()

    run = doctor(f"{scheme}://u:{SECRET_ENCODED}@127.0.0.1:{port}/test")

    assert run.exit_code == 1
    line = next(line for line in run.stdout.splitlines() if "OSD501" in line)
    assert line.startswith("[✗] OSD501 database-connect: ")
    assert f"127.0.0.1:{port}" in line and ("refused" in line or "cannot reach" in line)
    assert f"{scheme}://u:***@127.0.0.1:{port}/test" in run.stdout
    _assert_clean(run, SECRET, SECRET_ENCODED, "Hunter2")


def test_unknown_host():
    run = doctor(f"postgresql+asyncpg://u:{SECRET_ENCODED}@no-such-host.invalid/test", "--format", "json")

    assert run.exit_code == 1
    assert run.check("OSD501")["detail"] == "unknown host 'no-such-host.invalid': the name does not resolve"
    _assert_clean(run, SECRET, SECRET_ENCODED, "Hunter2")


@pytest.mark.parametrize("scheme", ["postgresql+asyncpg", "mysql+aiomysql"])
def test_silent_server_is_abandoned_within_the_timeout(scheme, silent_server):
    started = time.monotonic()

    run = doctor(f"{scheme}://u@127.0.0.1:{silent_server.port}/test", "--timeout", "1", "--format", "json")

    elapsed = time.monotonic() - started
    assert run.exit_code == 1
    assert run.check("OSD501")["detail"] == f"no answer from 127.0.0.1:{silent_server.port} within 1s"
    assert elapsed < 10  # interpreter start-up included; the wait itself is bounded by --timeout


def test_postgres_unknown_database(pg_dsn):
    run = doctor(pg_dsn.rsplit("/", 1)[0] + "/no_such_database_osd", "--format", "json")

    assert run.exit_code == 1
    assert run.check("OSD501")["detail"].startswith("database 'no_such_database_osd' does not exist on 127.0.0.1:")


def test_password_never_printed_even_when_the_server_accepts_it(pg_dsn):
    # PostgreSQL here trusts every local connection, so a wrong password still connects.
    dsn = pg_dsn.replace("postgres@", f"postgres:{SECRET_ENCODED}@")

    for fmt in ("text", "json"):
        run = doctor(dsn, "--format", fmt)

        assert run.exit_code == 0
        _assert_clean(run, SECRET, SECRET_ENCODED, "Hunter2")
        assert "postgres:***@127.0.0.1" in run.stdout


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        (f"postgresql://u:{SECRET_ENCODED}@db.example/app", "use the async DSN postgresql+asyncpg://u:***@db.example/app"),
        (f"postgresql+psycopg2://u:{SECRET_ENCODED}@db.example/app", "the sync driver 'psycopg2'"),
        (f"mysql+pymysql://u:{SECRET_ENCODED}@db.example/app", "use the async DSN mysql+aiomysql://u:***@db.example/app"),
        ("mysql://root@db.example/app", "use the async DSN mysql+aiomysql://root@db.example/app"),
        ("sqlite:///app.db", "use the async DSN sqlite+aiosqlite:///app.db"),
        (f"postgres://u:{SECRET_ENCODED}@db.example/app", "does not accept the 'postgres://' scheme"),
        (f"oracle+oracledb://u:{SECRET_ENCODED}@db.example/app", "no async driver the probe supports serves 'oracle+oracledb'"),
        (f"postgresql+asyncpg://u:{SECRET_ENCODED}@db.example:port/app", "cannot parse DSN 'postgresql+asyncpg://u:***@db.example:port/app'"),
        (f"not a dsn {SECRET}", "cannot parse DSN"),
    ],
)
def test_unusable_dsn_is_a_usage_error(invoke, dsn, message):
    from otel_sqla_doctor.errors import UsageError

    with pytest.raises(UsageError) as raised:
        invoke(dsn)

    shown = str(raised.value)
    assert message in shown and "\n" not in shown
    for secret in (SECRET, SECRET_ENCODED, "Hunter2"):
        assert secret not in shown


def test_usage_error_is_one_stderr_line_and_exit_2():
    run = doctor(f"postgresql+psycopg2://u:{SECRET_ENCODED}@db.example/app")

    assert run.exit_code == 2
    assert run.stdout == ""
    assert run.stderr == (
        "doctor: error: postgresql+psycopg2:// uses the sync driver 'psycopg2', which create_async_engine cannot run; "
        "use the async DSN postgresql+asyncpg://u:***@db.example/app (see OSD402 sync-driver-url-in-async-engine)\n"
    )
