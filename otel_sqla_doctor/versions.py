"""Which SQLAlchemy versions each opentelemetry-instrumentation-sqlalchemy release agrees to instrument.

The instrumentation declares a range in `package.py` (`_instruments`, also published as the
`instruments` extra of its metadata). `BaseInstrumentor.instrument()` checks the installed
SQLAlchemy against it and, outside the range, instruments nothing: it returns None, raises
nothing and logs one ERROR line (reproduced by tests/rules/test_osd107_live.py in the
otel-sqla-doctor repository). This module is the one place that
knows those ranges, with where each one comes from; the static rule OSD107 and the live probe
read it from here. `scripts/refresh_versions.py` (in the repository) refreshes the tables from
PyPI and prints what changed.

Pure data plus two small helpers; `packaging` (a dependency of opentelemetry-instrumentation)
is imported only when a helper runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

INSTRUMENTATION = "opentelemetry-instrumentation-sqlalchemy"
SQLALCHEMY = "sqlalchemy"


@dataclass(frozen=True)
class DeclaredRange:
    """Releases `first` .. `last` (inclusive) of the instrumentation declare `sqlalchemy` as their range."""

    first: str
    last: str
    sqlalchemy: str  # a PEP 440 specifier set; "" means any version
    source: str


# Oldest first. `last` of the newest entry is the newest release the doctor has checked.
# Refreshed by scripts/refresh_versions.py, which also sets INSTRUMENTATION_TABLE_DATE.
SQLALCHEMY_INSTRUMENTATION_RANGES: tuple[DeclaredRange, ...] = (
    DeclaredRange(
        first="0.0",
        last="0.49b2",
        sqlalchemy="",
        source=(
            '`_instruments = ("sqlalchemy",)` in package.py (e.g. 0.21.dev0), replaced by PR '
            "open-telemetry/opentelemetry-python-contrib#2971 in 0.50b0 (history)"
        ),
    ),
    DeclaredRange(
        first="0.50b0",
        last="0.66b2",
        sqlalchemy=">=1.0.0,<2.1.0",
        source=(
            'PR open-telemetry/opentelemetry-python-contrib#2971 (0.50b0) set `("sqlalchemy >= 1.0.0, < 2.1.0",)`; '
            "0.66b1's and 0.66b2's package.py and their `instruments` extra (Requires-Dist) declare it "
            "(0.66b2's wheel read on 2026-11-29)"
        ),
    ),
)

# The day PyPI was last read for the table above: "the newest release" means the newest one on
# that day, and every message that relies on it says "as of" this date.
INSTRUMENTATION_TABLE_DATE = "2026-11-29"

# The newest instrumentation release known here: what an unpinned requirement resolved to on
# INSTRUMENTATION_TABLE_DATE.
NEWEST_INSTRUMENTATION = SQLALCHEMY_INSTRUMENTATION_RANGES[-1].last

# The newest release of each SQLAlchemy series on SQLALCHEMY_TABLE_DATE: what a resolver picked on
# that day for a requirement that allows the series.
SQLALCHEMY_TABLE_DATE = "2026-11-29"
SQLALCHEMY_NEWEST_BY_SERIES: dict[str, str] = {
    "1.3": "1.3.24",
    "1.4": "1.4.54",
    "2.0": "2.0.58",
    "2.1": "2.1.9",
}


def declared_range(instrumentation_version: str) -> Optional[DeclaredRange]:
    """The range a given instrumentation release declares; None for releases newer than the table."""
    from packaging.version import InvalidVersion, Version

    try:
        version = Version(instrumentation_version)
    except InvalidVersion:
        return None
    for entry in SQLALCHEMY_INSTRUMENTATION_RANGES:
        if Version(entry.first) <= version <= Version(entry.last):
            return entry
    return None


def instrumentation_releases() -> list[str]:
    """The releases the table names (both ends of every entry), oldest first."""
    from packaging.version import Version

    found = {v for entry in SQLALCHEMY_INSTRUMENTATION_RANGES for v in (entry.first, entry.last)}
    return sorted(found, key=Version)


def sqlalchemy_in_range(sqlalchemy_version: str, instrumentation_version: str) -> Optional[bool]:
    """Whether that instrumentation release instruments that SQLAlchemy; None when unknown."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    entry = declared_range(instrumentation_version)
    if entry is None:
        return None
    try:
        return SpecifierSet(entry.sqlalchemy).contains(Version(sqlalchemy_version), prereleases=True)
    except InvalidVersion:
        return None
