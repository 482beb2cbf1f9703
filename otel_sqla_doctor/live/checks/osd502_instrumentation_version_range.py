"""OSD502 instrumentation-version-range: the installed SQLAlchemy is inside the range the
installed opentelemetry-instrumentation-sqlalchemy declares (its `_instruments`).

Outside it, `instrument()` instruments nothing, raises nothing and logs one ERROR line
(0.66b1 declares `sqlalchemy >= 1.0.0, < 2.1.0`, so SQLAlchemy 2.1 gets no spans at all). When
this fails, the probe instruments its own engine with `skip_dep_check=True` so that the other
checks still tell the user everything else. Static twin: OSD107.

"Installed" means in the application's environment. When none was found and the checks ran in
the doctor's own, the versions there are the doctor's: they are reported, and the verdict for the
application comes from the project's dependency files (warn when there are none to judge).
"""

from __future__ import annotations

from otel_sqla_doctor.live.checks.base import Check
from otel_sqla_doctor.live.model import CheckResult
from otel_sqla_doctor.live.observations import Observations

PIN_FIX = (
    "pin SQLAlchemy inside the range (e.g. 'sqlalchemy>=2.0,<2.1'), or pass skip_dep_check=True to "
    "SQLAlchemyInstrumentor().instrument(...) and test it (static rule OSD107)"
)


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
        if obs.doctor_own_environment:
            return self._for_the_application(obs)
        declared = ", ".join(versions.requirements) or "no constraint"
        where = f"opentelemetry-instrumentation-sqlalchemy {versions.instrumentation_version} declares {declared!r}"
        in_python = f" (in {obs.environment.python})" if obs.environment else ""
        if versions.in_range:
            return self.passed(f"SQLAlchemy {versions.sqlalchemy_version} is inside the range: {where}{in_python}")
        also = "; the other checks ran with skip_dep_check=True" if obs.wiring.mode == "doctor" else ""
        return self.failed(
            f"SQLAlchemy {versions.sqlalchemy_version} is outside the range, so instrument() instruments nothing "
            f"(one ERROR log line, no exception): {where}{also}{in_python}",
            PIN_FIX,
        )

    def _for_the_application(self, obs: Observations) -> CheckResult:
        from otel_sqla_doctor.live.declared import INSIDE, MAY_LEAVE, OUTSIDE

        versions = obs.versions
        side = "inside" if versions.in_range else "outside"
        skipped = "; the other checks ran with skip_dep_check=True" if not versions.in_range and obs.wiring.mode == "doctor" else ""
        own = (
            f"the doctor's own environment has SQLAlchemy {versions.sqlalchemy_version} and "
            f"opentelemetry-instrumentation-sqlalchemy {versions.instrumentation_version} ({side} its range{skipped})"
        )
        declared = obs.declared
        if declared is not None and declared.status == INSIDE:
            return self.passed(f"for the application: {declared.detail}; {own}")
        if declared is not None and declared.status == OUTSIDE:
            return self.failed(f"for the application: {declared.detail}, so instrument() instruments nothing; {own}", PIN_FIX)
        if declared is not None and declared.status == MAY_LEAVE:
            return self.warned(
                f"for the application: {declared.detail}; {own}",
                "bound SQLAlchemy inside the range (e.g. 'sqlalchemy>=2.0,<2.1') and re-lock (static rule OSD107)",
            )
        why = declared.detail if declared is not None else "the project has no dependency files"
        return self.warned(
            f"the application's SQLAlchemy was not seen: no application environment was found and {why}; {own}",
            "run the probe with the application's interpreter (--python PATH, or from its activated virtualenv), "
            "or declare sqlalchemy in the project's dependency files",
        )
