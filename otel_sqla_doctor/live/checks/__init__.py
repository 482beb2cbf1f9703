"""The live checks, in the order they run and are reported."""

from __future__ import annotations

from otel_sqla_doctor.live.checks.base import Check
from otel_sqla_doctor.live.checks.osd501_database_connect import DatabaseConnect
from otel_sqla_doctor.live.checks.osd502_instrumentation_version_range import InstrumentationVersionRange
from otel_sqla_doctor.live.checks.osd503_query_span_emitted import QuerySpanEmitted
from otel_sqla_doctor.live.checks.osd504_query_span_parented import QuerySpanParented
from otel_sqla_doctor.live.checks.osd505_query_span_attributes import QuerySpanAttributes
from otel_sqla_doctor.live.checks.osd506_commenter_reached_server import CommenterReachedServer
from otel_sqla_doctor.live.checks.osd507_one_tracer_per_engine import OneTracerPerEngine
from otel_sqla_doctor.live.checks.osd508_commenter_statement_cache import CommenterStatementCache
from otel_sqla_doctor.live.checks.osd509_otel_environment import OtelEnvironmentCheck
from otel_sqla_doctor.live.checks.osd510_exporter_reachable import ExporterReachable

ALL_CHECKS: tuple[Check, ...] = (
    DatabaseConnect(),
    InstrumentationVersionRange(),
    QuerySpanEmitted(),
    QuerySpanParented(),
    QuerySpanAttributes(),
    CommenterReachedServer(),
    OneTracerPerEngine(),
    CommenterStatementCache(),
    OtelEnvironmentCheck(),
    ExporterReachable(),
)

__all__ = ["ALL_CHECKS", "Check"]
