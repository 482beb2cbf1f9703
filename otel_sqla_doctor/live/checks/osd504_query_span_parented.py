"""OSD504 query-span-parented: the query span is a child of the span that was current when the
query was awaited, i.e. the OpenTelemetry context survives SQLAlchemy's greenlet bridge.

A query span without the right parent starts its own trace, so the request that caused it can
no longer be found from the query, nor the query from the request.
"""

from __future__ import annotations

from otel_sqla_doctor.live.checks._spans import query_span
from otel_sqla_doctor.live.checks.base import Check
from otel_sqla_doctor.live.model import CheckResult
from otel_sqla_doctor.live.observations import Observations


class QuerySpanParented(Check):
    code = "OSD504"
    name = "query-span-parented"
    title = "Query span is a child of the caller's span"

    def run(self, obs: Observations) -> CheckResult:
        blocked = self.needs_connection(obs)
        if blocked:
            return blocked
        span = query_span(obs)
        if span is None or obs.query is None:
            return self.skipped("skipped: no query span (see OSD503)")
        parent_id = f"{obs.query.parent_span_id:016x}"
        if span.parent is None:
            return self.failed(
                f"the query span is a root span: the probe's parent span {parent_id} was lost on the way into the driver",
                "await the query in the task that holds the span; do not run it through run_in_executor or a thread without copying the context",
            )
        if span.parent.span_id != obs.query.parent_span_id or span.context.trace_id != obs.query.parent_trace_id:
            return self.failed(
                f"the query span's parent is {span.parent.span_id:016x}, not the probe's span {parent_id}",
                "make sure nothing replaces the current context between the caller and the query",
            )
        return self.passed(f"child of the probe's span {parent_id} in trace {span.context.trace_id:032x}")
