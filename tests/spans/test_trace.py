"""`doctor trace -- COMMAND`: the sample app's N+1 found with the right count, the fix found clean,
and the command's own output and exit code passed through."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import APP, ROOT, run_doctor

EXPECTED = json.loads((APP.parent / "expected.json").read_text())


def _findings(stderr: str) -> list[dict]:
    return json.loads(stderr)["findings"]


def test_sample_app_n_plus_one_has_the_right_count():
    expected = EXPECTED["app.py"]
    result = run_doctor("trace", "--instrument", "--format", "json", "--", sys.executable, str(APP))
    assert result.returncode == expected["exit_code"], result.stderr
    findings = _findings(result.stderr)
    assert [(f["code"], f["details"]["count"], f["details"]["parent"]) for f in findings] == [
        (e["code"], e["count"], e["parent"]) for e in expected["findings"]
    ]
    assert expected["findings"][0]["table"] in findings[0]["details"]["statement"]


def test_sample_app_fixed_with_selectinload_is_clean():
    expected = EXPECTED["app.py --fixed"]
    result = run_doctor("trace", "--instrument", "--format", "json", "--", sys.executable, str(APP), "--fixed")
    assert result.returncode == expected["exit_code"], result.stderr
    report = json.loads(result.stderr)
    assert report["findings"] == []
    assert report["stats"]["db_spans"] > 0  # it was traced, and nothing was wrong


def test_text_report_after_the_commands_own_output():
    direct = subprocess.run([sys.executable, str(APP)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    result = run_doctor("trace", "--instrument", "--", sys.executable, str(APP))
    assert result.stdout == direct.stdout  # untouched, byte for byte
    assert "[✗] OSD601 n-plus-one-queries" in result.stderr
    assert "12 × the same statement under 'GET /authors'" in result.stderr
    assert "found issues in 1 check" in result.stderr


def test_without_instrument_the_app_is_observed_as_configured():
    # the sample app installs no TracerProvider: as configured, it traces nothing
    result = run_doctor("trace", "--", sys.executable, str(APP))
    assert result.returncode == 0
    assert "no spans were recorded: the program never created an SDK TracerProvider" in result.stderr
    assert "--instrument" in result.stderr


def test_exit_code_stdin_and_stderr_pass_through():
    program = "import sys; data = sys.stdin.read(); print(data.upper()); print('oops', file=sys.stderr); sys.exit(3)"
    result = run_doctor("trace", "--", sys.executable, "-c", program, input="hello")
    assert result.returncode == 3
    assert result.stdout == "HELLO\n"
    assert result.stderr.startswith("oops\n")


def test_a_failing_command_wins_over_findings(tmp_path):
    script = tmp_path / "fail_after.py"
    script.write_text(f"import runpy, sys\nsys.argv = [{str(APP)!r}]\nrunpy.run_path({str(APP)!r}, run_name='__main__')\nsys.exit(5)\n")
    result = run_doctor("trace", "--instrument", "--", sys.executable, str(script))
    assert result.returncode == 5
    assert "OSD601" in result.stderr


def test_save_spans_then_analyse_them_again(tmp_path):
    saved = tmp_path / "run.jsonl"
    html = tmp_path / "run.html"
    result = run_doctor("trace", "--instrument", "--save-spans", str(saved), "--html", str(html), "--", sys.executable, str(APP))
    assert result.returncode == 1
    again = run_doctor("spans", "--format", "json", str(saved))
    assert again.returncode == 1
    assert [(f["code"], f["details"]["count"]) for f in json.loads(again.stdout)["findings"]] == [("OSD601", 12)]
    assert "OSD601" in html.read_text()


def test_usage_errors():
    assert run_doctor("trace").returncode == 2
    missing = run_doctor("trace", "--", "no-such-command-for-doctor")
    assert missing.returncode == 127  # as a shell exits for a command that does not exist
    assert missing.stderr.strip() == "doctor: error: command not found: no-such-command-for-doctor"


LAUNCHED_APP = '''
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import create_engine, text

trace.set_tracer_provider(TracerProvider())
engine = create_engine("sqlite://")  # instrumented by opentelemetry-instrument, not by the app
tracer = trace.get_tracer("app")
with engine.connect() as conn:
    conn.execute(text("CREATE TABLE books (id INTEGER PRIMARY KEY, author_id INTEGER)"))
    with tracer.start_as_current_span("GET /authors"):
        for author_id in range(8):
            conn.execute(text("SELECT id FROM books WHERE author_id = :a"), {"a": author_id})
print("done")
'''


def test_programs_run_by_opentelemetry_instrument_are_recorded(tmp_path):
    """`opentelemetry-instrument` puts its own sitecustomize first, hiding the doctor's; the doctor
    then records through an `opentelemetry_pre_instrument` entry point that the launcher runs."""
    from pathlib import Path

    launcher = Path(sys.executable).parent / "opentelemetry-instrument"
    assert launcher.exists(), "opentelemetry-instrumentation provides the launcher"
    app = tmp_path / "app.py"
    app.write_text(LAUNCHED_APP)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    result = run_doctor("trace", "--format", "json", "--", str(launcher), sys.executable, str(app), env=env)
    assert result.stdout == "done\n"
    report = json.loads(result.stderr[result.stderr.index("{"):])
    by_code = {f["code"]: f for f in report["findings"]}
    assert by_code["OSD601"]["details"]["count"] == 8, report["findings"]
    assert by_code["OSD601"]["details"]["parent"] == "GET /authors"
