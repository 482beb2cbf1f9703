from __future__ import annotations

from pathlib import PurePosixPath
from typing import Iterable, Iterator, Optional

from otel_sqla_doctor import versions
from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.dependencies import Dependency, all_dependencies, groups
from otel_sqla_doctor.static.rule import Invalid, ProjectReport, Rule, Valid


class SqlalchemyOutsideInstrumentedRange(Rule):
    """
    The dependency files allow or pin a SQLAlchemy that the SQLAlchemy instrumentation refuses to instrument.

    ## What it does
    Reads the project's dependency files (`pyproject.toml`: PEP 621 `dependencies` and
    `optional-dependencies`, `dependency-groups`, Poetry's dependency tables and uv's
    `constraint-dependencies`/`override-dependencies`; `requirements*.txt`; and the pinned versions
    in `uv.lock`, `poetry.lock` and `pdm.lock`). It finds the opentelemetry-instrumentation-sqlalchemy
    release the project gets (the locked one, else the newest release its requirement allows, else
    the newest release when the code imports it unpinned), looks up the SQLAlchemy range that release
    declares (`otel_sqla_doctor/versions.py`), and reports a SQLAlchemy requirement or pin outside it:
    - a pin (a lock entry, `==2.1.9`, or a requirement that only allows versions outside): **error**;
    - an open requirement (`sqlalchemy>=2.0`, Poetry `^2.0`) whose newest allowed release is
      outside the range, e.g. SQLAlchemy 2.1.9 today: **warning**, since a fresh resolve (a new
      virtualenv, a Docker build, `uv lock --upgrade`) picks it.

    ## Why is this bad?
    `SQLAlchemyInstrumentor().instrument()` checks the installed SQLAlchemy against the range its
    release declares (0.50b0 to at least 0.66b2: `sqlalchemy >= 1.0.0, < 2.1.0`). Outside it, it
    instruments nothing: it returns None, raises nothing, patches nothing (`create_async_engine`
    stays a plain function) and logs a single ERROR line, `SQLAlchemyInstrumentor only instruments
    "sqlalchemy >= 1.0.0, < 2.1.0", but currently installed version ("sqlalchemy 2.1.9") falls
    outside of that range, so nothing can be instrumented.` There are no database spans at all,
    under `opentelemetry-instrument` too. `pip check` does not notice: the constraint lives only in
    the instrumentation's `instruments` extra, so resolvers happily install SQLAlchemy 2.1 beside it.

    ## Example
    ```toml
    [project]
    dependencies = [
        "sqlalchemy[asyncio]>=2.0",
        "opentelemetry-instrumentation-sqlalchemy>=0.50b0",
    ]
    ```

    ## Use instead
    ```toml
    [project]
    dependencies = [
        "sqlalchemy[asyncio]>=2.0,<2.1",
        "opentelemetry-instrumentation-sqlalchemy>=0.50b0",
    ]
    ```
    and re-lock. Or, after testing that SQLAlchemy release, pass `skip_dep_check=True` to
    `instrument()`; it worked on 2.1.9 in everything tests/rules/test_osd107_live.py checks.

    ## Known problems
    - Instrumentation releases newer than the table in `otel_sqla_doctor/versions.py` (newest:
      0.66b2, as of 2026-11-29) are not judged: their range is unknown until the table is updated.
      Messages that rely on "the newest release" say which day that was ("as of <date>").
    - Constraints the doctor cannot read are not applied: a requirements file with `-c other.txt`
      is only checked for pins, and constraint files not named `requirements*.txt` are not read.
      Environment markers (`; python_version < "3.11"`) are ignored.
    - An open requirement is not reported when the project also pins SQLAlchemy (a lock file or an
      `==` pin): the pin decides what gets installed, and a pin outside the range is reported once,
      where it is. So a lock that pins 2.0.x hides that the next `uv lock --upgrade` picks 2.1.
    - SQLAlchemy pulled in only indirectly (through SQLModel, say) is not checked: those packages
      bound it themselves.
    - The newest SQLAlchemy release of each series is a snapshot (`versions.py`); messages name the
      day it was taken ("newest as of <date>").

    ## References
    - reproduced by tests/rules/test_osd107_live.py in the otel-sqla-doctor repository (the ERROR line, no spans,
      `skip_dep_check=True` works)
    - open-telemetry/opentelemetry-python-contrib#2971 (the `< 2.1.0` bound, 0.50b0)
    - https://packaging.python.org/en/latest/specifications/version-specifiers/
    """

    CODE = "OSD107"
    NAME = "sqlalchemy-outside-instrumented-range"
    FAMILY = "wiring"
    SEVERITY = Severity.ERROR
    MESSAGE = (
        "SQLAlchemy outside the range the SQLAlchemy instrumentation declares: instrument() instruments "
        "nothing and logs a single ERROR line, so there are no database spans at all"
    )
    HINT = (
        "bound SQLAlchemy inside the instrumentation's range (e.g. `sqlalchemy>=2.0,<2.1`) and re-lock, or pass "
        "`skip_dep_check=True` to instrument() once you have tested that SQLAlchemy release"
    )
    PREFILTER = ()
    FIX = None

    @classmethod
    def check_project(cls, index, options: dict) -> Iterable[ProjectReport]:
        texts = index.files.texts
        if not texts:
            return []
        deps = [
            d for d in all_dependencies(texts, {versions.SQLALCHEMY, versions.INSTRUMENTATION})
            # A constraints file installs nothing: it only narrows what other files ask for
            # (its lower bounds are often security floors).
            if not ("constraint" in PurePosixPath(d.path).name.lower() and not d.pinned)
        ]
        # When some dependency file of the repository declares the instrumentation, the files
        # that do not belong to projects (or images) that do not install it: they say nothing.
        # Only when none declares it does code that imports it stand for "the newest release".
        declared_somewhere = any(d.name == versions.INSTRUMENTATION for d in deps)
        code_imports_it = not declared_somewhere and _code_imports_instrumentation(index)
        reports: dict[tuple[str, int], ProjectReport] = {}
        for members in groups(deps).values():
            instrumentation = _instrumentation(members, code_imports_it)
            if instrumentation is None:
                continue
            version, how = instrumentation
            entry = versions.declared_range(version)
            if entry is None or not entry.sqlalchemy:
                continue
            for report in _judge(members, version, how, entry.sqlalchemy, texts):
                reports.setdefault((report.path, report.line), report)
        return [reports[key] for key in sorted(reports)]

    VALID = [
        Valid(
            {
                "pyproject.toml": """
                    [project]
                    name = "orders"
                    version = "1.0"
                    dependencies = [
                        "sqlalchemy[asyncio]>=2.0,<2.1",
                        "asyncpg>=0.29",
                        "opentelemetry-instrumentation-sqlalchemy>=0.50b0",
                    ]
                """,
            },
            note="bounded below 2.1",
        ),
        Valid(
            {
                "pyproject.toml": """
                    [project]
                    name = "orders"
                    version = "1.0"
                    dependencies = ["sqlalchemy[asyncio]>=2.0", "opentelemetry-instrumentation-sqlalchemy>=0.50b0"]
                """,
                "uv.lock": """
                    version = 1

                    [[package]]
                    name = "opentelemetry-instrumentation-sqlalchemy"
                    version = "0.66b1"

                    [[package]]
                    name = "sqlalchemy"
                    version = "2.0.58"
                """,
            },
            note="open requirement, but the lock pins 2.0.58: what gets installed is instrumented",
        ),
        Valid(
            {
                "requirements.txt": """
                    sqlalchemy[asyncio]>=2.0
                    opentelemetry-instrumentation-sqlalchemy[instruments]==0.66b1
                """,
            },
            note="the `instruments` extra makes the resolver keep SQLAlchemy inside the range",
        ),
        Valid(
            {
                "requirements.txt": """
                    sqlalchemy>=2.0
                    fastapi
                """,
                "app.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine

                    engine = create_async_engine("sqlite+aiosqlite://")
                """,
            },
            note="no SQLAlchemy instrumentation in the project",
        ),
        Valid(
            {
                "pyproject.toml": """
                    [project]
                    name = "legacy"
                    version = "1.0"
                    dependencies = ["sqlalchemy>=2.0", "opentelemetry-instrumentation-sqlalchemy==0.48b0"]
                """,
            },
            note="releases before 0.50b0 declare no upper bound",
        ),
        Valid(
            {
                "pyproject.toml": """
                    [project]
                    name = "orders"
                    version = "1.0"
                    dependencies = ["sqlalchemy[asyncio]>=2.0", "opentelemetry-instrumentation-sqlalchemy"]

                    [tool.uv]
                    constraint-dependencies = ["sqlalchemy<2.1"]
                """,
            },
            note="uv constraint keeps it below 2.1",
        ),
        Valid(
            {
                "pyproject.toml": """
                    [tool.poetry]
                    name = "orders"
                    version = "1.0"

                    [tool.poetry.dependencies]
                    python = "^3.11"
                    SQLAlchemy = {version = "~2.0.30", extras = ["asyncio"]}
                    opentelemetry-instrumentation-sqlalchemy = "^0.66b1"
                """,
            },
            note="Poetry tilde: >=2.0.30,<2.1.0",
        ),
        Valid(
            {
                "requirements/constraints.txt": """
                    sqlalchemy>=1.3.3  # security floor for every service
                """,
                "services/api/requirements/_base.txt": """
                    sqlalchemy==2.0.51
                    opentelemetry-instrumentation-sqlalchemy==0.66b1
                """,
                "libs/toolkit/pyproject.toml": """
                    [project]
                    name = "toolkit"
                    version = "1.0"
                    dependencies = ["sqlalchemy>=2.0"]
                """,
            },
            note="a constraints file installs nothing; a project that does not install the instrumentation says nothing",
        ),
    ]
    INVALID = [
        Invalid(
            {
                "pyproject.toml": """
                    [project]
                    name = "orders"
                    version = "1.0"
                    dependencies = [
                        "sqlalchemy[asyncio]>=2.0",  # ERROR
                        "asyncpg>=0.29",
                        "opentelemetry-instrumentation-sqlalchemy>=0.50b0",
                    ]
                """,
            },
            note="an open requirement: a fresh resolve picks 2.1 today (warning)",
        ),
        Invalid(
            {
                "pyproject.toml": """
                    [project]
                    name = "orders"
                    version = "1.0"
                    dependencies = ["SQLAlchemy[asyncio]>=2.0", "opentelemetry-instrumentation-sqlalchemy>=0.50b0"]
                """,
                "uv.lock": """
                    version = 1
                    requires-python = ">=3.11"

                    [[package]]
                    name = "opentelemetry-instrumentation-sqlalchemy"
                    version = "0.66b1"
                    source = { registry = "https://pypi.org/simple" }

                    [[package]]
                    name = "sqlalchemy"
                    version = "2.1.9"  # ERROR
                    source = { registry = "https://pypi.org/simple" }
                """,
            },
            note="the lock pins 2.1.9: reported once, at the pin (error)",
        ),
        Invalid(
            {
                "requirements.txt": """
                    # pip-compile output
                    fastapi==0.115.0
                    sqlalchemy[asyncio]==2.1.9 \\
                        --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000  # ERROR
                    opentelemetry-instrumentation-sqlalchemy==0.66b1
                """,
            },
            note="a hashed pin in requirements.txt (reported on the line the requirement ends)",
        ),
        Invalid(
            {
                "requirements/base.txt": """
                    SQLAlchemy>=2.0  # ERROR
                    asyncpg
                """,
                "app/telemetry.py": """
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor as SAI

                    def setup_tracing(engine) -> None:
                        SAI().instrument(engine=engine.sync_engine)
                """,
            },
            note="instrumentation not pinned anywhere, imported by the code: the newest release",
        ),
        Invalid(
            {
                "pyproject.toml": """
                    [tool.poetry]
                    name = "orders"
                    version = "1.0"

                    [tool.poetry.dependencies]
                    python = "^3.11"
                    sqlalchemy = {version = "^2.0", extras = ["asyncio"]}
                    opentelemetry-instrumentation-sqlalchemy = "0.66b1"
                """,
                "poetry.lock": """
                    [[package]]
                    name = "sqlalchemy"
                    version = "2.1.9"  # ERROR
                    description = "Database Abstraction Library"

                    [[package]]
                    name = "opentelemetry-instrumentation-sqlalchemy"
                    version = "0.66b1"
                """,
            },
            note="Poetry caret and its lock: reported once, at the lock's pin",
        ),
        Invalid(
            {
                "pyproject.toml": """
                    [project]
                    name = "orders"
                    version = "1.0"
                    dependencies = ["opentelemetry-instrumentation-sqlalchemy==0.66b1"]

                    [project.optional-dependencies]
                    db = ["sqlalchemy==2.1.*"]  # ERROR
                """,
            },
            note="a requirement that allows only versions outside the range (error)",
        ),
    ]


# -- judgement -------------------------------------------------------------------------------------
def _code_imports_instrumentation(index) -> bool:
    for facts in index.modules:
        for site in facts.imports:
            if site.module == "opentelemetry.instrumentation.sqlalchemy" or site.module.startswith("opentelemetry.instrumentation.sqlalchemy."):
                return True
            if site.module == "opentelemetry.instrumentation" and "sqlalchemy" in site.names:
                return True
    return False


def _newest_allowed(specifiers: list[str], candidates: Iterable[str]) -> Optional[str]:
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    allowed = [c for c in candidates if all(SpecifierSet(s).contains(Version(c), prereleases=True) for s in specifiers)]
    return max(allowed, key=Version) if allowed else None


def _bounds(specifiers: Iterable[str]) -> set[str]:
    """The versions a specifier set names (`>=0.55b0` -> 0.55b0), as extra candidates."""
    from packaging.specifiers import SpecifierSet

    found = set()
    for specifier in specifiers:
        for spec in SpecifierSet(specifier):
            version = spec.version.replace(".*", "")
            if version and version[0].isdigit():
                found.add(version)
    return found


def _instrumentation(members: list[Dependency], code_imports_it: bool) -> Optional[tuple[str, str]]:
    """The instrumentation release this project gets, and how we know: (version, phrase)."""
    declared = [d for d in members if d.name == versions.INSTRUMENTATION]
    locked = [d for d in declared if d.locked]
    if locked:
        return locked[0].pinned, f"locked in {locked[0].path}"
    pinned = [d for d in declared if d.pinned]
    if pinned:
        return pinned[0].pinned, f"pinned in {pinned[0].path}"
    if declared:
        specifiers = [d.specifier for d in declared if d.specifier]
        candidates = set(versions.instrumentation_releases()) | _bounds(specifiers)
        newest = _newest_allowed(specifiers, candidates)
        if newest is None:
            return None
        shown = ", ".join(sorted({d.text for d in declared}))
        return newest, f"the newest release `{shown}` allows as of {versions.INSTRUMENTATION_TABLE_DATE}"
    if code_imports_it:
        return versions.NEWEST_INSTRUMENTATION, f"not pinned: the newest release as of {versions.INSTRUMENTATION_TABLE_DATE}"
    return None


def _sqlalchemy_candidates(specifiers: list[str]) -> set[str]:
    candidates = set(versions.SQLALCHEMY_NEWEST_BY_SERIES.values())
    candidates |= {f"{series}.0" for series in versions.SQLALCHEMY_NEWEST_BY_SERIES}
    return candidates | _bounds(specifiers)


def _judge(members: list[Dependency], version: str, how: str, declared: str, texts: dict) -> Iterator[ProjectReport]:
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    in_range = SpecifierSet(declared)
    where = f"opentelemetry-instrumentation-sqlalchemy {version} ({how}) instruments only `sqlalchemy{declared}`"

    def inside(v: str) -> bool:
        try:
            return in_range.contains(Version(v), prereleases=True)
        except InvalidVersion:
            return True  # not judged

    # The `instruments` extra makes resolvers honour the range themselves.
    extra_guards = any("instruments" in d.extras for d in members if d.name == versions.INSTRUMENTATION)
    sqlalchemy = [d for d in members if d.name == versions.SQLALCHEMY]
    # A pin (lock entry or `==`) decides what gets installed: open requirements beside one are
    # not reported on their own (a pin outside the range is, once, where it is).
    pinned = any(d.pinned for d in sqlalchemy)
    for dep in sqlalchemy:
        if dep.pinned:
            if not inside(dep.pinned):
                what = "locks" if dep.locked else "pins"
                yield ProjectReport(
                    dep.path, dep.line, dep.column, dep.line, dep.end_column,
                    message=(
                        f"{PurePosixPath(dep.path).name} {what} SQLAlchemy {dep.pinned}, but {where}: instrument() "
                        "instruments nothing, raises nothing and logs a single ERROR line, so there are no database "
                        "spans at all"
                    ),
                    severity=Severity.ERROR,
                )
            continue
        specifiers = [s for s in (dep.specifier, *dep.overrides) if s]
        newest = _newest_allowed(specifiers, _sqlalchemy_candidates(specifiers))
        if newest is None or inside(newest):
            continue
        allowed = [c for c in _sqlalchemy_candidates(specifiers) if _newest_allowed(specifiers, [c])]
        if not any(inside(c) for c in allowed):
            yield ProjectReport(
                dep.path, dep.line, dep.column, dep.line, dep.end_column,
                message=(
                    f"`{dep.text}` allows only SQLAlchemy releases outside the range: {where}. instrument() "
                    "instruments nothing and logs a single ERROR line, so there are no database spans at all"
                ),
                severity=Severity.ERROR,
            )
            continue
        if extra_guards or pinned or dep.constraints_unknown:
            continue
        yield ProjectReport(
            dep.path, dep.line, dep.column, dep.line, dep.end_column,
            message=(
                f"`{dep.text}` lets the resolver pick SQLAlchemy {newest} (the newest it allows as of "
                f"{versions.SQLALCHEMY_TABLE_DATE}) in a new virtualenv, a Docker build or a re-lock, but {where}: with it, instrument() instruments nothing and logs a single ERROR line, "
                "so there are no database spans at all"
            ),
            severity=Severity.WARNING,
        )
