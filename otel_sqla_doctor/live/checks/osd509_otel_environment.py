"""OSD509 otel-environment: no OTEL_* environment variable silently turns the database spans off.

Fails for `OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`, a sampler that drops
everything (`always_off`, `parentbased_always_off`, a ratio of 0) and
`OTEL_PYTHON_DISABLED_INSTRUMENTATIONS` naming sqlalchemy (or `*`). Reports which attribute names
`OTEL_SEMCONV_STABILITY_OPT_IN` makes the spans carry.
"""

from __future__ import annotations

from otel_sqla_doctor.live.checks.base import Check
from otel_sqla_doctor.live.model import CheckResult
from otel_sqla_doctor.live.observations import Observations


class OtelEnvironmentCheck(Check):
    code = "OSD509"
    name = "otel-environment"
    title = "OTEL_* environment keeps database spans on"

    def run(self, obs: Observations) -> CheckResult:
        env = obs.env
        problems, fixes = [], []
        if env.sdk_disabled:
            problems.append("OTEL_SDK_DISABLED=true makes every tracer a no-op")
            fixes.append("unset OTEL_SDK_DISABLED")
        if env.traces_exporter == ("none",):
            problems.append("OTEL_TRACES_EXPORTER=none: opentelemetry-instrument exports no spans")
            fixes.append("set OTEL_TRACES_EXPORTER=otlp (or unset it)")
        if env.sampler_drops_everything:
            arg = f" (OTEL_TRACES_SAMPLER_ARG={env.sampler_arg})" if env.sampler_arg else ""
            problems.append(f"OTEL_TRACES_SAMPLER={env.sampler}{arg} drops every trace, and sampled-out queries get no SQL comment")
            fixes.append("use parentbased_always_on or a ratio above 0")
        if env.sqlalchemy_disabled:
            problems.append(f"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS={','.join(env.disabled_instrumentations)} keeps opentelemetry-instrument from instrumenting SQLAlchemy")
            fixes.append("remove sqlalchemy (and *) from OTEL_PYTHON_DISABLED_INSTRUMENTATIONS")
        names = {
            "old": "db.system, db.statement, db.name (OTEL_SEMCONV_STABILITY_OPT_IN has no 'database')",
            "stable": "db.system.name, db.query.text, db.namespace, no db.user (OTEL_SEMCONV_STABILITY_OPT_IN=database)",
            "dup": "old and stable names side by side (OTEL_SEMCONV_STABILITY_OPT_IN=database/dup)",
        }[env.database_semconv]
        if problems:
            return self.failed("; ".join(problems), "; ".join(fixes))
        sampling = f"; sampler {env.sampler}" + (f" {env.sampler_arg}" if env.sampler_arg else "") if env.sampler else ""
        return self.passed(f"no variable turns tracing off{sampling}; spans carry {names}")
