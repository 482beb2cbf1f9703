"""The same flags, with the same meaning, on every command where they make sense (issue 16, item 13):
-f/--format, -o/--output, -q/--quiet, -v/--verbose, --exit-zero; and their siblings (items 10, 15):
--exit-zero never hides usage errors, -q never hides that a run checked nothing, `explain`
renders Markdown on a terminal only."""

from __future__ import annotations

import json
import os
import re
import stat
import sys

import pytest

from cli_support import REPO, run_cli, run_doctor

SPANS = REPO / "tests" / "spans" / "fixtures"
N_PLUS_ONE = SPANS / "n_plus_one.otlp.jsonl"
CLEAN_SPANS = SPANS / "selectinload.otlp.jsonl"
APP = REPO / "sample_projects" / "n_plus_one_app" / "app.py"
REFUSED = "postgresql+asyncpg://app@127.0.0.1:1/app"  # nothing listens on port 1: OSD501 fails

ALL_FIVE = ["-f, --format", "-o, --output", "-q, --quiet", "-v, --verbose", "--exit-zero"]
FLAGS = {
    "scan": ALL_FIVE,
    "probe": ALL_FIVE,
    "spans": ALL_FIVE,
    "trace": ALL_FIVE,
    "rules": ["-f, --format", "-o, --output"],
    "explain": ["-f, --format", "-o, --output"],
}
WIRING = (
    "from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor\n"
    "from sqlalchemy.ext.asyncio import create_async_engine\n"
    "engine = create_async_engine('postgresql+asyncpg://u@h/db')\n"
    "SQLAlchemyInstrumentor().instrument(engine=engine)\n"
)


def _project(tmp_path, files: dict[str, str]):
    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _usage_error(result, expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("doctor: error: ") and expected in result.stderr, result.stderr


# -- every command lists its flags -------------------------------------------------------------
@pytest.mark.parametrize("command", sorted(FLAGS))
def test_every_command_has_the_shared_flags(command):
    result = run_cli([command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in FLAGS[command]:
        assert flag in result.stdout, (command, flag)


@pytest.mark.parametrize("command", ["scan", "probe", "spans"])
def test_quiet_and_verbose_together_are_a_usage_error(command, tmp_path):
    args = {"scan": ["scan", "."], "probe": ["probe"], "spans": ["spans", str(CLEAN_SPANS)]}[command]
    _usage_error(run_doctor([*args, "-q", "-v"], cwd=tmp_path), "--quiet and --verbose contradict each other")


# -- scan ----------------------------------------------------------------------------------------
def test_scan_exit_zero_with_a_file_that_cannot_be_parsed(tmp_path):
    _project(tmp_path, {"app.py": "import sqlalchemy\nx = (\n"})
    failing = run_doctor(["scan", ".", "--no-cache"], cwd=tmp_path)
    assert failing.returncode == 1
    assert "app.py: error: syntax error" in failing.stdout
    assert "No problems found (" not in failing.stdout  # never a green line over an unread file
    zero = run_doctor(["scan", ".", "--no-cache", "--exit-zero"], cwd=tmp_path)
    assert zero.returncode == 0
    assert zero.stdout == failing.stdout  # the error is still reported


def test_scan_exit_zero_keeps_usage_errors(tmp_path):
    _usage_error(run_doctor(["scan", "no-such-dir", "--exit-zero"], cwd=tmp_path), "no such file or directory: no-such-dir")
    _usage_error(run_doctor(["scan", ".", "--exit-zero", "--select", ""], cwd=tmp_path), "no rule is selected")


def test_scan_quiet_still_says_it_checked_nothing(tmp_path):
    _project(tmp_path, {"notes.txt": "no python here\n"})
    result = run_doctor(["scan", ".", "--no-cache", "-q"], cwd=tmp_path)
    assert result.returncode == 1
    assert "doctor: no Python files were scanned" in result.stderr
    assert run_doctor(["scan", ".", "--no-cache", "-q", "--exit-zero"], cwd=tmp_path).returncode == 0


def test_scan_quiet_drops_hints_and_keeps_findings(tmp_path):
    _project(tmp_path, {"app.py": WIRING})
    loud = run_doctor(["scan", ".", "--no-cache"], cwd=tmp_path)
    quiet = run_doctor(["scan", ".", "--no-cache", "-q"], cwd=tmp_path)
    assert loud.returncode == quiet.returncode == 1
    assert "hint:" in loud.stdout and "hint:" not in quiet.stdout
    assert "OSD101" in quiet.stdout


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_scan_fix_that_cannot_write_is_exit_1_and_exit_zero_makes_it_0(tmp_path):
    _project(tmp_path, {"app.py": WIRING})
    app = tmp_path / "app.py"
    app.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # 0444: never rewritten
    try:
        failing = run_doctor(["scan", ".", "--no-cache", "--fix"], cwd=tmp_path)
        zero = run_doctor(["scan", ".", "--no-cache", "--fix", "--exit-zero"], cwd=tmp_path)
    finally:
        app.chmod(0o644)
    assert failing.returncode == 1 and zero.returncode == 0
    for result in (failing, zero):
        assert "doctor: app.py: " in result.stderr and "read-only" in result.stderr, result.stderr
    assert app.read_text() == WIRING


# -- spans ---------------------------------------------------------------------------------------
def test_spans_quiet_shows_only_findings_and_the_verdict():
    loud = run_doctor(["spans", str(N_PLUS_ONE)])
    quiet = run_doctor(["spans", "-q", str(N_PLUS_ONE)])
    assert loud.returncode == quiet.returncode == 1
    assert loud.stdout.startswith("doctor spans: 1 file")
    lines = quiet.stdout.splitlines()
    assert lines[0].startswith("[✗] OSD601 n-plus-one-queries: 1 pattern")
    assert lines[-1] == "found issues in 1 check (1 finding)"
    assert "[✓]" not in quiet.stdout and "fix:" not in quiet.stdout and "doctor spans:" not in quiet.stdout


def test_spans_exit_zero():
    result = run_doctor(["spans", "--exit-zero", str(N_PLUS_ONE)])
    assert result.returncode == 0
    assert "[✗] OSD601" in result.stdout


def test_spans_exit_zero_keeps_usage_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    _usage_error(run_doctor(["spans", "--exit-zero", str(empty)]), "no spans in this file")


# -- trace ---------------------------------------------------------------------------------------
def test_trace_exit_zero_with_findings():
    result = run_doctor(["trace", "--instrument", "--exit-zero", "-q", "--", sys.executable, str(APP)], timeout=180)
    assert result.returncode == 0, result.stderr
    assert "[✗] OSD601 n-plus-one-queries" in result.stderr
    assert "doctor trace:" not in result.stderr and "fix:" not in result.stderr


def test_trace_exit_zero_passes_a_failing_command_through():
    result = run_doctor(["trace", "--exit-zero", "-q", "--", sys.executable, "-c", "import sys; sys.exit(3)"])
    assert result.returncode == 3
    # -q keeps the verdict: nothing was checked, and why the run is no success.
    assert "the command failed with exit code 3" in result.stderr
    assert "nothing was checked: no spans" in result.stderr


# -- probe ---------------------------------------------------------------------------------------
def test_probe_quiet_has_no_banner_and_keeps_the_verdict():
    result = run_doctor(["probe", "-q"])
    assert result.returncode == 0, result.stderr
    assert "doctor probe" not in result.stdout and "python:" not in result.stdout and "packages:" not in result.stdout
    assert "[✓]" not in result.stdout and "fix:" not in result.stdout
    assert re.search(r"^(no issues found|found issues in \d+ checks?) \(\d+ passed", result.stdout.splitlines()[-1])


def test_probe_exit_zero_when_a_check_fails():
    failing = run_doctor(["probe", "-q", "--timeout", "2", REFUSED])
    assert failing.returncode == 1, failing.stderr
    assert "[✗] OSD501 database-connect" in failing.stdout
    zero = run_doctor(["probe", "-q", "--timeout", "2", "--exit-zero", REFUSED])
    assert zero.returncode == 0
    assert "[✗] OSD501 database-connect" in zero.stdout


def test_probe_exit_zero_keeps_usage_errors():
    _usage_error(run_doctor(["probe", "--exit-zero", "--timeout", "inf"]), "--timeout")


def test_probe_verbose_says_where_the_checks_ran():
    result = run_doctor(["probe", "-v", "--select", "OSD501"])
    assert result.returncode == 0, result.stderr
    assert re.search(r"^doctor: probe: checks ran in \S+; \d+\.\d\ds$", result.stderr, re.MULTILINE), result.stderr


def test_probe_checks_its_output_path_before_probing(tmp_path):
    _usage_error(run_doctor(["probe", "-o", str(tmp_path / "missing" / "report.txt")]), "does not exist")


# -- rules and explain ---------------------------------------------------------------------------
def test_rules_json_is_the_shared_envelope():
    from otel_sqla_doctor import __version__

    result = run_doctor(["rules", "-f", "json"])
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert list(data) == ["version", "rules"]
    assert data["version"] == __version__ and isinstance(data["version"], str)
    codes = [row["code"] for row in data["rules"]]
    assert "OSD101" in codes and "OSD501" in codes and "OSD601" in codes
    assert set(data["rules"][0]) == {"code", "name", "family", "severity", "fix", "default", "summary"}


@pytest.mark.parametrize("args", [["rules"], ["rules", "-f", "json"], ["explain", "OSD301"], ["explain", "OSD301", "-f", "json"]])
def test_rules_and_explain_write_to_output(tmp_path, args):
    target = tmp_path / "out.txt"
    piped = run_doctor(args)
    written = run_doctor([*args, "-o", str(target)])
    assert written.returncode == 0 and written.stdout == "" and written.stderr == ""
    assert target.read_text() == piped.stdout


@pytest.mark.parametrize("command", [["rules"], ["explain", "OSD301"]])
def test_rules_and_explain_refuse_a_bad_output_path(tmp_path, command):
    _usage_error(run_doctor([*command, "-o", str(tmp_path / "missing" / "x.txt")]), "does not exist")


def test_explain_prints_plain_markdown_into_a_pipe():
    result = run_doctor(["explain", "OSD301"])
    assert result.returncode == 0
    assert result.stdout.startswith("OSD301 interpolated-sql")
    assert "## What it does" in result.stdout and "\x1b[" not in result.stdout


def _on_a_terminal(args: list[str], env: dict) -> str:
    import pty
    import subprocess

    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "otel_sqla_doctor", *args],
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0, process.stderr.read()
        process.stderr.close()
    finally:
        os.close(leader)
    return b"".join(chunks).decode("utf-8", errors="replace")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_explain_renders_markdown_on_a_terminal():
    pytest.importorskip("rich")
    shown = _on_a_terminal(["explain", "OSD301"], {"TERM": "xterm", "COLUMNS": "100", "NO_COLOR": ""})
    assert "OSD301 interpolated-sql" in shown
    assert "## What it does" not in shown  # the heading is rendered, not printed as Markdown
    assert "What it does" in shown
    assert "=" * 20 not in shown  # nor the underline of the title


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_explain_is_plain_on_a_dumb_terminal():
    shown = _on_a_terminal(["explain", "OSD301"], {"TERM": "dumb"})
    assert "## What it does" in shown


# -- siblings of items 10 and 14 -------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["spans", "--ignore", "OSD6", str(N_PLUS_ONE)],
        ["spans", "--select", "OSD601", "--ignore", "n-plus-one-queries", str(N_PLUS_ONE)],
        ["trace", "--ignore", "OSD6", "--", sys.executable, "-c", "print('the command must not run')"],
    ],
)
def test_a_span_check_selection_that_leaves_nothing_is_a_usage_error(args):
    result = run_doctor(args)
    _usage_error(result, "no check is selected (see --select and --ignore): nothing would be checked")
    assert "the command must not run" not in result.stdout


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["-f", "json"], "--statistics counts findings in the text report: it cannot be combined with --format json"),
        (["-f", "sarif"], "it cannot be combined with --format sarif"),
        (["--diff"], "--statistics counts findings in the report, and --diff prints no report"),
    ],
)
def test_statistics_where_it_would_be_ignored_is_a_usage_error(tmp_path, extra, expected):
    _project(tmp_path, {"app.py": WIRING})
    _usage_error(run_doctor(["scan", ".", "--no-cache", "--statistics", *extra], cwd=tmp_path), expected)
