"""Each detector on spans recorded from real queries (tests/spans/record_fixtures.py)."""

from __future__ import annotations

import pytest

from otel_sqla_doctor.spans import analyze_files
from otel_sqla_doctor.spans.detectors import ALL

AUTHORS = 12  # sample_projects/n_plus_one_app/app.py


def codes(report):
    return sorted({f.code for f in report.findings})


def only(report, code):
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, report.findings
    return found[0]


def test_osd601_counts_the_lazy_loads_of_the_sample_app(fixtures):
    report = analyze_files([fixtures / "n_plus_one.otlp.jsonl"])
    assert codes(report) == ["OSD601"]
    finding = only(report, "OSD601")
    assert finding.details["count"] == AUTHORS
    assert finding.details["parent"] == "GET /authors"
    assert "FROM n1_books" in finding.details["statement"]
    assert finding.details["total_ms"] > 0
    assert "selectinload" in finding.fix
    assert report.exit_code == 1


def test_osd601_silent_on_the_selectinload_version(fixtures):
    report = analyze_files([fixtures / "selectinload.otlp.jsonl"])
    assert report.findings == ()
    assert report.exit_code == 0


def test_osd601_threshold_is_configurable(fixtures):
    assert codes(analyze_files([fixtures / "n_plus_one.otlp.jsonl"], n_plus_one_threshold=AUTHORS + 1)) == []
    assert codes(analyze_files([fixtures / "n_plus_one.otlp.jsonl"], n_plus_one_threshold=AUTHORS)) == ["OSD601"]


def test_osd602_interpolated_ids_but_not_bound_ones(fixtures):
    report = analyze_files([fixtures / "literals.otlp.json"])
    finding = only(report, "OSD602")
    assert finding.details["statement"] == "SELECT name FROM lit_users WHERE id = ?"
    assert finding.details["distinct_values"] == 5
    assert finding.details["see"] == "OSD301"
    assert not any("name = ?" in f.details.get("statement", "") for f in report.findings)
    assert codes(analyze_files([fixtures / "literals.otlp.json"], literal_threshold=6)) == []


def test_osd603_sqlalchemy_and_asyncpg_siblings(fixtures):
    finding = only(analyze_files([fixtures / "duplicates.otlp.jsonl"]), "OSD603")
    assert finding.details["scopes"] == [
        "opentelemetry.instrumentation.asyncpg",
        "opentelemetry.instrumentation.sqlalchemy",
    ]
    assert finding.details["pairs"] == 2  # the two statements the scenario ran, BEGIN/ROLLBACK excluded


def test_osd603_not_raised_by_one_instrumentation(fixtures):
    assert "OSD603" not in codes(analyze_files([fixtures / "n_plus_one.otlp.jsonl"]))


def test_osd604_reports_the_2149_leak_with_its_cause(fixtures):
    report = analyze_files([fixtures / "unended.otlp.jsonl"])
    assert report.stats.unended_spans == 3
    finding = only(report, "OSD604")
    assert finding.details["count"] == 3  # one leaked span per query
    assert finding.details["twinned"] is True
    assert "#2149" in finding.message
    # the leaked twins are not counted again as an N+1 or as duplicates
    assert codes(report) == ["OSD604"]


def test_osd605_pool_waits_but_not_slow_app_work(fixtures):
    finding = only(analyze_files([fixtures / "pool_wait.otlp.jsonl"]), "OSD605")
    assert finding.details["parent"] == "GET /orders"
    distribution = finding.details["distribution"]
    # 4 concurrent requests, pool of 1, each holds it ~150 ms: the last three wait
    assert (distribution["requests"], distribution["waited"]) == (4, 3)
    assert distribution["max_ms"] >= 400
    assert finding.details["holders"] >= 1
    # GET /report slept 200 ms before its first query with a free pool: not a pool wait
    assert "GET /report" not in finding.message


def test_osd605_threshold_is_configurable(fixtures):
    assert codes(analyze_files([fixtures / "pool_wait.otlp.jsonl"], pool_gap_ms=10_000)) == []


def test_osd606_root_queries_only(fixtures):
    report = analyze_files([fixtures / "root_spans.otlp.jsonl"])
    statements = sorted(f.details["statement"] for f in report.findings if f.code == "OSD606")
    assert statements == [
        "CREATE TABLE IF NOT EXISTS root_prices (id INTEGER PRIMARY KEY, p REAL)",
        "SELECT count(*) FROM root_prices",
    ]  # and not "SELECT id, p FROM root_prices", which ran inside GET /prices


def test_select_and_ignore(fixtures):
    paths = [fixtures / "n_plus_one.otlp.jsonl", fixtures / "duplicates.otlp.jsonl"]
    assert codes(analyze_files(paths)) == ["OSD601", "OSD603"]
    assert codes(analyze_files(paths, select=["n-plus-one-queries"])) == ["OSD601"]
    assert codes(analyze_files(paths, ignore=["OSD601"])) == ["OSD603"]


@pytest.mark.parametrize("detector", ALL, ids=lambda d: d.CODE)
def test_every_detector_documents_itself(detector):
    docs = detector.docs()
    assert docs.startswith(f"{detector.CODE} {detector.NAME}")
    for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## Known problems", "## References"):
        assert heading in docs, f"{detector.CODE} lacks {heading}"
    assert detector.CODE.startswith("OSD6") and detector.NAME == detector.NAME.lower()


def test_codes_and_names_are_unique():
    assert len({d.CODE for d in ALL}) == len({d.NAME for d in ALL}) == len(ALL) == 6
