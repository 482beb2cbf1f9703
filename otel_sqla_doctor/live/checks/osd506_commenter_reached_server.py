"""OSD506 commenter-reached-server: with the sqlcommenter enabled, the SQL text the *server*
received carries the comment, and its traceparent is the query span's trace and span id.

The text is read back from the server itself: `SELECT current_query()` on PostgreSQL, the
process-list row of the probe's own connection on MySQL/MariaDB, and the sqlite3 trace callback
on SQLite. Two traceparents mean two tracers (#2149; the first points at a span that is never
exported). Upstream URL-encodes the values and then doubles `%` (`sqlalchemy%%3A2.0.58`); drivers
that do not interpolate (asyncpg, aiosqlite) send the doubled form, which sqlcommenter parsers do
not decode: warn.
"""

from __future__ import annotations

import re

from otel_sqla_doctor.live.checks._spans import query_span, query_spans
from otel_sqla_doctor.live.checks.base import Check
from otel_sqla_doctor.live.model import CheckResult
from otel_sqla_doctor.live.observations import Observations

COMMENT = re.compile(r"/\*(.*?)\*/", re.DOTALL)
TRACEPARENT = re.compile(r"traceparent='(00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2}))'")
DOUBLED = re.compile(r"(\w+)='([^']*%%[^']*)'")


class CommenterReachedServer(Check):
    code = "OSD506"
    name = "commenter-reached-server"
    title = "SQL comment with the query span's traceparent reached the server"

    def run(self, obs: Observations) -> CheckResult:
        blocked = self.needs_query(obs)
        if blocked:
            return blocked
        query = obs.query
        if obs.wiring.tracers_on_engine == 0:
            return self.skipped("skipped: nothing instruments this engine (see OSD503)")
        if obs.wiring.commenter_enabled is False:
            return self.skipped(f"skipped: the commenter is off for this engine (enable_commenter=False); the server received {query.server_text!r}")
        received = query.server_text
        if not query_spans(obs):
            return self.skipped(f"skipped: no query span was recorded, so there is no traceparent to send (see OSD503); the server received {received!r}")
        if received is None:
            return self.failed(f"could not read the SQL the server received ({query.server_text_source})", "report this with your driver and server version")
        source = query.server_text_source
        traceparents = [m for block in COMMENT.findall(received) for m in TRACEPARENT.finditer(block)]
        if not traceparents:
            return self.failed(
                f"the server received the SQL without a sqlcommenter traceparent; {source} returned {received!r}",
                "enable_commenter=True on the instrumentation, a TracerProvider, and a sampler that keeps the trace",
            )
        span = query_span(obs)
        if span is None:
            return self.failed(f"the server received traceparent {traceparents[0][1]} but no query span was exported for it (see OSD503)", "fix OSD503 first")
        span_trace, span_id = f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"
        values = ", ".join(m[1] for m in traceparents)
        matching = [m for m in traceparents if m[2] == span_trace and m[3] == span_id]
        if len(traceparents) > 1:
            return self.failed(
                f"the server received {len(traceparents)} sqlcommenter blocks (traceparents {values}); the exported span is {span_id}: two tracers on one engine (#2149)",
                "see OSD507: make sure only one instrumentation reaches this engine (static rule OSD106)",
            )
        if not matching:
            return self.failed(
                f"server received traceparent {values} via {source}, but the query span is trace {span_trace} span {span_id}",
                "the comment points at another span: check for a second tracer or a custom commenter",
            )
        detail = f"server received traceparent {matching[0][1]} via {source}: equal to the query span (trace {span_trace}, span {span_id})"
        doubled = DOUBLED.findall(COMMENT.findall(received)[-1])
        if doubled:
            key, value = doubled[0]
            fix = (
                "nothing to change in the app: this is upstream behaviour for drivers that do not interpolate; "
                "normalise '%%' to '%' where you parse the comments (query insights, log pipelines)"
            )
            if obs.wiring.mode == "doctor":
                # DSN mode: the doctor's engine has the commenter on; the app's may not.
                fix = (
                    f"if your app enables the commenter (enable_commenter=True) with {obs.driver or 'this driver'}, its comments arrive "
                    "the same way (upstream behaviour for drivers that do not interpolate): normalise '%%' to '%' where you "
                    "parse them (query insights, log pipelines); if it does not, nothing to change"
                )
            return self.warned(f"{detail}; but values arrive %-doubled ({key}='{value}'), which sqlcommenter parsers do not decode", fix)
        return self.passed(detail)
