"""`doctor probe` against the real MariaDB server (aiomysql)."""

from __future__ import annotations

import re

import pytest

from probe_helpers import TRACEPARENT_IN_DETAIL

pytestmark = pytest.mark.live


def test_mariadb_probe_passes_and_the_processlist_returns_the_query_spans_traceparent(invoke, mysql_dsn):
    run = invoke("--format", "json", mysql_dsn)

    assert run.exit_code == 0, run.output
    statuses = run.statuses()
    for code in ("OSD501", "OSD502", "OSD503", "OSD504", "OSD505", "OSD506", "OSD507", "OSD509"):
        assert statuses[code] == "pass", run.check(code)
    assert statuses["OSD508"] == "skip"
    assert "read-only transaction" in run.check("OSD501")["detail"]
    commenter = run.check("OSD506")
    match = re.search(TRACEPARENT_IN_DETAIL, commenter["detail"])
    assert match and "information_schema.processlist" in commenter["detail"], commenter
    assert match[3] == re.search(r"span id ([0-9a-f]{16})", run.check("OSD503")["detail"])[1]


def test_wrong_password_is_one_line_exit_1_and_the_password_never_appears(invoke, mysql_dsn):
    # root@127.0.0.1 has an empty password here, so any password is rejected (error 1045).
    password = "Wr0ng:p@ss/w%rd"
    encoded = "Wr0ng%3Ap%40ss%2Fw%25rd"
    dsn = mysql_dsn.replace("root@", f"root:{encoded}@")

    for fmt in ("text", "json"):
        run = invoke("--format", fmt, dsn)

        assert run.exit_code == 1
        for secret in (password, encoded, "Wr0ng", "p@ss"):
            assert secret not in run.output
        if fmt == "json":
            connect = run.check("OSD501")
            assert connect["status"] == "fail"
            assert connect["detail"] == "access denied for user 'root': wrong password, or no grant for this client host"
            assert run.json()["target"] == "mysql+aiomysql://root:***@127.0.0.1:3306/test"
        else:
            assert "Traceback" not in run.output
            assert "[✗] OSD501 database-connect: access denied for user 'root'" in run.stdout


def test_unknown_database_is_one_clear_line(invoke, mysql_dsn):
    run = invoke("--format", "json", mysql_dsn.rsplit("/", 1)[0] + "/no_such_database_osd")

    assert run.exit_code == 1
    assert run.check("OSD501")["detail"] == "database 'no_such_database_osd' does not exist on 127.0.0.1:3306"
