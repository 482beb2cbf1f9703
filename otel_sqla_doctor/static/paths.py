"""What a file of the scanned project is for: the service, its tests, an example, a one-off script
or a database migration. One classifier, used by every rule that weighs harm by where code runs.

A finding whose harm needs production traffic (span cardinality, a blocked event loop under load,
statement-cache churn, an engine nobody traces) means little in a test body, a README example or
a migration that runs once; each rule's docs say which roles it reports. A module that runs as
a command-line tool (`if __name__ == "__main__":` with argparse, click or typer, and no server
app) is a script wherever it sits (the scanner decides that from the index). Projects that lay
themselves out differently say so in `[tool.otel-sqla-doctor] path-roles`
(`{ "ops/**" = "script" }`); those globs are tried before the defaults below.
"""

from __future__ import annotations

from enum import Enum
from typing import Mapping, Optional


class PathRole(str, Enum):
    SERVICE = "service"
    TEST = "test"
    EXAMPLE = "example"
    SCRIPT = "script"
    MIGRATION = "migration"


_TEST_DIRS = frozenset({"tests", "test", "testing", "testutils", "test_utils", "e2e", "integration_tests", "unit_tests", "functional_tests"})
_EXAMPLE_DIRS = frozenset({"examples", "example", "samples", "sample", "demo", "demos", "docs", "docs_src", "doc", "tutorial", "tutorials", "cookbook", "recipes", "playground", "sandbox", "benchmarks", "benchmark", "bench"})
# Not `tools`: in agent services that is where the service's own tools live.
_SCRIPT_DIRS = frozenset({"scripts", "script", "bin", "devtools", "hack"})

_configured: tuple[tuple[str, PathRole], ...] = ()


def configure(path_roles: Optional[Mapping[str, str]]) -> None:
    """Set the project's own globs (from the configuration); called once per scan and per worker."""
    global _configured
    _configured = tuple((glob, PathRole(role)) for glob, role in (path_roles or {}).items())


def configured() -> dict[str, str]:
    return {glob: role.value for glob, role in _configured}


def role_of(path: str) -> PathRole:
    """The role of a project-relative path (posix or Windows separators)."""
    path = path.replace("\\", "/")
    if _configured:
        from otel_sqla_doctor.static.discovery import matches_any

        for glob, role in _configured:
            if matches_any(path, [glob]):
                return role
    parts = path.split("/")
    name, directories = parts[-1], [p.lower() for p in parts[:-1]]
    if name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py") or name == "tests.py":
        return PathRole.TEST
    # The innermost telling directory decides: `tests/scripts/x.py` is a test helper,
    # `examples/app/tests/x.py` a test of an example.
    for directory in reversed(directories):
        if directory in _TEST_DIRS:
            return PathRole.TEST
        if "alembic" in directory or "migration" in directory:  # alembic/, migrations/, db_migrations/
            return PathRole.MIGRATION
        if directory in _EXAMPLE_DIRS:
            return PathRole.EXAMPLE
        if directory in _SCRIPT_DIRS:
            return PathRole.SCRIPT
    return PathRole.SERVICE


def configured_for(path: str) -> bool:
    """The project's own `path-roles` globs say what this file is."""
    if not _configured:
        return False
    from otel_sqla_doctor.static.discovery import matches_any

    return any(matches_any(path.replace("\\", "/"), [glob]) for glob, _ in _configured)


def is_test(path: str) -> bool:
    """Runs under pytest, in its own process, with its own tracing set-up."""
    return role_of(path) is PathRole.TEST


def is_service(path: str) -> bool:
    return role_of(path) is PathRole.SERVICE

