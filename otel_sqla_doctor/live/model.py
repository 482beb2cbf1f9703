"""The probe's results as plain, frozen data: what `probe()` returns and the reporters print."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict. `remediation` is None when the check passed or was skipped."""

    code: str
    name: str
    title: str
    status: Status
    detail: str
    remediation: str | None = None

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "remediation": self.remediation,
        }


@dataclass(frozen=True)
class ProbeReport:
    """Everything one probe found, in check order."""

    version: str
    target: str
    checks: tuple[CheckResult, ...]

    @property
    def failed(self) -> bool:
        return any(check.status is Status.FAIL for check in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed (warnings allowed), 1 when any check failed."""
        return 1 if self.failed else 0

    def count(self, status: Status) -> int:
        return sum(1 for check in self.checks if check.status is status)

    def check(self, code: str) -> CheckResult:
        return next(check for check in self.checks if check.code == code)

    def to_dict(self) -> dict:
        return {"version": self.version, "target": self.target, "checks": [c.to_dict() for c in self.checks]}
