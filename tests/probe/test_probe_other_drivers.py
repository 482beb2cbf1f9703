"""`doctor probe` through the other async drivers it supports: psycopg 3 (async) on PostgreSQL and
asyncmy on MariaDB, against the real servers. Same checks, same clear connection errors, and the
password never printed."""

from __future__ import annotations

import re

import pytest

from probe_helpers import TRACEPARENT_IN_DETAIL, doctor

pytestmark = pytest.mark.live

SECRET = "Hunter2@x/y"
SECRET_ENCODED = "Hunter2%40x%2Fy"


@pytest.fixture(params=["postgresql+psycopg", "mysql+asyncmy"])
def driver_dsn(request) -> str:
    """A DSN for the real server, with this driver instead of asyncpg/aiomysql."""
    scheme = request.param
    if scheme.startswith("postgresql"):
        base = request.getfixturevalue("pg_dsn")
    else:
        base = request.getfixturevalue("mysql_dsn")
    return scheme + "://" + base.split("://", 1)[1]


def test_probe_passes_and_the_server_received_the_query_spans_traceparent(invoke, driver_dsn):
    run = invoke("--format", "json", driver_dsn)

    assert run.exit_code == 0, run.output
    statuses = run.statuses()
    for code in ("OSD501", "OSD502", "OSD503", "OSD504", "OSD505", "OSD506", "OSD507", "OSD509"):
        assert statuses[code] == "pass", run.check(code)
    driver = driver_dsn.split("+", 1)[1].split(":", 1)[0]
    assert f"through {driver}" in run.check("OSD501")["detail"]
    match = re.search(TRACEPARENT_IN_DETAIL, run.check("OSD506")["detail"])
    assert match, run.check("OSD506")
    assert match[3] == re.search(r"span id ([0-9a-f]{16})", run.check("OSD503")["detail"])[1]


def _with(dsn: str, *, port: int | None = None, database: str | None = None, user: str | None = None, password: bool = True) -> str:
    scheme, rest = dsn.split("://", 1)
    credentials, location = rest.rsplit("@", 1)
    hostport, db = location.split("/", 1)
    host = hostport.rsplit(":", 1)[0]
    secret = f":{SECRET_ENCODED}" if password else ""
    return f"{scheme}://{user or credentials}{secret}@{host}:{port or hostport.rsplit(':', 1)[1]}/{database or db}"


def _osd501(run) -> str:
    assert run.exit_code == 1, run.output
    assert "Traceback" not in run.output
    for secret in (SECRET, SECRET_ENCODED, "Hunter2"):
        assert secret not in run.output
    return run.check("OSD501")["detail"]


def test_refused_port_is_one_clear_line(driver_dsn):
    detail = _osd501(doctor(_with(driver_dsn, port=1), "--format", "json"))
    assert detail in ("connection refused by 127.0.0.1:1: nothing is listening there",
                      "cannot reach the server at 127.0.0.1:1: connection refused or nothing listening")


def test_unknown_database_is_one_clear_line(driver_dsn):
    # Without a password: MariaDB's root has none here, and would refuse any before the database.
    detail = _osd501(doctor(_with(driver_dsn, database="no_such_database_osd", password=False), "--format", "json"))
    assert re.fullmatch(r"database 'no_such_database_osd' does not exist on 127\.0\.0\.1:\d+", detail), detail


def test_unknown_user_is_one_clear_line(driver_dsn):
    detail = _osd501(doctor(_with(driver_dsn, user="nobody_osd"), "--format", "json"))
    assert "'nobody_osd'" in detail and ("rejected" in detail or "access denied" in detail), detail


def test_unknown_host_is_one_clear_line(driver_dsn):
    scheme = driver_dsn.split("://", 1)[0]
    detail = _osd501(doctor(f"{scheme}://u:{SECRET_ENCODED}@no-such-host.invalid/test", "--format", "json"))
    assert detail == "unknown host 'no-such-host.invalid': the name does not resolve"
