"""Issue 16, hostile input: bad configuration, bad span files, a full or non-UTF-8 stdout, bad
probe options, and runs that checked nothing. Every test runs the real CLI
(`python -m otel_sqla_doctor`) on real files (and real servers where a driver is involved) and
asserts what a user sees: one clear line on stderr, the exit code, never a traceback or
`internal error`.

Items:
6. One line and exit 2 (never "internal error ... please report this") for: a `[tool]` table of
   the wrong type and `[[tool.otel-sqla-doctor]]`; span files with fields of the wrong type or
   100,000-deep nesting; a missing `--save-spans` directory; stdout on a full disk; a stdout that
   cannot encode the marks (ASCII marks instead).
9. `--timeout 1e9/inf/nan/-1` are usage errors; `?sslmode=` on asyncpg and an unknown `charset`
   on MariaDB are one clear line, not a driver error.
10. An empty span file is an error, not six green checks; `doctor trace` around a command that
    crashed is not all ✓.
11. Spans read twice (the same file given twice, overlapping rotated files) are counted once.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from cli_support import REPO

SPAN_FIXTURES = REPO / "tests" / "spans" / "fixtures"
N_PLUS_ONE = SPAN_FIXTURES / "n_plus_one.otlp.jsonl"
CLEAN_APP = "import sqlalchemy\n"


def _env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no OpenTelemetry variables, no virtualenv choice."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    env.update(NO_COLOR="1", **extra)
    return env


def _doctor(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120, encoding: str = "utf-8"):
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "otel_sqla_doctor", *args], cwd=cwd or REPO, env=env or _env(), capture_output=True,
        encoding=encoding, timeout=timeout,
    )


def assert_one_line_error(run, *fragments: str, code: int = 2) -> str:
    """Exit `code`, one line on stderr that starts with `doctor: error: `, no traceback."""
    lines = run.stderr.strip().splitlines()
    assert run.returncode == code, (run.returncode, run.stderr[-3000:])
    assert len(lines) == 1, run.stderr[-3000:]
    assert lines[0].startswith("doctor: error: "), lines[0]
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# --- 6. configuration of the wrong type -----------------------------------------------------------


@pytest.mark.parametrize(
    ("pyproject", "fragment"),
    [
        ("tool = 3\n", "`tool` must be a table"),
        ("tool = ['x']\n", "`tool` must be a table"),
        ("[[tool.otel-sqla-doctor]]\nselect = ['OSD1']\n", "[[tool.otel-sqla-doctor]] is an array of tables; write one table"),
        ("[tool]\notel-sqla-doctor = 'OSD1'\n", "tool.otel-sqla-doctor must be a table"),
        ("[tool.otel-sqla-doctor]\nroot = 'yes'\n", "root: expected true or false"),
    ],
    ids=["tool-number", "tool-array", "array-of-tables", "table-is-a-string", "root-not-boolean"],
)
def test_a_tool_table_of_the_wrong_type_is_one_line_naming_the_file(tmp_path, pyproject, fragment):
    (tmp_path / "pyproject.toml").write_text(pyproject)
    (tmp_path / "app.py").write_text(CLEAN_APP)

    run = _doctor("scan", str(tmp_path))

    assert_one_line_error(run, str(tmp_path / "pyproject.toml"), fragment)
    assert run.stdout == ""


# --- 6. span files with fields of the wrong type, or nested 100,000 deep --------------------------


def _otlp_span(trace: str, span: str, **fields) -> dict:
    raw = {"traceId": trace, "spanId": span, "name": "SELECT", "kind": 3, "startTimeUnixNano": "1000", "endTimeUnixNano": "2000"}
    raw.update(fields)
    return raw


def _otlp_line(*spans: dict) -> str:
    return json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "s"}, "spans": list(spans)}]}]}) + "\n"


GOOD_TRACE = "0" * 31 + "1"
BAD_FIELDS = [
    {"traceId": 5},
    {"spanId": ["a"]},
    {"startTimeUnixNano": "yesterday"},
    {"endTimeUnixNano": {"n": 1}},
    {"kind": 2.5},
    {"name": {"n": "x"}},
    {"attributes": "db.system=postgresql"},
    {"attributes": [{"key": 7, "value": {"stringValue": "x"}}]},
    {"attributes": [{"key": "n", "value": {"intValue": "many"}}]},
    {"parentSpanId": 12},
]


def test_spans_with_fields_of_the_wrong_type_are_skipped_and_counted(tmp_path):
    path = tmp_path / "spans.jsonl"
    good = [_otlp_span(GOOD_TRACE, f"{i:016x}") for i in range(1, 4)]
    bad = [_otlp_span(GOOD_TRACE, f"{100 + i:016x}", **fields) for i, fields in enumerate(BAD_FIELDS)]
    path.write_text(_otlp_line(*good) + _otlp_line(*bad) + "[1, 2]\n" + '{"resourceSpans": 7}\n')

    run = _doctor("spans", "--format", "json", str(path))

    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    report = json.loads(run.stdout)
    assert report["stats"]["spans"] == 3
    (warning,) = report["files"][0]["warnings"]
    assert warning.startswith("line 2: traceId is a number, expected a hex string; skipped, and 11 more malformed records")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("all_bad.jsonl", _otlp_line(*(_otlp_span(GOOD_TRACE, "1" * 16, **fields) for fields in BAD_FIELDS))),
        ("jaeger.json", json.dumps({"data": [{"traceID": "ab", "spans": [{"traceID": 1, "spanID": "ab"}, {"spanID": "cd", "tags": "x"}]}]})),
        ("jaeger_items.json", json.dumps({"data": [1, {"traceID": "ab", "spans": 5}, None]})),
        ("console.txt", json.dumps({"name": "q", "context": {"trace_id": 1, "span_id": "0x1"}}, indent=4) + "\n"),
        ("console_time.txt", json.dumps({"name": "q", "context": {"trace_id": "0x1", "span_id": "0x1"}, "start_time": "noon"}, indent=4) + "\n"),
        ("document.json", json.dumps({"resourceSpans": [{"scopeSpans": {"spans": []}}, "x", {"resource": []}]})),
    ],
)
def test_a_span_file_whose_every_record_is_malformed_is_one_line(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)

    run = _doctor("spans", str(path))

    assert_one_line_error(run, f"{path}: no spans in this file: ", "skipped")
    assert run.stdout == ""


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("deep.jsonl", '{"resourceSpans": ' + "[" * 100_000 + "]" * 100_000 + "}\n"),
        ("deep_attribute.jsonl", '{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": ' + "[" * 100_000 + "]" * 100_000 + "}]}]}]}\n"),
        ("deep.json", '{\n  "resourceSpans": [\n' + "[" * 100_000 + "]" * 100_000 + "\n]}\n"),
        ("deep_jaeger.json", '{"data": [' + '{"traceID": "a", "spans": ' * 1 + "[" * 100_000 + "]" * 100_000 + "}]}\n"),
        ("deep_console.txt", '{\n    "name": "x", "context": {"trace_id": "0x1"}, "attributes": ' + "[" * 100_000 + "]" * 100_000 + "}\n"),
    ],
)
def test_span_files_nested_100000_deep_are_one_line_in_well_under_a_second(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)

    started = time.monotonic()
    run = _doctor("spans", str(path))
    elapsed = time.monotonic() - started

    line = assert_one_line_error(run, str(path))
    assert "nested too deeply" in line
    assert elapsed < 10


@pytest.mark.parametrize(
    "statement",
    ["SELECT 1 " + "/* " * 50_000, "SELECT " + "".join(f"$t{i}$ " for i in range(20_000))],
    ids=["unterminated-comments", "unterminated-dollar-quotes"],
)
def test_a_hostile_statement_is_normalised_in_linear_time(tmp_path, statement):
    # Each unclosed opener used to be closed again against the rest of the text: 20 s per statement.
    attributes = [{"key": "db.system", "value": {"stringValue": "postgresql"}}, {"key": "db.statement", "value": {"stringValue": statement}}]
    spans = [_otlp_span(GOOD_TRACE, "0" * 15 + "1", name="GET /", kind=2)]
    spans += [_otlp_span(GOOD_TRACE, f"{i:016x}", parentSpanId="0" * 15 + "1", attributes=attributes) for i in range(2, 4)]
    path = tmp_path / "spans.jsonl"
    path.write_text(_otlp_line(*spans))

    started = time.monotonic()
    run = _doctor("spans", str(path))

    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started < 5


def test_a_missing_save_spans_directory_is_one_line_before_the_command_runs(tmp_path):
    marker = tmp_path / "ran"
    run = _doctor(
        "trace", "--save-spans", str(tmp_path / "no" / "such" / "dir" / "spans.jsonl"), "--",
        sys.executable, "-c", f"open({str(marker)!r}, 'w').close()",
    )

    assert_one_line_error(run, "does not exist")
    assert not marker.exists()  # the user's command did not run for nothing


# --- 6. stdout on a full disk, and a stdout that cannot encode the marks --------------------------


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "args",
    [
        ["scan", "{app}"],
        ["scan", "--format", "json", "{app}"],
        ["spans", str(N_PLUS_ONE)],
        ["spans", "--format", "json", str(N_PLUS_ONE)],
        ["probe"],
        ["rules"],
        ["explain", "OSD101"],
        ["--version"],
    ],
    ids=["scan", "scan-json", "spans", "spans-json", "probe", "rules", "explain", "version"],
)
def test_stdout_on_a_full_disk_is_one_line_and_a_failure(tmp_path, args):
    app = tmp_path / "app.py"
    app.write_text(CLEAN_APP)
    import subprocess

    with open("/dev/full", "w") as full:
        run = subprocess.run(
            [sys.executable, "-m", "otel_sqla_doctor", *(a.format(app=app) for a in args)],
            cwd=tmp_path, env=_env(), stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
        )

    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == "doctor: error: cannot write the output: No space left on device"


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "ascii"])
def test_a_stdout_that_cannot_encode_the_marks_gets_ascii_marks(tmp_path, encoding):
    app = tmp_path / "app.py"
    app.write_text(
        "from sqlalchemy.ext.asyncio import create_async_engine\n"
        "from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor\n"
        "engine = create_async_engine('sqlite+aiosqlite://')\n"
        "SQLAlchemyInstrumentor().instrument(engine=engine)\n"
    )
    env = _env(PYTHONIOENCODING=encoding)

    for args, code in ((["spans", str(N_PLUS_ONE)], 1), (["scan", "--no-cache", str(app)], 1), (["probe"], 0)):
        run = _doctor(*args, env=env, cwd=tmp_path, encoding=encoding)  # what the terminal decodes

        assert run.returncode == code, (args, run.stderr)
        assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr
        assert "[x]" in run.stdout or "[+]" in run.stdout, run.stdout
        assert "\u2713" not in run.stdout and "\u2717" not in run.stdout
        run.stdout.encode(encoding)  # what was printed is what the terminal can show
    assert "[+] OSD501 database-connect" in run.stdout


@pytest.mark.parametrize("encoding", ["cp1252", "ascii"])
def test_json_on_a_legacy_stdout_stays_valid_json(tmp_path, encoding):
    # Names the encoding cannot show (a check mark, curly quotes, CJK) in the spans themselves.
    name = "GET /caf\u00e9 \u2713 \u201cquoted\u201d \u6f22\u5b57 \uff02"
    statement = "SELECT title FROM books WHERE author_id = $1"
    spans = [_otlp_span(GOOD_TRACE, "0" * 15 + "1", name=name, kind=2)] + [
        _otlp_span(
            GOOD_TRACE, f"{i:016x}", parentSpanId="0" * 15 + "1",
            attributes=[{"key": "db.system", "value": {"stringValue": "postgresql"}}, {"key": "db.statement", "value": {"stringValue": statement}}],
        )
        for i in range(2, 8)
    ]
    path = tmp_path / "spans.jsonl"
    path.write_text(_otlp_line(*spans))

    run = _doctor("spans", "--format", "json", str(path), env=_env(PYTHONIOENCODING=encoding), encoding=encoding)

    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert report["findings"][0]["code"] == "OSD601"
    assert "quoted" in report["findings"][0]["details"]["parent"]


# --- 9. probe options ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1e9", "inf", "nan", "-1", "0", "3601"])
def test_timeouts_outside_reason_are_usage_errors(value):
    started = time.monotonic()
    run = _doctor("probe", f"--timeout={value}")

    assert_one_line_error(run, "--timeout must be a number of seconds from 0.1 to 3600")
    assert run.stdout == ""
    assert time.monotonic() - started < 20


@pytest.mark.live
def test_sslmode_on_asyncpg_is_one_line_that_names_ssl(pg_dsn):
    run = _doctor("probe", f"{pg_dsn}?sslmode=require")

    assert_one_line_error(run, "asyncpg does not take sslmode=require", "?ssl=require")
    assert run.stdout == ""


@pytest.mark.live
@pytest.mark.parametrize("driver", ["aiomysql", "asyncmy"])
def test_an_unknown_mysql_charset_is_one_line(mysql_dsn, driver):
    dsn = mysql_dsn.replace("mysql+aiomysql://", f"mysql+{driver}://")

    run = _doctor("probe", f"{dsn}?charset=nonsense")

    assert_one_line_error(run, f"{driver} knows no character set 'nonsense'", "utf8mb4")
    assert "Exception ignored" not in run.stderr


def test_a_missing_sqlite_file_never_leaves_a_driver_thread_traceback(tmp_path):
    # aiosqlite's worker thread hands its last result back after a failed connect: the probe's
    # event loop must still be there to take it (a race: tried several times).
    for _ in range(5):
        run = _doctor("probe", f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'app.db'}", cwd=tmp_path)

        assert run.returncode == 1
        assert run.stderr == "", run.stderr


@pytest.mark.live
def test_an_option_asyncpg_does_not_take_is_one_clear_check_line(pg_dsn):
    run = _doctor("probe", "--format", "json", f"{pg_dsn}?application=shop")

    assert run.returncode == 1, run.stderr
    osd501 = next(c for c in json.loads(run.stdout)["checks"] if c["code"] == "OSD501")
    assert osd501["status"] == "fail"
    assert osd501["detail"] == "asyncpg does not take the URL's query option 'application'"


# --- 10. nothing green that checked nothing -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("empty.jsonl", "", "the file is empty"),
        ("blank.json", "\n\n   \n", "the file is empty"),
        ("no_spans.json", '{"resourceSpans": []}', "it holds no spans"),
        ("metrics.jsonl", '{"resourceSpans": [{"scopeSpans": []}]}\n', "it holds no spans"),
    ],
)
def test_a_span_file_without_spans_is_an_error_not_six_green_checks(tmp_path, name, content, why):
    path = tmp_path / name
    path.write_text(content)

    run = _doctor("spans", str(path))

    assert_one_line_error(run, f"{path}: no spans in this file: {why}")
    assert "\u2713" not in run.stdout + run.stderr


def test_one_empty_file_among_span_files_is_named(tmp_path):
    empty = tmp_path / "rotated-2.jsonl"
    empty.write_text("")

    run = _doctor("spans", str(N_PLUS_ONE), str(empty))

    assert_one_line_error(run, f"{empty}: no spans in this file: the file is empty")


def test_trace_around_a_command_that_crashed_before_any_span_is_not_all_green():
    run = _doctor("trace", "--", sys.executable, "-c", "import sys; sys.exit(3)")

    assert run.returncode == 3
    assert "[✗] the command failed with exit code 3: it recorded no spans, so nothing was checked" in run.stderr
    assert "[✓]" not in run.stderr
    assert "no issues found" not in run.stderr
    assert "nothing was checked: no spans" in run.stderr


def test_trace_around_a_command_that_crashed_after_some_spans_says_what_was_analysed(tmp_path):
    app = REPO / "sample_projects" / "n_plus_one_app" / "app.py"
    script = tmp_path / "crash_after.py"
    script.write_text(
        f"import runpy, sys\nsys.argv = [{str(app)!r}, '--fixed']\nrunpy.run_path({str(app)!r}, run_name='__main__')\n"
        "raise RuntimeError('the job crashed after its queries')\n"
    )

    run = _doctor("trace", "--instrument", "--format", "json", "--", sys.executable, str(script))

    assert run.returncode == 1
    assert "RuntimeError: the job crashed after its queries" in run.stderr  # the command's own stderr
    report = json.loads(run.stderr[run.stderr.index('{\n  "version"'):])
    assert report["stats"]["db_spans"] > 0 and report["findings"] == []
    assert report["errors"] == ["the command failed with exit code 1: only the spans it recorded before it ended were analysed"]


# --- 11. spans read twice are counted once -------------------------------------------------------


def test_the_same_span_file_twice_does_not_double_the_counts():
    once = _doctor("spans", "--format", "json", str(N_PLUS_ONE))
    twice = _doctor("spans", "--format", "json", str(N_PLUS_ONE), str(N_PLUS_ONE))

    assert once.returncode == twice.returncode == 1
    first, second = json.loads(once.stdout), json.loads(twice.stdout)
    assert [(f["code"], f["occurrences"], f["details"]["count"]) for f in second["findings"]] == [
        (f["code"], f["occurrences"], f["details"]["count"]) for f in first["findings"]
    ] == [("OSD601", 1, 12)]
    assert second["stats"]["spans"] == first["stats"]["spans"] == 29
    assert second["stats"]["duplicates"] == 29
    assert second["files"][1]["warnings"] == ["29 of its 29 spans were already read (same trace id and span id) and were dropped"]
    assert any(note.startswith("29 duplicate span(s) dropped") for note in second["notes"])


def _rotated(path: Path, traces: range) -> None:
    """One request per trace: a GET with six identical SELECTs under it (an N+1 of 6)."""
    with open(path, "w") as out:
        for t in traces:
            trace_id = f"{t:032x}"
            parent = _otlp_span(trace_id, f"{t:08x}{0:08x}", name="GET /authors", kind=2)
            children = [
                _otlp_span(
                    trace_id, f"{t:08x}{i:08x}", parentSpanId=f"{t:08x}{0:08x}",
                    attributes=[
                        {"key": "db.system", "value": {"stringValue": "postgresql"}},
                        {"key": "db.statement", "value": {"stringValue": "SELECT title FROM books WHERE author_id = $1"}},
                    ],
                )
                for i in range(1, 7)
            ]
            out.write(_otlp_line(parent, *children))


def test_overlapping_rotated_files_count_each_trace_once(tmp_path):
    # 5,000 traces, then a rotated file that repeats the first 300: far enough apart that those
    # traces were analysed (and let go) long before their copies arrive.
    first, second = tmp_path / "spans-1.jsonl", tmp_path / "spans-2.jsonl"
    _rotated(first, range(1, 5001))
    _rotated(second, range(1, 301))

    run = _doctor("spans", "--format", "json", str(first), str(second))

    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert report["stats"]["traces"] == 5000 and report["stats"]["split_traces"] == 0
    assert report["stats"]["duplicates"] == 300 * 7
    (finding,) = report["findings"]
    assert finding["code"] == "OSD601" and finding["occurrences"] == 5000 and finding["details"]["count"] == 6
