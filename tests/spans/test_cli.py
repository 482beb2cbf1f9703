"""`doctor spans`: output formats and exit codes as a user sees them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT, run_doctor


def test_text_report_is_doctor_style(fixtures):
    result = run_doctor("spans", str(fixtures / "n_plus_one.otlp.jsonl"), str(fixtures / "duplicates.otlp.jsonl"))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("doctor spans: 2 files (otlp-jsonl), 43 spans in 3 traces")
    assert "[✗] OSD601 n-plus-one-queries: 1 pattern" in lines
    assert "[!] OSD603 duplicate-database-spans: 1 pattern" in lines
    assert "[✓] OSD605 pool-wait-gap" in lines
    assert any(line.strip().startswith("fix: load the rows in one query") for line in lines)
    assert lines[-1] == "found issues in 2 checks (2 findings)"
    assert "\x1b[" not in result.stdout  # no colour when not on a terminal


def test_clean_file_exits_zero(fixtures):
    result = run_doctor("spans", str(fixtures / "selectinload.otlp.jsonl"))
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1] == "no issues found"


def test_json_report(fixtures):
    result = run_doctor("spans", "--format", "json", str(fixtures / "pool_wait.otlp.jsonl"))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["version"] == __import__("otel_sqla_doctor").__version__  # the doctor's, as `scan` and `probe`
    assert report["files"] == [{"path": str(fixtures / "pool_wait.otlp.jsonl"), "format": "otlp-jsonl", "spans": 22, "warnings": []}]
    assert [c["code"] for c in report["checks"]] == ["OSD601", "OSD602", "OSD603", "OSD604", "OSD605", "OSD606"]
    (finding,) = report["findings"]
    assert finding["code"] == "OSD605" and finding["name"] == "pool-wait-gap"
    assert set(finding["details"]["distribution"]) == {"requests", "waited", "p50_ms", "p90_ms", "max_ms"}
    assert finding["trace_id"] in finding["trace_ids"]


def test_summary_is_one_line_per_trace_worst_first(fixtures):
    result = run_doctor("spans", "--format", "summary", str(fixtures / "n_plus_one.otlp.jsonl"))
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].split()[1:3] == ["GET", "/authors"] and lines[0].endswith("OSD601")
    assert lines[1].split()[1] == "seed" and lines[1].endswith("ok")
    assert lines[2].startswith("2 of 2 traces shown")


def test_output_and_html_files(fixtures, tmp_path):
    out, html = tmp_path / "report.json", tmp_path / "report.html"
    result = run_doctor("spans", "-f", "json", "-o", str(out), "--html", str(html), str(fixtures / "n_plus_one.jaeger.json"))
    assert result.returncode == 1 and result.stdout == ""
    assert json.loads(out.read_text())["findings"][0]["code"] == "OSD601"
    assert html.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--select", "OSD699", "{f}"], "unknown check 'OSD699'"),
        (["--n-plus-one-threshold", "1", "{f}"], "--n-plus-one-threshold"),
        (["/no/such/file.jsonl"], "no such file: /no/such/file.jsonl"),
        (["{dir}"], "is a directory: give the span files themselves"),
    ],
)
def test_usage_errors_exit_2(fixtures, args, message):
    args = [a.replace("{f}", str(fixtures / "n_plus_one.otlp.jsonl")).replace("{dir}", str(fixtures)) for a in args]
    result = run_doctor("spans", *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_installed_doctor_script(fixtures):
    """The real console script, as registered in pyproject.toml."""
    doctor = shutil.which("doctor", path=os.path.dirname(sys.executable)) or shutil.which("doctor")
    assert doctor, "the package is not installed (pip install -e .)"
    result = subprocess.run([doctor, "spans", str(fixtures / "n_plus_one.console.txt")], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "[✗] OSD601 n-plus-one-queries" in result.stdout
    help_text = subprocess.run([doctor, "trace", "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "--instrument" in help_text
