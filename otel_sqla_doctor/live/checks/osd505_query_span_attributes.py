"""OSD505 query-span-attributes: the query span carries what a backend needs to group it.

* `db.system` (or `db.system.name` under OTEL_SEMCONV_STABILITY_OPT_IN=database) names the
  backend that was really probed.
* The statement attribute (`db.statement` / `db.query.text`) is parameterized: the value the
  probe bound is not in it, and no sqlcommenter traceparent is in it either (that is
  `enable_attribute_commenter=True`, one distinct statement per query: static rule OSD302).
* The span name is low-cardinality. SQLite appends the database path (`SELECT /srv/app.db`),
  so a file database that differs per tenant or per test run makes one span name per file: warn.
"""

from __future__ import annotations

from otel_sqla_doctor.live.backends import backend_for
from otel_sqla_doctor.live.checks._spans import query_span, statement_of
from otel_sqla_doctor.live.checks.base import Check
from otel_sqla_doctor.live.model import CheckResult
from otel_sqla_doctor.live.observations import Observations


def _path_in_name(name: str) -> str | None:
    """The database path that SQLite's instrumentation appended to the span name, if any."""
    parts = name.split(" ", 1)
    if len(parts) < 2:
        return None
    suffix = parts[1]
    if suffix == ":memory:":
        return None
    if "/" in suffix or "\\" in suffix or suffix.endswith((".db", ".sqlite", ".sqlite3")):
        return suffix
    return None


class QuerySpanAttributes(Check):
    code = "OSD505"
    name = "query-span-attributes"
    title = "Query span attributes: system, parameterized statement, low-cardinality name"

    def run(self, obs: Observations) -> CheckResult:
        blocked = self.needs_connection(obs)
        if blocked:
            return blocked
        span = query_span(obs)
        if span is None or obs.query is None:
            return self.skipped("skipped: no query span (see OSD503)")
        attributes = span.attributes or {}
        expected = backend_for(obs.backend).systems if obs.backend else ()
        system_key = next((key for key in obs.env.system_keys + ("db.system.name", "db.system") if key in attributes), None)
        if system_key is None:
            return self.failed(f"the query span has no {' or '.join(obs.env.system_keys)} attribute", "report this upstream with your versions")
        system = attributes[system_key]
        if expected and system not in expected:
            return self.failed(f"{system_key}={system!r} but the probe talked to {obs.backend}", "check which engine the instrumentation is attached to")
        statement = statement_of(span, obs)
        if statement is None:
            return self.failed(f"the query span has no {' or '.join(obs.env.statement_keys)} attribute", "report this upstream with your versions")
        if obs.query.sentinel in statement:
            return self.failed(
                f"the statement attribute contains the bound value {obs.query.sentinel!r}: literal values reach the span",
                "pass values as bound parameters (text(':name') with a dict), never by formatting SQL (static rule OSD301)",
            )
        summary = f"{system_key}={system!r}, statement parameterized ({statement[:80]!r}), span name {span.name!r}"
        if "traceparent=" in statement and not obs.wiring.attribute_commenter_enabled and obs.wiring.tracers_on_engine > 1:
            return self.warned(
                f"the statement attribute carries a sqlcommenter block that another tracer on this engine added first: {statement[:120]!r}",
                "fix the double tracer (see OSD507); the attribute is clean with one tracer",
            )
        if "traceparent=" in statement:
            return self.warned(
                f"the statement attribute carries the sqlcommenter block, so every query has a distinct statement: {statement[:120]!r}",
                "drop enable_attribute_commenter=True (static rule OSD302 attribute-commenter-cardinality)",
            )
        path = _path_in_name(span.name)
        if path:
            return self.warned(
                f"span name {span.name!r} contains the SQLite database path {path!r}: one span name per database file",
                "keep one database path per service, or rename spans in a SpanProcessor/collector transform; upstream appends it to the name",
            )
        return self.passed(summary)
