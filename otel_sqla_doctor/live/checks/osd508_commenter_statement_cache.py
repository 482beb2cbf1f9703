"""OSD508 commenter-statement-cache: what the sqlcommenter costs asyncpg's prepared statements.

SQLAlchemy's asyncpg adapter caches prepared statements by SQL text. The commenter appends a
traceparent that differs for every query, so with it every execution is a new server-side
PREPARE (about the cost of having no cache at all, 1.7x to 4x per query; reproduced by
tests/rules/test_osd303_live.py in the otel-sqla-doctor repository).
The probe runs N identical statements traced on the probed connection (with the comment), and
N on a connection of a second engine it creates on the same URL with no tracer on it (the
baseline: not by suppressing the instrumentation, which 0.52b1 ignores), and counts the prepared
statements PostgreSQL holds for each (`pg_prepared_statements`, whose texts also show that the
comment was on the one and off the other). Skipped when nothing instruments the engine or its
commenter is off: then there is nothing to measure, and a "pass" would be a false comfort.
Static twin: OSD303 commenter-defeats-statement-cache.
"""

from __future__ import annotations

from otel_sqla_doctor.live.checks.base import Check
from otel_sqla_doctor.live.model import CheckResult
from otel_sqla_doctor.live.observations import Observations


class CommenterStatementCache(Check):
    code = "OSD508"
    name = "commenter-statement-cache"
    title = "Commenter vs asyncpg prepared-statement cache"

    def run(self, obs: Observations) -> CheckResult:
        if obs.backend != "postgresql":
            return self.skipped(f"skipped: only measured on PostgreSQL with asyncpg (this is {obs.backend or 'unknown'})")
        blocked = self.needs_connection(obs)
        if blocked:
            return blocked
        if obs.wiring.tracers_on_engine == 0:
            return self.skipped("skipped: nothing instruments this engine, so there is no comment to measure (see OSD503)")
        if obs.wiring.commenter_enabled is False:
            return self.skipped("skipped: the commenter is off for this engine (enable_commenter=False), so there is no comment to measure")
        cache = obs.cache
        if cache is None:
            return self.skipped("skipped: not measured")
        if cache.skipped:
            return self.skipped(f"skipped: {cache.skipped}")
        if cache.error:
            return self.skipped(f"skipped: the measurement failed ({cache.error})")
        n, plain, commented = cache.executions, cache.prepares_plain, cache.prepares_commented
        if not plain:
            return self.skipped(f"skipped: {n} plain executions left no prepared statement (prepared_statement_cache_size=0?)")
        measured = (
            f"{commented} server-side prepares for {n} identical executions with the commenter ({commented / n:.2f} per execution), "
            f"{plain} without it (on {cache.baseline})"
        )
        fix = (
            "keep the commenter but drop the traceparent (commenter_options={'opentelemetry_values': False}), "
            "or turn the commenter off where statement reuse matters (static rule OSD303)"
        )
        if obs.wiring.mode == "doctor":
            # DSN mode measured the doctor's reference wiring, not the app's engine.
            fix = f"if your app enables the commenter (enable_commenter=True) on an asyncpg engine: {fix}; if it does not, nothing to change"
        if commented > plain:
            return self.warned(
                f"{measured}: the traceparent makes every statement new, so asyncpg's statement cache never hits ({commented / plain:.0f}x the prepares)",
                fix,
            )
        return self.passed(measured)
