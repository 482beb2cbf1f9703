"""The span detectors, one module each; `ALL` in code order. Adding one is adding a module here."""

from __future__ import annotations

from otel_sqla_doctor.spans.detectors.base import Detector, Occurrence, Options
from otel_sqla_doctor.spans.detectors.duplicate_spans import DuplicateDatabaseSpans
from otel_sqla_doctor.spans.detectors.literal_cardinality import LiteralCardinality
from otel_sqla_doctor.spans.detectors.n_plus_one import NPlusOneQueries
from otel_sqla_doctor.spans.detectors.pool_wait import PoolWaitGap
from otel_sqla_doctor.spans.detectors.root_database_spans import DatabaseSpanWithoutParent
from otel_sqla_doctor.spans.detectors.unended_spans import UnendedSpans

ALL: tuple[type[Detector], ...] = (
    NPlusOneQueries,
    LiteralCardinality,
    DuplicateDatabaseSpans,
    UnendedSpans,
    PoolWaitGap,
    DatabaseSpanWithoutParent,
)
BY_CODE = {d.CODE: d for d in ALL}
BY_NAME = {d.NAME: d for d in ALL}

__all__ = ["ALL", "BY_CODE", "BY_NAME", "Detector", "Occurrence", "Options"]
