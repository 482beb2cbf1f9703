"""`-` reads stdin (issue 16, item 13): `doctor scan -` with --stdin-filename (as ruff: the name is
used for the report, configuration discovery, path roles and the project), `--fix`/`--diff` on
stdin, and `doctor spans -` in every format a file may have, gzip included."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from cli_support import REPO

SPANS = REPO / "tests" / "spans" / "fixtures"
WIRING = (
    "from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor\n"
    "from sqlalchemy.ext.asyncio import create_async_engine\n"
    "engine = create_async_engine('postgresql+asyncpg://u@h/db')\n"
    "SQLAlchemyInstrumentor().instrument(engine=engine)\n"
)
FIXED = WIRING.replace("engine=engine)", "engine=engine.sync_engine)")
INTERPOLATED = (
    "from sqlalchemy import text\n\n\n"
    "async def get(session, name):\n"
    '    return await session.execute(text(f"SELECT * FROM users WHERE name = {name}"))\n'
)


def doctor(args: list[str], stdin: bytes | str, cwd=None, timeout: float = 120) -> subprocess.CompletedProcess:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    proc = subprocess.run([sys.executable, "-m", "otel_sqla_doctor", *args], input=data, cwd=cwd, capture_output=True, timeout=timeout)
    proc.stdout, proc.stderr = proc.stdout.decode(), proc.stderr.decode()
    return proc


def _project(tmp_path, files: dict[str, str], table: str = "") -> object:
    (tmp_path / "pyproject.toml").write_text(f"[tool.otel-sqla-doctor]\nroot = true\n{table}")
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _usage_error(result, expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("doctor: error: ") and expected in result.stderr, result.stderr


# -- doctor scan - -------------------------------------------------------------------------------
def test_scan_stdin_is_reported_under_its_stdin_filename(tmp_path):
    _project(tmp_path, {"app/__init__.py": "", "app/db.py": "x = 1\n"})  # the disk's copy is clean
    result = doctor(["scan", "-", "--stdin-filename", "app/db.py", "--no-cache"], WIRING, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "app/db.py:4:44: OSD101" in result.stdout
    assert "Traceback" not in result.stderr


def test_scan_stdin_without_a_filename_is_reported_as_dash(tmp_path):
    result = doctor(["scan", "-", "--no-cache", "-f", "json"], WIRING, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert {f["path"] for f in data["findings"]} == {"-"}
    assert data["files_scanned"] == 1


def test_scan_stdin_with_only_stdin_filename_reads_stdin(tmp_path):
    _project(tmp_path, {})
    result = doctor(["scan", "--stdin-filename", "db.py", "--no-cache"], WIRING, cwd=tmp_path)
    assert result.returncode == 1 and "db.py:4:44: OSD101" in result.stdout


def test_scan_stdin_clean_source_is_clean_even_when_the_file_on_disk_is_not(tmp_path):
    _project(tmp_path, {"db.py": WIRING})
    result = doctor(["scan", "-", "--stdin-filename", "db.py", "--no-cache"], "import sqlalchemy\n\nVALUE = 1\n", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No problems found" in result.stdout


def test_scan_stdin_uses_the_configuration_of_its_filename(tmp_path):
    _project(tmp_path, {"svc/pyproject.toml": '[tool.otel-sqla-doctor]\nignore = ["OSD101"]\n'})
    here = doctor(["scan", "-", "--stdin-filename", "db.py", "--no-cache"], WIRING, cwd=tmp_path)
    there = doctor(["scan", "-", "--stdin-filename", "svc/db.py", "--no-cache"], WIRING, cwd=tmp_path)
    assert "OSD101" in here.stdout
    assert "OSD101" not in there.stdout, there.stdout


def test_scan_stdin_path_role_follows_its_filename(tmp_path):
    _project(tmp_path, {})
    service = doctor(["scan", "-", "--stdin-filename", "app/users.py", "--no-cache"], INTERPOLATED, cwd=tmp_path)
    test = doctor(["scan", "-", "--stdin-filename", "tests/test_users.py", "--no-cache"], INTERPOLATED, cwd=tmp_path)
    assert "app/users.py:5:34: OSD301" in service.stdout and service.returncode == 1
    assert "OSD301" not in test.stdout and test.returncode == 0, test.stdout


def test_scan_stdin_resolves_names_in_its_project(tmp_path):
    """The engine comes from another module of the project: found only when the stdin source is
    scanned inside it."""
    _project(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/db.py": "from sqlalchemy.ext.asyncio import create_async_engine\nengine = create_async_engine('postgresql+asyncpg://u@h/db')\n",
        },
    )
    source = "from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor\nfrom app.db import engine\nSQLAlchemyInstrumentor().instrument(engine=engine)\n"
    result = doctor(["scan", "-", "--stdin-filename", "app/telemetry.py", "--no-cache"], source, cwd=tmp_path)
    assert "app/telemetry.py:3:44: OSD101" in result.stdout, result.stdout
    assert "app/db.py" not in result.stdout  # only the stdin file is reported


def test_scan_stdin_fix_prints_the_fixed_source_and_reports_on_stderr(tmp_path):
    _project(tmp_path, {"db.py": WIRING})
    result = doctor(["scan", "-", "--stdin-filename", "db.py", "--fix", "--no-cache"], WIRING, cwd=tmp_path)
    assert result.stdout == FIXED
    assert "Fixed 1 problem in 1 file." in result.stderr
    assert "OSD101" not in result.stderr  # what is left after the fix
    assert (tmp_path / "db.py").read_text() == WIRING  # the file on disk is never written
    assert result.returncode == 1  # OSD202 (no TracerProvider) is left


def test_scan_stdin_fix_with_nothing_to_fix_echoes_the_source(tmp_path):
    source = "x = 1\r\n"
    result = doctor(["scan", "-", "--fix", "--no-cache"], source, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == source
    assert "No problems found" in result.stderr


def test_scan_stdin_diff(tmp_path):
    result = doctor(["scan", "-", "--stdin-filename", "db.py", "--diff", "--no-cache"], WIRING, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("--- a/db.py\n+++ b/db.py\n")
    assert "+SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)" in result.stdout
    assert doctor(["scan", "-", "--diff", "--exit-zero", "--no-cache"], WIRING, cwd=tmp_path).returncode == 0


def test_scan_stdin_with_a_syntax_error_is_a_per_file_error(tmp_path):
    result = doctor(["scan", "-", "--no-cache"], "import sqlalchemy\nx = (\n", cwd=tmp_path)
    assert result.returncode == 1
    assert "-: error: syntax error at line 2" in result.stdout
    assert "Traceback" not in result.stderr


def test_scan_stdin_output_may_not_be_the_file_it_stands_for(tmp_path):
    _project(tmp_path, {"db.py": WIRING})
    _usage_error(doctor(["scan", "-", "--stdin-filename", "db.py", "-o", "db.py"], WIRING, cwd=tmp_path), "it is an input of this run")
    assert (tmp_path / "db.py").read_text() == WIRING


@pytest.mark.parametrize(
    "args, expected",
    [
        (["scan", "-", "app.py"], "`-` reads one source file from stdin: it cannot be combined with other paths"),
        (["scan", "app.py", "--stdin-filename", "x.py"], "--stdin-filename names the source read from stdin"),
        (["scan", "-", "--stdin-filename", "notes.txt"], "(ending in .py) is expected"),
        (["scan", "-", "--stdin-filename", "pkg.py"], "is a directory"),
    ],
)
def test_scan_stdin_usage_errors(tmp_path, args, expected):
    (tmp_path / "app.py").write_text("x = 1\n")
    (tmp_path / "pkg.py").mkdir()  # a directory named like a module
    _usage_error(doctor(args, WIRING, cwd=tmp_path), expected)


# -- doctor spans - ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["n_plus_one.otlp.jsonl", "n_plus_one.jaeger.json", "n_plus_one.console.txt"])
def test_spans_stdin_reads_every_format(name):
    data = (SPANS / name).read_bytes()
    from_file = doctor(["spans", "-f", "json", str(SPANS / name)], b"")
    from_stdin = doctor(["spans", "-f", "json", "-"], data)
    assert from_stdin.returncode == from_file.returncode == 1, from_stdin.stderr
    file_report, stdin_report = json.loads(from_file.stdout), json.loads(from_stdin.stdout)
    assert stdin_report["files"][0]["path"] == "-"
    assert stdin_report["files"][0]["format"] == file_report["files"][0]["format"]
    assert [f["code"] for f in stdin_report["findings"]] == [f["code"] for f in file_report["findings"]] == ["OSD601"]


def test_spans_stdin_gzip():
    data = gzip.compress((SPANS / "n_plus_one.otlp.jsonl").read_bytes())
    result = doctor(["spans", "-"], data)
    assert result.returncode == 1, result.stderr
    assert "[✗] OSD601 n-plus-one-queries" in result.stdout


def test_spans_stdin_together_with_files_is_deduplicated():
    data = (SPANS / "n_plus_one.otlp.jsonl").read_bytes()
    result = doctor(["spans", "-f", "json", "-", str(SPANS / "n_plus_one.otlp.jsonl")], data)
    report = json.loads(result.stdout)
    assert [f["path"] for f in report["files"]] == ["-", str(SPANS / "n_plus_one.otlp.jsonl")]
    assert report["stats"]["duplicates"] == report["files"][1]["spans"]


def test_spans_empty_stdin_is_an_error():
    _usage_error(doctor(["spans", "-"], b""), "-: no spans in this file: the file is empty")


def test_spans_stdin_that_is_not_spans():
    result = doctor(["spans", "-"], b"hello\n")
    _usage_error(result, "-: not a span file")
    assert "doctor-spans-" not in result.stderr  # the spool's name never shows


def test_spans_stdin_only_once():
    _usage_error(doctor(["spans", "-", "-"], b""), "`-` (stdin) can be read only once")
