"""`doctor scan` through the real CLI: exit codes, formats, files, fixes, errors."""

from __future__ import annotations

import json
import subprocess
import sys

from cli_support import copy_fixture, run_cli, run_doctor


def test_findings_exit_1_with_location_message_and_hint(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    result = run_doctor(["scan", ".", "--select", "OSD101", "--no-cache"], cwd=project)
    assert result.returncode == 1
    assert "app/telemetry.py:8:52: OSD101 [async-engine-passed-to-instrumentor]" in result.stdout
    assert "hint: pass the engine's synchronous core" in result.stdout
    assert "1 problem in 1 file" in result.stdout
    assert "Traceback" not in result.stderr


def test_clean_project_exits_0(tmp_path):
    (tmp_path / "app.py").write_text("print('hello')\n")
    result = run_doctor(["scan", "."], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No problems found (1 file scanned)." in result.stdout


def test_exit_zero_flag(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    assert run_cli(["scan", ".", "--select", "OSD101", "--exit-zero"], cwd=project).exit_code == 0


def test_json_shape_is_exactly_the_documented_one(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    result = run_cli(["scan", ".", "--select", "OSD101", "--format", "json"], cwd=project)
    data = json.loads(result.stdout)
    assert set(data) == {"version", "findings", "files_scanned", "errors"}
    assert data["files_scanned"] == 4
    (finding,) = data["findings"]
    assert set(finding) == {"code", "name", "severity", "path", "line", "column", "end_line", "end_column", "message", "fix"}
    assert finding["path"] == "app/telemetry.py" and finding["line"] == 8
    assert finding["fix"] == "engine.sync_engine"


def test_paths_are_relative_to_the_current_directory(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    data = json.loads(run_cli(["scan", "broken_wiring", "--select", "OSD101", "--format", "json"], cwd=tmp_path).stdout)
    assert [f["path"] for f in data["findings"]] == ["broken_wiring/app/telemetry.py"]
    assert project.exists()


def test_suppression_on_first_line_of_multiline_statement(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    data = json.loads(run_cli(["scan", ".", "--select", "OSD101", "--format", "json"], cwd=project).stdout)
    assert all(f["path"] != "app/silenced.py" for f in data["findings"])
    # Without the comment the same call is reported.
    silenced = project / "app" / "silenced.py"
    silenced.write_text(silenced.read_text().replace("  # doctor: ignore[OSD101]", ""))
    data = json.loads(run_cli(["scan", ".", "--select", "OSD101", "--format", "json"], cwd=project).stdout)
    assert any(f["path"] == "app/silenced.py" for f in data["findings"])


def test_bare_suppression_and_unused_report(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    telemetry = project / "app" / "telemetry.py"
    telemetry.write_text(telemetry.read_text().replace("instrument(engine=engine)", "instrument(engine=engine)  # doctor: ignore") + "X = 1  # doctor: ignore[OSD301]\n")
    result = run_cli(["scan", ".", "--select", "OSD101", "--report-unused-ignores"], cwd=project)
    assert "app/telemetry.py:11:8: unused suppression `# doctor: ignore[OSD301]` silences nothing" in result.stdout
    assert "OSD101 [" not in result.stdout
    assert result.exit_code == 1
    assert run_cli(["scan", ".", "--select", "OSD101"], cwd=project).exit_code == 0


def test_diff_writes_nothing_and_fix_applies(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    telemetry = project / "app" / "telemetry.py"
    before = telemetry.read_text()
    result = run_doctor(["scan", ".", "--select", "OSD101", "--diff"], cwd=project)
    assert result.returncode == 1
    assert "-        SQLAlchemyInstrumentor().instrument(engine=engine)" in result.stdout
    assert "+        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)" in result.stdout
    assert telemetry.read_text() == before
    result = run_doctor(["scan", ".", "--select", "OSD101", "--fix"], cwd=project)
    assert result.returncode == 0, result.stdout
    assert "Fixed 1 problem in 1 file." in result.stdout
    assert "instrument(engine=engine.sync_engine)" in telemetry.read_text()
    # A second --fix changes nothing.
    after = telemetry.read_text()
    assert run_doctor(["scan", ".", "--select", "OSD101", "--fix"], cwd=project).returncode == 0
    assert telemetry.read_text() == after


def test_output_file(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    out = tmp_path / "report.json"
    result = run_cli(["scan", ".", "--select", "OSD101", "--format", "json", "--output", str(out)], cwd=project)
    assert result.exit_code == 1 and result.stdout == ""
    assert json.loads(out.read_text())["findings"][0]["code"] == "OSD101"


def test_statistics(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    result = run_cli(["scan", ".", "--select", "OSD101", "--statistics"], cwd=project)
    assert "    1  OSD101  async-engine-passed-to-instrumentor" in result.stdout


def test_usage_errors_are_one_line_exit_2(tmp_path):
    for args in (["scan", "missing-dir"], ["scan", "--select", "NOPE"], ["scan", "--format", "xml"], ["explain", "OSD999"]):
        result = run_doctor(args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().count("\n") == 0, result.stderr


def test_unparsable_and_undecodable_files_are_reported_and_scan_goes_on(tmp_path):
    copy_fixture("broken_wiring", tmp_path)
    project = tmp_path / "broken_wiring"
    # Files that mention the stack are parsed; a broken one is an error entry, not a crash.
    (project / "app" / "broken.py").write_text("import sqlalchemy\ndef oops(:\n    pass\n")
    (project / "app" / "latin1.py").write_bytes(b"import sqlalchemy\nname = '\xe9t\xe9'\n")
    data = json.loads(run_doctor(["scan", ".", "--select", "OSD101", "--format", "json"], cwd=project).stdout)
    errors = {e["path"]: e["message"] for e in data["errors"]}
    assert errors["app/broken.py"].startswith("syntax error at line 2")
    assert "cannot decode" in errors["app/latin1.py"]
    assert [f["code"] for f in data["findings"]] == ["OSD101"]


def test_version_and_help_do_not_import_heavy_packages():
    result = run_doctor(["--version"])
    assert result.returncode == 0 and result.stdout.startswith("otel-sqla-doctor ")
    probe = "import sys, otel_sqla_doctor.cli as c; c._register(); heavy=[m for m in ('sqlalchemy','opentelemetry','libcst') if m in sys.modules]; print(heavy)"
    import subprocess, sys

    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_python_dash_m_and_console_script_agree(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    module = run_doctor(["scan", ".", "--select", "OSD101", "--format", "json"], cwd=project)
    import shutil, subprocess

    exe = shutil.which("otel-sqla-doctor")
    if exe:
        script = subprocess.run([exe, "scan", ".", "--select", "OSD101", "--format", "json"], cwd=project, capture_output=True, text=True)
        assert json.loads(script.stdout)["findings"] == json.loads(module.stdout)["findings"]


def test_only_given_files_are_reported_but_names_resolve_across_project(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    # telemetry.py imports the engine from db.py; passing only telemetry.py must still find it.
    data = json.loads(run_cli(["scan", "app/telemetry.py", "--select", "OSD101", "--format", "json"], cwd=project).stdout)
    assert [(f["path"], f["code"]) for f in data["findings"]] == [("app/telemetry.py", "OSD101")]
    data = json.loads(run_cli(["scan", "app/db.py", "--select", "OSD101", "--format", "json"], cwd=project).stdout)
    assert data["findings"] == []


def test_a_file_that_cannot_be_parsed_makes_the_exit_code_non_zero(tmp_path):
    (tmp_path / "broken.py").write_text("import sqlalchemy\ndef oops(:\n    pass\n")
    result = run_doctor(["scan", "."], cwd=tmp_path)
    assert result.returncode == 1
    assert "broken.py: error: syntax error at line 2" in result.stdout
    assert "Traceback" not in result.stderr


def test_warm_scan_imports_neither_libcst_nor_rules(tmp_path):
    """Nothing changed since the last scan: the stored findings answer, so LibCST (a third of a
    warm scan's time) is never imported, even when unused `# doctor: ignore[...]` comments make
    the scan check their codes against the rule catalogue."""
    project = tmp_path / "svc"
    (project / "app").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "svc"\n')
    (project / "app" / "__init__.py").write_text("")
    (project / "app" / "db.py").write_text(
        "from sqlalchemy.ext.asyncio import create_async_engine\n\n"
        'engine = create_async_engine("sqlite+aiosqlite://")  # doctor: ignore[OSD104]\n'
    )
    run_doctor(["scan", ".", "--format", "json"], cwd=project)  # fills the cache
    probe = (
        "import sys, runpy; sys.argv = ['doctor', 'scan', '.', '--format', 'json', '-o', 'report.json']\n"
        "try:\n    runpy.run_module('otel_sqla_doctor', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print([m for m in sys.modules if m == 'libcst' or m.startswith('otel_sqla_doctor.static.rules.')])"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr
