"""Which of the packages the probe depends on are installed in the interpreter it runs in.

Read from the installed distributions' metadata, never by importing them: importing
`sqlalchemy.ext.asyncio` or the instrumentation before the user's own setup would change the very
import order that decides whether their engine gets one tracer or two.
"""

from __future__ import annotations

from importlib import metadata

from otel_sqla_doctor.errors import UsageError

SQLALCHEMY = "sqlalchemy"
SDK = "opentelemetry-sdk"
INSTRUMENTATION = "opentelemetry-instrumentation-sqlalchemy"

# What the probe itself needs, with the reason a user reads when one is missing.
REQUIRED: tuple[tuple[str, str], ...] = (
    (SQLALCHEMY, "the probe runs its query through SQLAlchemy"),
    ("greenlet", "SQLAlchemy's asyncio engine needs it (sqlalchemy[asyncio])"),
    (SDK, "the probe records spans with the SDK; without it an app has no TracerProvider either"),
    (INSTRUMENTATION, "it is what makes the database spans"),
)

# Driver name in a URL (`postgresql+psycopg_async`) -> the distribution that provides it.
DRIVER_DISTRIBUTIONS = {
    "asyncpg": "asyncpg",
    "aiosqlite": "aiosqlite",
    "aiomysql": "aiomysql",
    "asyncmy": "asyncmy",
    "psycopg": "psycopg",
    "psycopg_async": "psycopg",
}

# Top-level module -> distribution, for an import that failed inside the user's code.
_MODULE_DISTRIBUTIONS = {"sqlalchemy": SQLALCHEMY, "greenlet": "greenlet", **{d: d for d in DRIVER_DISTRIBUTIONS.values()}}


class MissingPackage(UsageError):
    """A package the probe needs is not installed in the interpreter it runs in.

    Exit code 1, not 2: the command line is fine, the environment is what cannot trace (a
    UsageError subclass all the same, so library callers catch it where they catch the others).
    """

    exit_code = 1

    def __init__(self, package: str, why: str, python: str | None = None, whose: str | None = None) -> None:
        self.package, self.why, self.python, self.whose = package, why, python, whose
        where = f" in {python}" if python else ""
        whose_text = f" ({whose})" if whose else ""
        install = f"{python} -m pip install {package}" if python else f"pip install {package}"
        super().__init__(f"{package} is not installed{where}{whose_text}, and {why}; install it there: {install}")

    def located(self, python: str, whose: str) -> "MissingPackage":
        return MissingPackage(self.package, self.why, python, whose)


def version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def require(distributions: tuple[tuple[str, str], ...] = REQUIRED) -> None:
    """Raise MissingPackage for the first distribution that is not installed."""
    for distribution, why in distributions:
        if version_of(distribution) is None:
            raise MissingPackage(distribution, why)


def missing_module(module: str | None) -> str | None:
    """The distribution to install when importing `module` failed, if it is one the probe knows."""
    if not module:
        return None
    if module == "opentelemetry.sdk" or module.startswith("opentelemetry.sdk."):
        return SDK
    if module.startswith("opentelemetry.instrumentation.sqlalchemy"):
        return INSTRUMENTATION
    if module.split(".")[0] == "opentelemetry":
        return None  # some other OpenTelemetry package: the user's import error says which
    return _MODULE_DISTRIBUTIONS.get(module.split(".")[0])


def installed_versions(driver: str | None) -> dict[str, str | None]:
    """The versions a report names: SQLAlchemy, the SDK, the instrumentation and the driver in use."""
    names = [SQLALCHEMY, SDK, INSTRUMENTATION]
    distribution = DRIVER_DISTRIBUTIONS.get(driver or "")
    if distribution:
        names.append(distribution)
    return {name: version_of(name) for name in names}
