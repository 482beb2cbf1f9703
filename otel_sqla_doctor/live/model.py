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
class UserModule:
    """One piece of the user's start-up (`role`: app, setup or engine): what was given or found,
    what the probe did with it, and the file its module was imported from."""

    role: str
    reference: str
    how: str
    module: str | None = None
    file: str | None = None

    def to_dict(self) -> dict:
        return {"role": self.role, "reference": self.reference, "how": self.how, "module": self.module, "file": self.file}


@dataclass(frozen=True)
class Startup:
    """How the user's application was started before the probe (`--app`, `--setup`, `--engine`)."""

    modules: tuple[UserModule, ...] = ()
    lifespan: str | None = None  # what the ASGI lifespan did; None: no --app
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"modules": [m.to_dict() for m in self.modules], "lifespan": self.lifespan, "warnings": list(self.warnings)}

    @classmethod
    def from_dict(cls, data: dict) -> "Startup":
        return cls(
            modules=tuple(UserModule(**m) for m in data.get("modules", ())),
            lifespan=data.get("lifespan"),
            warnings=tuple(data.get("warnings", ())),
        )


@dataclass(frozen=True)
class ProbeReport:
    """Everything one probe found, in check order, and the environment it ran in."""

    version: str
    target: str
    checks: tuple[CheckResult, ...]
    environment: ProbeEnvironment | None = None
    scope: str | None = None  # what was probed, when it is not the application's own engine (DSN mode)
    startup: Startup | None = None  # with --engine/--app: how the application was started

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
        if self.scope is not None:
            data["scope"] = self.scope
        if self.environment is not None:
            data["environment"] = self.environment.to_dict()
        if self.startup is not None:
            data["startup"] = self.startup.to_dict()
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
        startup = Startup.from_dict(data["startup"]) if data.get("startup") else None
        return cls(version=data["version"], target=data["target"], checks=checks, environment=environment, startup=startup)
