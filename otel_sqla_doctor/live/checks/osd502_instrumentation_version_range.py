"""OSD502 instrumentation-version-range: the installed SQLAlchemy is inside the range the
installed opentelemetry-instrumentation-sqlalchemy declares (its `_instruments`).

Outside it, `instrument()` instruments nothing, raises nothing and logs one ERROR line
(0.66b1 declares `sqlalchemy >= 1.0.0, < 2.1.0`, so SQLAlchemy 2.1 gets no spans at all). When
this fails, the probe instruments its own engine with `skip_dep_check=True` so that the other
checks still tell the user everything else. Static twin: OSD107.
"""

from __future__ import annotations

from otel_sqla_doctor.live.checks.base import Check
from otel_sqla_doctor.live.model import CheckResult
from otel_sqla_doctor.live.observations import Observations


class InstrumentationVersionRange(Check):
    code = "OSD502"
    name = "instrumentation-version-range"
    title = "SQLAlchemy inside the instrumentation's declared range"

    def run(self, obs: Observations) -> CheckResult:
        versions = obs.versions
        if versions.instrumentation_version is None:
            return self.failed(
                f"opentelemetry-instrumentation-sqlalchemy is not installed (SQLAlchemy {versions.sqlalchemy_version})",
                "pip install opentelemetry-instrumentation-sqlalchemy",
            )
        declared = ", ".join(versions.requirements) or "no constraint"
        where = f"opentelemetry-instrumentation-sqlalchemy {versions.instrumentation_version} declares {declared!r}"
        if versions.in_range:
            return self.passed(f"SQLAlchemy {versions.sqlalchemy_version} is inside the range: {where}")
        also = "; the other checks ran with skip_dep_check=True" if obs.wiring.mode == "doctor" else ""
        return self.failed(
            f"SQLAlchemy {versions.sqlalchemy_version} is outside the range, so instrument() instruments nothing "
            f"(one ERROR log line, no exception): {where}{also}",
            "pin SQLAlchemy inside the range (e.g. 'sqlalchemy>=2.0,<2.1'), or pass skip_dep_check=True to "
            "SQLAlchemyInstrumentor().instrument(...) and test it (static rule OSD107)",
        )
