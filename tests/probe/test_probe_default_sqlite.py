"""`doctor probe` with no DSN: the embedded in-memory SQLite through aiosqlite, over a real engine."""

from __future__ import annotations

import json
import re

import pytest

from probe_helpers import TRACEPARENT_IN_DETAIL

pytestmark = pytest.mark.live

CODES = [f"OSD5{n:02d}" for n in range(1, 11)]


def test_default_probe_passes_and_reads_the_traceparent_back_from_sqlite(invoke):
    run = invoke("--format", "json")

    assert run.exit_code == 0, run.output
    report = run.json()
    assert list(report) == ["version", "target", "scope", "environment", "checks"]  # scope: DSN mode says what it probed
    assert report["environment"]["whose"] == "application"  # this checkout's .venv, where the doctor runs too
    assert report["target"] == "sqlite+aiosqlite://"
    assert [c["code"] for c in report["checks"]] == CODES
    for check in report["checks"]:
        assert set(check) == {"code", "name", "status", "detail", "remediation"}
        assert check["status"] in {"pass", "warn", "fail", "skip"}
        assert (check["remediation"] is None) == (check["status"] in {"pass", "skip"})
    statuses = run.statuses()
    assert all(statuses[code] == "pass" for code in ("OSD501", "OSD502", "OSD503", "OSD504", "OSD505", "OSD507", "OSD509"))
    assert statuses["OSD508"] == "skip" and statuses["OSD510"] == "skip"

    # The traceparent the sqlite3 trace callback saw is the query span's (OSD503 names its id).
    commenter = run.check("OSD506")
    match = re.search(TRACEPARENT_IN_DETAIL, commenter["detail"])
    assert match, commenter["detail"]
    assert "sqlite3 trace callback" in commenter["detail"]
    span_id = re.search(r"span id ([0-9a-f]{16})", run.check("OSD503")["detail"])[1]
    assert match[3] == span_id
    # aiosqlite does not interpolate, so the upstream %%-doubling reaches sqlite: a warning.
    assert commenter["status"] == "warn" and "%%3A" in commenter["detail"]


def test_text_report_has_one_line_per_check_marks_and_a_summary(invoke):
    run = invoke()

    assert run.exit_code == 0
    lines = run.stdout.splitlines()
    check_lines = [line for line in lines if re.match(r"^\[.\] OSD5\d\d ", line)]
    assert [line.split()[1] for line in check_lines] == CODES
    assert any(line.startswith("[✓] OSD503 query-span-emitted: ") for line in check_lines)
    assert any(line.startswith("[!] OSD506 commenter-reached-server: ") for line in check_lines)
    assert any(line.startswith("[-] OSD510 exporter-reachable: skipped") for line in check_lines)
    # Remediation only under the non-passing check.
    fix_lines = [i for i, line in enumerate(lines) if line.strip().startswith("fix:")]
    assert [lines[i - 1].split()[1] for i in fix_lines] == ["OSD506"]
    assert lines[-1].startswith("found issues in 1 check (")
    assert "\x1b[" not in run.stdout  # NO_COLOR


def test_output_file_gets_the_report_and_stdout_stays_empty(invoke, tmp_path):
    target = tmp_path / "probe.json"

    run = invoke("--format", "json", "--output", str(target))

    assert run.exit_code == 0
    assert run.stdout == ""
    assert json.loads(target.read_text())["checks"][0]["code"] == "OSD501"
    assert [p.name for p in tmp_path.iterdir()] == ["probe.json"]  # no temporary left behind


def test_sqlite_file_is_opened_read_only_and_never_created(invoke, tmp_path):
    missing = tmp_path / "missing.db"

    run = invoke("--format", "json", f"sqlite+aiosqlite:///{missing}")

    assert run.exit_code == 1
    assert run.check("OSD501")["status"] == "fail"
    assert "unable to open database file" in run.check("OSD501")["detail"]
    assert not missing.exists()


def test_sqlite_file_path_in_the_span_name_is_a_warning(invoke, tmp_path):
    import sqlite3

    database = tmp_path / "tenant-42.db"
    sqlite3.connect(database).close()

    run = invoke("--format", "json", f"sqlite+aiosqlite:///{database}")

    attributes = run.check("OSD505")
    assert attributes["status"] == "warn"
    assert str(database) in attributes["detail"]
    assert run.exit_code == 0


def test_unwritable_output_is_a_usage_error(invoke, tmp_path):
    from otel_sqla_doctor.errors import UsageError

    with pytest.raises(UsageError, match="cannot write the report to"):
        invoke("--output", str(tmp_path / "no-such-dir" / "probe.txt"))
