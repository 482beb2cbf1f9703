"""Re-record every scenario now, against the real databases, and check the detector still sees what
the fixtures say: the fixtures must keep describing what this SQLAlchemy and instrumentation do."""

from __future__ import annotations

import pytest

from otel_sqla_doctor.spans import analyze_files

from . import record_fixtures

pytestmark = pytest.mark.live


def _codes(path):
    return sorted({f.code for f in analyze_files([path]).findings})


@pytest.mark.parametrize(
    "scenario, expected",
    [
        ("n_plus_one", ["OSD601"]),
        ("selectinload", []),
        ("literals", ["OSD602"]),
        ("unended", ["OSD604"]),
        ("root_spans", ["OSD606"]),
        ("console", ["OSD601"]),
    ],
)
def test_sqlite_scenarios(tmp_path, scenario, expected):
    assert _codes(record_fixtures.record(scenario, tmp_path)) == expected


@pytest.mark.parametrize("scenario, expected", [("duplicates", ["OSD603"]), ("pool_wait", ["OSD605"])])
def test_postgresql_scenarios(tmp_path, pg_dsn, scenario, expected):
    assert _codes(record_fixtures.record(scenario, tmp_path, pg_dsn=pg_dsn)) == expected


def test_2149_does_not_happen_with_the_doctors_own_instrumentation(tmp_path):
    """The --instrument bootstrap imports sqlalchemy.ext.asyncio before instrument(): no leaked span."""
    report = analyze_files([record_fixtures.record("n_plus_one", tmp_path)])
    assert report.stats.unended_spans == 0
