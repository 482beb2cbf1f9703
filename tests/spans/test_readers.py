"""Every input format, detected and read in a stream, on recorded spans."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from otel_sqla_doctor.spans import analyze_files
from otel_sqla_doctor.spans.readers import SpanFile, SpanFileError, detect_format

from .conftest import run_doctor


def _structure(spans):
    """What a recording of the sample app looks like, whatever the ids and the temp path."""
    by_id = {s.span_id: s for s in spans}
    return Counter(
        (s.name.split(" ")[0], by_id[s.parent_id].name if s.parent_id in by_id else None, s.kind, s.end_ns is not None)
        for s in spans
    )


@pytest.mark.parametrize(
    "name, expected",
    [
        ("n_plus_one.otlp.jsonl", "otlp-jsonl"),
        ("literals.otlp.json", "otlp-json"),
        ("n_plus_one.console.txt", "console"),
        ("n_plus_one.jaeger.json", "jaeger"),
    ],
)
def test_formats_are_detected(fixtures, name, expected):
    assert detect_format(fixtures / name) == expected


def test_the_three_formats_of_one_program_read_the_same(fixtures):
    otlp = list(SpanFile(fixtures / "n_plus_one.otlp.jsonl"))
    console = list(SpanFile(fixtures / "n_plus_one.console.txt"))
    jaeger = list(SpanFile(fixtures / "n_plus_one.jaeger.json"))
    assert len(otlp) == len(console) == len(jaeger) == 29
    assert _structure(otlp) == _structure(console) == _structure(jaeger)
    assert ("GET", None, "SERVER", True) in _structure(otlp)
    statements = {s.statement for s in otlp if s.statement}
    assert statements == {s.statement for s in console if s.statement} == {s.statement for s in jaeger if s.statement}


def test_scope_comes_through_otlp_and_jaeger_but_not_console(fixtures):
    scopes = lambda name: {s.scope for s in SpanFile(fixtures / name)}  # noqa: E731
    assert scopes("duplicates.otlp.jsonl") == scopes("duplicates.jaeger.json") == {
        "duplicates-app",
        "opentelemetry.instrumentation.sqlalchemy",
        "opentelemetry.instrumentation.asyncpg",
    }
    assert scopes("n_plus_one.console.txt") == {None}


def test_console_output_mixed_with_program_prints(fixtures):
    span_file = SpanFile(fixtures / "n_plus_one.console.txt")
    assert len(list(span_file)) == 29
    assert span_file.warnings == ["12 lines of other output between the spans were skipped"]  # "author N: 3 books"


@pytest.mark.parametrize("name", ["literals.otlp.json", "n_plus_one.console.txt", "n_plus_one.jaeger.json"])
def test_small_read_chunks_give_the_same_spans(fixtures, name):
    whole = [(s.span_id, s.name, s.start_ns, s.end_ns) for s in SpanFile(fixtures / name)]
    chunked = [(s.span_id, s.name, s.start_ns, s.end_ns) for s in SpanFile(fixtures / name, chunk_size=37)]
    assert whole == chunked and whole


def test_detection_over_every_format_finds_the_n_plus_one(fixtures):
    for name in ("n_plus_one.otlp.jsonl", "n_plus_one.console.txt", "n_plus_one.jaeger.json"):
        report = analyze_files([fixtures / name])
        assert [(f.code, f.details["count"]) for f in report.findings] == [("OSD601", 12)], name


def test_a_document_whose_first_key_is_not_resource_spans(tmp_path, fixtures):
    document = json.loads((fixtures / "literals.otlp.json").read_text())
    reordered = tmp_path / "reordered.json"
    reordered.write_text(json.dumps({"schemaVersion": 1, **document}))
    assert detect_format(reordered) == "otlp-json"
    assert len(list(SpanFile(reordered))) == len(list(SpanFile(fixtures / "literals.otlp.json")))


@pytest.mark.parametrize(
    "content",
    ["hello world\n", '{"foo": 1}\n', "[1, 2, 3]\n", '{"data": [{"id": 1}]}\n', "name,trace_id\nx,y\n"],
    ids=["text", "other-json", "array", "not-jaeger", "csv"],
)
def test_unknown_files_name_the_formats_we_expected(tmp_path, content):
    path = tmp_path / "spans.json"
    path.write_text(content)
    with pytest.raises(SpanFileError) as excinfo:
        detect_format(path)
    message = str(excinfo.value)
    assert str(path) in message
    for expected in ("OTLP JSON", "ConsoleSpanExporter", "Jaeger"):
        assert expected in message


def test_unknown_file_is_a_usage_error_on_the_command_line(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not spans\n")
    result = run_doctor("spans", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith("doctor: error: ") and "expected OTLP JSON" in result.stderr
    assert result.stdout == ""


def test_truncated_document_is_a_clear_error(tmp_path, fixtures):
    text = (fixtures / "literals.otlp.json").read_text()
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(SpanFileError, match="truncated JSON"):
        list(SpanFile(path))


def test_a_cut_last_line_is_skipped_with_a_warning(tmp_path, fixtures):
    # a collector killed mid-write: complete lines, then half a line
    lines = (fixtures / "n_plus_one.otlp.jsonl").read_text().splitlines()
    cut = (fixtures / "duplicates.otlp.jsonl").read_text().splitlines()[0][:100]
    path = tmp_path / "cut.jsonl"
    path.write_text("\n".join([*lines, cut]))
    span_file = SpanFile(path)
    assert len(list(span_file)) == 29
    assert len(span_file.warnings) == 1 and span_file.warnings[0].startswith(f"line {len(lines) + 1}: not JSON")


def test_empty_file_has_no_spans(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    report = analyze_files([path])
    assert report.stats.spans == 0 and report.findings == ()
    assert "no spans were read" in report.notes


@pytest.mark.parametrize("name", ["n_plus_one.otlp.jsonl", "literals.otlp.json", "n_plus_one.console.txt", "n_plus_one.jaeger.json"])
def test_gzipped_files_read_the_same(tmp_path, fixtures, name):
    import gzip

    packed = tmp_path / (name + ".gz")
    packed.write_bytes(gzip.compress((fixtures / name).read_bytes()))
    plain = SpanFile(fixtures / name)
    gzipped = SpanFile(packed)
    assert gzipped.format == plain.format
    assert _structure(list(gzipped)) == _structure(list(plain))


def test_gzipped_spans_through_the_command_line(tmp_path, fixtures):
    import gzip

    packed = tmp_path / "spans.jsonl.gz"
    packed.write_bytes(gzip.compress((fixtures / "n_plus_one.otlp.jsonl").read_bytes()))
    result = run_doctor("spans", str(packed))
    assert result.returncode == 1, result.stderr
    assert "OSD601" in result.stdout


def test_a_corrupt_gzip_file_is_a_clear_error(tmp_path, fixtures):
    import gzip

    packed = gzip.compress((fixtures / "n_plus_one.otlp.jsonl").read_bytes())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2])
    result = run_doctor("spans", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith("doctor: error: ") and "cannot read" in result.stderr
    assert "Traceback" not in result.stderr
