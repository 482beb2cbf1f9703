"""One consistent CLI: plain metavars, documented exit codes, and flags that would be ignored
refused as usage errors (issue 16, items 13 and 14)."""

from __future__ import annotations

import re

import pytest

from cli_support import run_cli, run_doctor

COMMANDS = ["scan", "probe", "spans", "trace", "rules", "explain"]


def _help(command: str) -> str:
    result = run_cli([command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def _one_error_line(result, expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("doctor: error: ") and expected in lines[0], lines[0]
    assert result.stdout == ""


# -- help text ---------------------------------------------------------------------------------
@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_python_type_metavars(command):
    shown = _help(command)
    assert not re.search(r"<[^>\n]*>", shown), shown  # no `<list[str]>`, `<int range>`, `<path>`, ...


def test_scan_help_uses_plain_metavars():
    shown = _help("scan")
    assert "Usage: doctor scan [OPTIONS] [PATH]..." in shown
    for option in ("--select CODES", "--extend-select CODES", "--ignore CODES", "--config PATH", "--output PATH", "--jobs N", "--format FORMAT"):
        assert option in shown, option


def test_scan_help_lists_the_exit_codes():
    shown = " ".join(_help("scan").split())
    assert "Exit codes: 0 no problems found" in shown
    for code in ("1 problems found", "2 usage or configuration error", "130 interrupted"):
        assert code in shown, code


def test_trace_help_shows_the_command_form():
    shown = _help("trace")
    assert "Usage: doctor trace [OPTIONS] -- COMMAND [ARGS]..." in shown
    assert "127 the command was not found" in " ".join(shown.split())


def test_trace_of_a_missing_command_exits_127_with_one_line():
    result = run_doctor(["trace", "--", "no-such-command-for-doctor-16"])
    assert result.returncode == 127
    assert result.stderr.strip() == "doctor: error: command not found: no-such-command-for-doctor-16"
    assert "Traceback" not in result.stderr


# -- flags that would be ignored ---------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "sarif", "github"])
def test_diff_with_a_report_format_is_a_usage_error(tmp_path, fmt):
    (tmp_path / "app.py").write_text("x = 1\n")
    result = run_doctor(["scan", ".", "--no-cache", "--diff", "-f", fmt], cwd=tmp_path)
    _one_error_line(result, f"--diff prints a unified diff, not a report: it cannot be combined with --format {fmt}")


def test_diff_with_text_format_is_fine(tmp_path):
    (tmp_path / "app.py").write_text("x = 1\n")
    result = run_doctor(["scan", ".", "--no-cache", "--diff", "-f", "text"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_unsafe_fixes_alone_is_a_usage_error(tmp_path):
    (tmp_path / "app.py").write_text("x = 1\n")
    result = run_doctor(["scan", ".", "--no-cache", "--unsafe-fixes"], cwd=tmp_path)
    _one_error_line(result, "--unsafe-fixes only applies with --fix or --diff")


@pytest.mark.parametrize("with_", ["--fix", "--diff"])
def test_unsafe_fixes_with_fix_or_diff_is_fine(tmp_path, with_):
    (tmp_path / "app.py").write_text("x = 1\n")
    result = run_doctor(["scan", ".", "--no-cache", "--unsafe-fixes", with_], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr


# -- unknown codes in suppression comments -----------------------------------------------------
def test_unknown_code_in_an_ignore_comment_is_warned_about(tmp_path):
    (tmp_path / "app.py").write_text("x = 1  # doctor: ignore[OSD999, OSD101]\ny = 2  # doctor: ignore\n")
    result = run_doctor(["scan", ".", "--no-cache"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("doctor: warning:")]
    assert warnings == ["doctor: warning: app.py:1:8: unknown rule code 'OSD999' in `# doctor: ignore[...]` (see `doctor rules`)"]


def test_known_codes_in_ignore_comments_give_no_warning(tmp_path):
    (tmp_path / "app.py").write_text("x = 1  # doctor: ignore[OSD101]\n")
    result = run_doctor(["scan", ".", "--no-cache"], cwd=tmp_path)
    assert result.returncode == 0
    assert "warning" not in result.stderr


def test_quiet_silences_the_unknown_code_warning(tmp_path):
    (tmp_path / "app.py").write_text("x = 1  # doctor: ignore[OSD999]\n")
    result = run_doctor(["scan", ".", "--no-cache", "-q"], cwd=tmp_path)
    assert result.returncode == 0
    assert "warning" not in result.stderr


# -- the same flags and the same JSON envelope across commands ---------------------------------
def _version() -> str:
    from otel_sqla_doctor import __version__

    return __version__


def test_json_envelopes_share_the_doctor_version_string(tmp_path):
    import json

    from cli_support import REPO

    (tmp_path / "app.py").write_text("x = 1\n")
    scan = run_doctor(["scan", ".", "--no-cache", "-f", "json"], cwd=tmp_path)
    probe = run_doctor(["probe", "-f", "json"], cwd=tmp_path)
    spans_file = REPO / "tests" / "spans" / "fixtures" / "selectinload.otlp.jsonl"
    spans = run_doctor(["spans", "-f", "json", str(spans_file)], cwd=tmp_path)
    rules = run_doctor(["rules", "-f", "json"], cwd=tmp_path)
    explain = run_doctor(["explain", "OSD601", "-f", "json"], cwd=tmp_path)
    for result in (scan, probe, spans, rules, explain):
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["version"] == _version() and isinstance(data["version"], str)


def test_explain_format_json():
    import json

    result = run_cli(["explain", "interpolated-sql", "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["version"] == _version()
    assert (data["code"], data["name"], data["family"]) == ("OSD301", "interpolated-sql", "sql-text")
    assert data["explanation"].startswith("OSD301 interpolated-sql")


def test_explain_unknown_format_is_a_usage_error():
    _one_error_line(run_doctor(["explain", "OSD301", "-f", "yaml"]), "--format: expected text or json, got 'yaml'")


def test_probe_select_reports_only_the_selected_checks():
    import json

    result = run_doctor(["probe", "-f", "json", "--select", "OSD503,query-span-parented"])
    assert result.returncode == 0, result.stderr
    assert [c["code"] for c in json.loads(result.stdout)["checks"]] == ["OSD503", "OSD504"]


@pytest.mark.parametrize("selector", ["OSD301", "OSD999", "no-such-check"])
def test_probe_select_of_an_unknown_check_is_a_usage_error(selector):
    result = run_doctor(["probe", "--select", selector])
    _one_error_line(result, f"--select: {selector!r} is not a check of the probe (its checks are OSD501-OSD510")
