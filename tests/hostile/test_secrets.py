"""Issue 16, item 4: no credential the user gave the doctor is ever printed, in text, JSON, HTML or
an error line; a DSN whose password needs percent-encoding (an unencoded '@') is refused with one
line that says so, without echoing the password and before anything is looked up in DNS.

Everything runs the real CLI (`python -m otel_sqla_doctor`); the live tests use the real
PostgreSQL and MariaDB servers of tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from cli_support import run_doctor

SECRET = "TopSecretTail"
SPANS = Path(__file__).resolve().parent.parent / "spans" / "fixtures" / "n_plus_one.otlp.jsonl"

# Records every name the doctor process asks DNS about (asyncio, asyncpg and aiomysql all resolve
# through socket.getaddrinfo), so a test can prove that a password's tail never went there.
DNS_HOOK = """
import os, socket
_log = os.environ["DNS_LOG"]
open(_log, "a").write("hook loaded\\n")
_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    with open(_log, "a") as handle:
        handle.write(f"{host}\\n")
    return _getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _shown(result) -> str:
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    return result.stdout + result.stderr


def _dns_env(tmp_path: Path) -> tuple[dict, Path]:
    hook = tmp_path / "dns-hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(DNS_HOOK)
    log = tmp_path / "dns.log"
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])), "DNS_LOG": str(log)}, log


# -- OTLP endpoint credentials -------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_otlp_endpoint_credentials_are_never_printed(tmp_path, protocol, fmt):
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://collector-user:Otlp{SECRET}@127.0.0.1:{_closed_port()}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20Header{SECRET}",
    }

    result = run_doctor(["probe", "--timeout", "5", "--format", fmt], cwd=tmp_path, env=env)

    shown = _shown(result)
    assert SECRET not in shown, shown
    assert result.returncode == 1  # OSD510 failed: nothing listens there
    if fmt == "json":
        checks = {c["code"]: c for c in json.loads(result.stdout)["checks"]}
        osd510 = checks["OSD510"]["detail"]
    else:
        osd510 = next(line for line in result.stdout.splitlines() if "OSD510" in line)
    assert "collector-user:***@127.0.0.1" in osd510 and "did not accept the test span" in osd510, osd510


# -- DSN passwords that need percent-encoding ----------------------------------------------------
@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql+asyncpg://postgres:p@ss{SECRET}@127.0.0.1:5432/postgres",
        f"postgresql+asyncpg://postgres:p@ss/x{SECRET}@127.0.0.1:5432/postgres",  # the tail lands in the database name
        f"mysql+aiomysql://root:p@ss{SECRET}@127.0.0.1:3306/test",
    ],
)
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_unencoded_at_in_a_password_is_one_line_without_the_password_and_no_dns(tmp_path, dsn, fmt):
    env, dns_log = _dns_env(tmp_path)

    result = run_doctor(["probe", dsn, "--timeout", "5", "--format", fmt], cwd=tmp_path, env=env)

    shown = _shown(result)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "unencoded '@'" in lines[0] and "%40" in lines[0] and "password is not shown" in lines[0]
    assert SECRET not in shown and "p@ss" not in shown
    looked_up = dns_log.read_text().splitlines()
    assert looked_up[0] == "hook loaded"
    assert not [host for host in looked_up if SECRET in host], looked_up


@pytest.mark.live
def test_a_percent_encoded_password_connects_and_is_never_shown(tmp_path, pg_dsn):
    # Trust authentication: the server accepts any password, so the probe gets through.
    dsn = make_url(pg_dsn).set(password=f"p@ss/{SECRET}").render_as_string(hide_password=False)
    assert "%40" in dsn

    text = run_doctor(["probe", dsn, "--timeout", "10"], cwd=tmp_path)
    data = run_doctor(["probe", dsn, "--timeout", "10", "--format", "json"], cwd=tmp_path)

    for result in (text, data):
        shown = _shown(result)
        assert SECRET not in shown and "p%40ss" not in shown and "p@ss" not in shown
    checks = {c["code"]: c for c in json.loads(data.stdout)["checks"]}
    assert checks["OSD501"]["status"] == "pass", checks["OSD501"]
    assert "postgres:***@127.0.0.1" in json.loads(data.stdout)["target"]


@pytest.mark.live
def test_a_wrong_percent_encoded_password_is_refused_by_mariadb_without_echo(tmp_path, mysql_dsn):
    dsn = make_url(mysql_dsn).set(password=f"Wr0ng@{SECRET}").render_as_string(hide_password=False)

    result = run_doctor(["probe", dsn, "--timeout", "10", "--format", "json"], cwd=tmp_path)

    shown = _shown(result)
    assert SECRET not in shown and "Wr0ng" not in shown
    osd501 = {c["code"]: c for c in json.loads(result.stdout)["checks"]}["OSD501"]
    assert osd501["status"] == "fail" and "access denied for user 'root'" in osd501["detail"], osd501


def test_a_user_engine_whose_url_was_split_inside_the_password_does_not_show_the_tail(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "db.py").write_text(
        "from sqlalchemy.ext.asyncio import create_async_engine\n"
        f"engine = create_async_engine('postgresql+asyncpg://postgres:p@ss{SECRET}@127.0.0.1:5432/postgres')\n"
    )

    result = run_doctor(["probe", "--engine", "db:engine", "--app-dir", str(app), "--timeout", "5", "--format", "json"], cwd=tmp_path)

    shown = _shown(result)
    assert SECRET not in shown, shown
    osd501 = {c["code"]: c for c in json.loads(result.stdout)["checks"]}["OSD501"]
    assert osd501["status"] == "fail" and "unencoded '@'" in osd501["detail"], osd501
    assert "%40" in osd501["remediation"]


# -- the static scan, span reports and error lines -----------------------------------------------
@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_scan_reports_never_show_a_url_password_from_the_code(tmp_path, fmt):
    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    (tmp_path / "db.py").write_text(
        "from sqlalchemy.ext.asyncio import create_async_engine\n"
        f"engine = create_async_engine('postgresql://app:Scan{SECRET}@db.internal:5432/shop')\n"
    )

    result = run_doctor(["scan", ".", "--no-cache", "--select", "OSD402", "--format", fmt], cwd=tmp_path)

    shown = _shown(result)
    assert result.returncode == 1
    assert "OSD402" in shown
    assert SECRET not in shown, shown
    if fmt == "json":
        assert json.loads(result.stdout)["findings"][0]["fix"] == "'postgresql+asyncpg://app:***@db.internal:5432/shop'"


def test_span_reports_never_show_a_url_password(tmp_path):
    spans = tmp_path / "spans.jsonl"
    spans.write_text(SPANS.read_text().replace('"name":"GET /authors"', f'"name":"GET https://reader:Span{SECRET}@api.example/authors"'))
    assert SECRET in spans.read_text()

    text = run_doctor(["spans", str(spans)], cwd=tmp_path)
    data = run_doctor(["spans", str(spans), "--format", "json", "--html", "page.html"], cwd=tmp_path)

    for result in (text, data):
        assert result.returncode == 1
        assert SECRET not in _shown(result)
    assert "reader:***@api.example" in text.stdout
    assert SECRET not in (tmp_path / "page.html").read_text()


@pytest.mark.parametrize("command", [["scan"], ["spans"]])
def test_a_url_typed_where_a_file_goes_is_masked_in_the_error(tmp_path, command):
    result = run_doctor([*command, f"postgresql://app:Arg{SECRET}@db/shop"], cwd=tmp_path)

    shown = _shown(result)
    assert result.returncode == 2
    assert SECRET not in shown
    assert len(result.stderr.strip().splitlines()) == 1 and "app:***@db/shop" in result.stderr

