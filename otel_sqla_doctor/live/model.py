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
class ProbeEnvironment:
    """The interpreter the checks ran in, why that one, and the versions it has installed.

    `application` is False when no application environment was found and the doctor's own ran
    the checks: then the versions are the doctor's, not the application's.
    """

    python: str
    python_version: str
    reason: str
    application: bool
    packages: tuple[tuple[str, str | None], ...]  # (distribution, version or None), report order

    @property
    def whose(self) -> str:
        return "application" if self.application else "doctor"

    def to_dict(self) -> dict:
        return {
            "python": self.python,
            "python_version": self.python_version,
            "whose": self.whose,
            "reason": self.reason,
            "packages": dict(self.packages),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ProbeEnvironment":
        return cls(
            python=data["python"],
            python_version=data["python_version"],
            reason=data["reason"],
            application=data["whose"] == "application",
            packages=tuple((name, version) for name, version in data["packages"].items()),
        )


@dataclass(frozen=True)
class ProbeReport:
    """Everything one probe found, in check order, and the environment it ran in."""

    version: str
    target: str
    checks: tuple[CheckResult, ...]
    environment: ProbeEnvironment | None = None

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
        data: dict = {"version": self.version, "target": self.target}
        if self.environment is not None:
            data["environment"] = self.environment.to_dict()
        data["checks"] = [c.to_dict() for c in self.checks]
        return data

    @classmethod
    def from_dict(cls, data: dict, titles: dict[str, str] | None = None) -> "ProbeReport":
        """The inverse of `to_dict` (the probe run in another interpreter sends its report so)."""
        titles = titles or {}
        checks = tuple(
            CheckResult(c["code"], c["name"], titles.get(c["code"], c["name"]), Status(c["status"]), c["detail"], c["remediation"])
            for c in data["checks"]
        )
        environment = ProbeEnvironment.from_dict(data["environment"]) if data.get("environment") else None
        return cls(version=data["version"], target=data["target"], checks=checks, environment=environment)
