"""A live check: one module, one class. Its docstring is its documentation; `run` judges the
observations the probe gathered and returns one CheckResult."""

from __future__ import annotations

from typing import ClassVar

from otel_sqla_doctor.live.model import CheckResult, Status
from otel_sqla_doctor.live.observations import Observations


class Check:
    code: ClassVar[str]
    name: ClassVar[str]
    title: ClassVar[str]

    def run(self, obs: Observations) -> CheckResult:
        raise NotImplementedError

    def result(self, status: Status, detail: str, remediation: str | None = None) -> CheckResult:
        if status in (Status.PASS, Status.SKIP):
            remediation = None
        return CheckResult(self.code, self.name, self.title, status, detail, remediation)

    def passed(self, detail: str) -> CheckResult:
        return self.result(Status.PASS, detail)

    def warned(self, detail: str, remediation: str) -> CheckResult:
        return self.result(Status.WARN, detail, remediation)

    def failed(self, detail: str, remediation: str | None) -> CheckResult:
        return self.result(Status.FAIL, detail, remediation)

    def skipped(self, detail: str) -> CheckResult:
        return self.result(Status.SKIP, detail)

    def needs_connection(self, obs: Observations) -> CheckResult | None:
        """A skip result when there is no connection to run on, else None."""
        if obs.connect is None or not obs.connect.ok:
            return self.skipped("skipped: no database connection (see OSD501)")
        return None

    def needs_query(self, obs: Observations) -> CheckResult | None:
        """A skip result when the probe query did not run, else None."""
        blocked = self.needs_connection(obs)
        if blocked or obs.query is None:
            return blocked or self.skipped("skipped: the probe query did not run")
        if obs.query.error:
            return self.skipped(f"skipped: the probe query failed ({obs.query.error})")
        return None
