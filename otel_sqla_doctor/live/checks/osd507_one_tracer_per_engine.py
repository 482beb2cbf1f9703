"""OSD507 one-tracer-per-engine: one query starts exactly one SQLAlchemy span, and ends it.

Counts the spans the SQLAlchemy instrumentation *started* for the probe query (a span processor's
`on_start`), not only those exported. Two EngineTracers on one engine (upstream #2149: a global
`instrument()` before `sqlalchemy.ext.asyncio` is first imported, and every
`opentelemetry-instrument` run) start two spans per query and end one; the other leaks, and
the SQL gets two comments. Static twins: OSD106 (and OSD103 for a repeated per-engine call).
"""

from __future__ import annotations

from otel_sqla_doctor.live.checks._spans import query_spans, started_query_spans
from otel_sqla_doctor.live.checks.base import Check
from otel_sqla_doctor.live.model import CheckResult
from otel_sqla_doctor.live.observations import Observations


class OneTracerPerEngine(Check):
    code = "OSD507"
    name = "one-tracer-per-engine"
    title = "One span per query (no double tracer)"

    def run(self, obs: Observations) -> CheckResult:
        blocked = self.needs_connection(obs)
        if blocked:
            return blocked
        started, ended = len(started_query_spans(obs)), len(query_spans(obs))
        tracers = obs.wiring.tracers_on_engine
        counts = f"{started} span(s) started, {ended} ended for one query; {tracers} EngineTracer(s) on the engine"
        if started == 0:
            return self.skipped(f"skipped: no query span was started (see OSD503); {tracers} EngineTracer(s) on the engine")
        if started > ended:
            return self.failed(
                f"{counts}: {started - ended} span(s) per query never end and leak (upstream #2149)",
                "import sqlalchemy.ext.asyncio before the global instrument() (or instrument the engine with "
                "engine=engine.sync_engine instead of globally); under opentelemetry-instrument, disable the global "
                "sqlalchemy instrumentation and instrument the engine yourself (static rule OSD106)",
            )
        if started > 1 or tracers > 1:
            return self.failed(
                f"{counts}: every query is traced {max(started, tracers)} times",
                "instrument each engine once (static rules OSD103, OSD106)",
            )
        return self.passed(counts)
