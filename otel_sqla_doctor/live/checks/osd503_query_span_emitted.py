"""OSD503 query-span-emitted: the probe query produced a CLIENT span from the SQLAlchemy
instrumentation.

This is the check that catches every wiring mistake at once. When it fails the detail names the
cause found on the live objects and the static rule that predicts it: the AsyncEngine passed to
`instrument()` (OSD101), a global `instrument()` after the engine existed (OSD102), a second
`instrument()` ignored (OSD103), no instrumentation at all (OSD104), no TracerProvider (OSD202),
or SQLAlchemy outside the instrumented range (OSD502/OSD107). That last cause only warns when
the checks ran in the doctor's own environment (no application environment was found): the
SQLAlchemy refused there is the doctor's.
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind

from otel_sqla_doctor.live.checks._spans import explain_missing_spans, query_span, refused_by_version
from otel_sqla_doctor.live.checks.base import Check
from otel_sqla_doctor.live.model import CheckResult
from otel_sqla_doctor.live.observations import Observations


class QuerySpanEmitted(Check):
    code = "OSD503"
    name = "query-span-emitted"
    title = "Query span emitted by the SQLAlchemy instrumentation"

    def run(self, obs: Observations) -> CheckResult:
        blocked = self.needs_connection(obs)
        if blocked:
            return blocked
        if obs.query is None:
            return self.skipped("skipped: the probe query did not run")
        span = query_span(obs)
        if span is None:
            others = sorted({s.name for s in obs.query.ended})
            seen = f"; spans seen: {', '.join(others)}" if others else "; no spans at all"
            why, fix = explain_missing_spans(obs)
            if obs.doctor_own_environment and refused_by_version(obs):
                # The doctor's SQLAlchemy was refused, not necessarily the application's.
                return self.warned(
                    f"no query span in the doctor's own environment: {why}{seen}; the application's own versions may differ",
                    "run the probe with the application's interpreter (--python PATH) to see its own spans",
                )
            return self.failed(f"no query span: {why}{seen}", fix)
        if span.kind is not SpanKind.CLIENT:
            return self.failed(f"the query span {span.name!r} has kind {span.kind.name}, expected CLIENT", "report this upstream")
        if obs.wiring.setup_error:
            return self.failed(
                f"CLIENT span {span.name!r} was emitted, but your setup raised {obs.wiring.setup_error}: a service that "
                "starts with this setup stops there (or, where the error is caught, goes on without the rest of the setup)",
                "fix that error in the setup",
            )
        where = f"; the query itself failed: {obs.query.error}" if obs.query.error else ""
        return self.passed(f"CLIENT span {span.name!r} (span id {span.context.span_id:016x}) from {span.instrumentation_scope.name}{where}")
