from __future__ import annotations

from typing import Iterable, Optional

from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.dependencies import LAUNCHER, all_dependencies, command_lines, disabled_instrumentations
from otel_sqla_doctor.static.known import DRIVER_INSTRUMENTORS, SQLALCHEMY_INSTRUMENTOR
from otel_sqla_doctor.static.patterns import exclusive, instrumentor_call
from otel_sqla_doctor.static.rule import Invalid, ProjectReport, Rule, Valid

# Driver -> (its instrumentation's distribution, its name for OTEL_PYTHON_DISABLED_INSTRUMENTATIONS).
DRIVER_PACKAGES: dict[str, tuple[str, str]] = {
    "asyncpg": ("opentelemetry-instrumentation-asyncpg", "asyncpg"),
    "psycopg": ("opentelemetry-instrumentation-psycopg", "psycopg"),
    "psycopg2": ("opentelemetry-instrumentation-psycopg2", "psycopg2"),
    "aiopg": ("opentelemetry-instrumentation-aiopg", "aiopg"),
    "pymysql": ("opentelemetry-instrumentation-pymysql", "pymysql"),
    "mysqlclient": ("opentelemetry-instrumentation-mysqlclient", "mysqlclient"),
    "mysql-connector": ("opentelemetry-instrumentation-mysql", "mysql"),
    "sqlite3": ("opentelemetry-instrumentation-sqlite3", "sqlite3"),
}
SQLALCHEMY_PACKAGE = "opentelemetry-instrumentation-sqlalchemy"


class DuplicateDriverInstrumentation(Rule):
    """
    A DB-driver instrumentor (AsyncPGInstrumentor, Psycopg2Instrumentor, ...) enabled beside SQLAlchemyInstrumentor.

    ## What it does
    Finds a database-driver instrumentor (`AsyncPGInstrumentor`, `PsycopgInstrumentor`,
    `Psycopg2Instrumentor`, `AiopgInstrumentor`, `PyMySQLInstrumentor`, `MySQLClientInstrumentor`,
    `MySQLInstrumentor`, `SQLite3Instrumentor`) instrumented in the same process as
    `SQLAlchemyInstrumentor`: both `instrument()` calls in the code (across modules and aliases),
    or the `opentelemetry-instrument` launcher (in a Dockerfile, Procfile, compose file or script),
    which enables every installed instrumentor, with the driver's instrumentation package
    (`opentelemetry-instrumentation-asyncpg`, ...) in the dependency files.

    ## Why is this bad?
    Both layers trace the same statement: one `SELECT` through an asyncpg engine gives a SQLAlchemy
    `SELECT` span and an asyncpg `SELECT` span (asyncpg's instrumentation wraps
    `PreparedStatement.fetch` since 0.64b0), and they are siblings under the request span, not
    parent and child, because SQLAlchemy's span is current only inside its event listener. Every
    transaction adds asyncpg `BEGIN;`/`ROLLBACK;` spans, and the engine's first connection adds its
    dialect's setup queries: in the live test one query in a request made 6 spans instead of 3 (12 on
    the engine's first connection). Dashboards count each query twice, and span volume (and cost)
    grows accordingly.

    ## Example
    ```python
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
    AsyncPGInstrumentor().instrument()
    ```

    ## Use instead
    ```python
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
    ```
    Under the launcher, disable one of the two:
    `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=asyncpg opentelemetry-instrument uvicorn app.main:app`.

    ## Known problems
    - Releases of `opentelemetry-instrumentation-asyncpg` before 0.64b0 wrap `Connection` methods
      only; SQLAlchemy's asyncpg dialect runs its queries through `PreparedStatement`, so nothing is
      traced twice (only `BEGIN;`/`ROLLBACK;` spans are added). When every pin or lock of it is older,
      asyncpg is not reported; an unpinned one is assumed to be the newest.
    - A project that uses the driver directly too (asyncpg's `COPY`, `LISTEN`/`NOTIFY`) may want the
      driver spans there; the SQLAlchemy queries are still traced twice, so it is still reported.
    - The driver is not matched against the engines' URLs: an `AsyncPGInstrumentor` in a project whose
      SQLAlchemy engines all use another driver is reported although nothing is duplicated.
    - `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS` is only seen in the files the doctor reads (Dockerfiles,
      Procfiles, compose files, scripts, Makefiles), not in Kubernetes manifests or `.env` files.
    - `opentelemetry-bootstrap -a install`, which installs the driver's instrumentation without a
      dependency-file entry, is not followed.
    - With opentelemetry-instrumentation-asyncpg before 0.64b0, SQLAlchemy's queries (prepared
      statements) were not traced by it: only the transaction spans were added. The rule does not
      check that version.

    ## References
    - reproduced by tests/rules/test_osd105_live.py in the otel-sqla-doctor repository (duplicate sibling spans)
    - open-telemetry/opentelemetry-python-contrib PR #4529 / issue #4528 (asyncpg)
    - open-telemetry/opentelemetry-python-contrib#2826 (SQLAlchemy and driver spans are siblings)
    - https://opentelemetry.io/docs/zero-code/python/configuration/#disabling-specific-instrumentations
    """

    CODE = "OSD105"
    NAME = "duplicate-driver-instrumentation"
    FAMILY = "wiring"
    SEVERITY = Severity.WARNING
    MESSAGE = (
        "a DB-driver instrumentor beside SQLAlchemyInstrumentor: every query is traced twice, as two sibling spans "
        "(one from SQLAlchemy, one from the driver)"
    )
    HINT = (
        "keep one layer: drop the driver instrumentor for the databases you reach through SQLAlchemy (under the "
        "launcher: OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=asyncpg)"
    )
    PREFILTER = ()
    FIX = None

    @classmethod
    def check_project(cls, index, options: dict) -> Iterable[ProjectReport]:
        texts = index.files.texts
        launchers = command_lines(texts, LAUNCHER)
        disabled = disabled_instrumentations(texts) if launchers else set()
        wanted = {SQLALCHEMY_PACKAGE} | {package for package, _ in DRIVER_PACKAGES.values()}
        deps = [d for d in all_dependencies(texts, wanted)]
        sqla_installed = any(d.name == SQLALCHEMY_PACKAGE for d in deps) or _imports_sqlalchemy_instrumentation(index)
        launched_sqla = bool(launchers) and sqla_installed and "sqlalchemy" not in disabled

        sqla_sites: list = []
        driver_sites: list = []
        for facts, site in index.all_calls():
            call = instrumentor_call(index, site, ("instrument",))
            if call is None or not call.on_instance:
                continue
            if call.cls == SQLALCHEMY_INSTRUMENTOR:
                sqla_sites.append((facts, site))
            elif call.cls in DRIVER_INSTRUMENTORS and DRIVER_INSTRUMENTORS[call.cls] in DRIVER_PACKAGES:
                driver_sites.append((facts, site, call.cls))

        if _asyncpg_misses_prepared_statements(deps):
            # Before 0.64b0 the asyncpg instrumentation wraps only Connection methods; SQLAlchemy's
            # dialect runs queries through PreparedStatement, so nothing is traced twice (live test).
            driver_sites = [d for d in driver_sites if DRIVER_INSTRUMENTORS[d[2]] != "asyncpg"]
            deps = [d for d in deps if d.name != DRIVER_PACKAGES["asyncpg"][0]]
        reports: list[ProjectReport] = []
        # 1. Both instrumentors instrumented in the code, in one process.
        together = _together(index, {id(s) for _, s in sqla_sites}, {id(s) for _, s, _ in driver_sites})
        for facts, site, cls_name in driver_sites:
            if not site.line:
                continue
            driver = DRIVER_INSTRUMENTORS[cls_name]
            partner = together.get(id(site))
            if partner is not None:
                where = f"instrumented at {partner[0].path}:{partner[1].line}"
            elif launched_sqla and DRIVER_PACKAGES[driver][1] not in disabled:
                where = f"enabled by `{LAUNCHER}` at {launchers[0].path}:{launchers[0].line}"
            else:
                continue
            reports.append(
                ProjectReport(
                    facts.path, site.line, site.column, site.end_line, site.end_column,
                    message=_message(f"`{cls_name.rsplit('.', 1)[-1]}().instrument()`", driver, where),
                )
            )
        # 2. The launcher enables the driver's installed instrumentation beside SQLAlchemy's.
        if launchers and (launched_sqla or sqla_sites):
            coded = {DRIVER_INSTRUMENTORS[c] for _, _, c in driver_sites}
            for driver, (package, entry_point) in DRIVER_PACKAGES.items():
                if entry_point in disabled or driver in coded:
                    continue
                declared = sorted((d for d in deps if d.name == package), key=lambda d: (d.locked, d.path, d.line))
                if not declared:
                    continue
                dep = declared[0]
                if launched_sqla:
                    where = f"both enabled by `{LAUNCHER}` at {launchers[0].path}:{launchers[0].line}"
                else:
                    first = sqla_sites[0]
                    where = (
                        f"enabled by `{LAUNCHER}` at {launchers[0].path}:{launchers[0].line}; SQLAlchemy instrumented "
                        f"at {first[0].path}:{first[1].line}"
                    )
                reports.append(
                    ProjectReport(
                        dep.path, dep.line, dep.column, dep.line, dep.end_column,
                        message=_message(f"`{package}`", driver, where),
                    )
                )
        return reports

    VALID = [
        Valid(
            {
                "requirements.txt": """
                    sqlalchemy[asyncio]==2.0.44
                    asyncpg==0.30.0
                    opentelemetry-instrumentation-sqlalchemy==0.62b0
                    opentelemetry-instrumentation-asyncpg==0.62b0
                """,
                "app.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine
                    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    engine = create_async_engine("postgresql+asyncpg://app@db/app")
                    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
                    AsyncPGInstrumentor().instrument()
                """,
            },
            note="asyncpg instrumentation before 0.64b0 does not see SQLAlchemy's prepared statements",
        ),
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine("postgresql+asyncpg://app@db/app")
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
            """,
            note="SQLAlchemy's instrumentation alone",
        ),
        Valid(
            {
                "api/__init__.py": "",
                "api/main.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    engine = create_async_engine("postgresql+asyncpg://app@db/app")
                    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
                """,
                "listener/__init__.py": "",
                "listener/main.py": """
                    import asyncio
                    import asyncpg
                    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

                    AsyncPGInstrumentor().instrument()

                    async def main() -> None:
                        conn = await asyncpg.connect("postgresql://app@db/app")
                        await conn.add_listener("orders", print)

                    asyncio.run(main())
                """,
            },
            note="raw asyncpg in another process (its own entry point)",
        ),
        Valid(
            {
                "Dockerfile": """
                    FROM python:3.12-slim
                    ENV OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=asyncpg
                    CMD ["opentelemetry-instrument", "uvicorn", "app.main:app"]
                """,
                "requirements.txt": """
                    sqlalchemy[asyncio]>=2.0,<2.1
                    opentelemetry-distro
                    opentelemetry-instrumentation-sqlalchemy
                    opentelemetry-instrumentation-asyncpg
                """,
            },
            note="the launcher, with the asyncpg instrumentation disabled",
        ),
        Valid(
            {
                "Procfile": """
                    # web: opentelemetry-instrument uvicorn app.main:app
                    web: uvicorn app.main:app
                """,
                "requirements.txt": """
                    opentelemetry-instrumentation-sqlalchemy
                    opentelemetry-instrumentation-asyncpg
                """,
            },
            note="the launcher only in a comment",
        ),
        Valid(
            """
            import os
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
            from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

            engine = create_async_engine(os.environ["DATABASE_URL"])
            if os.environ.get("TRACE_LAYER") == "driver":
                AsyncPGInstrumentor().instrument()
            else:
                SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
            """,
            note="one or the other",
        ),
    ]
    INVALID = [
        Invalid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
            from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

            engine = create_async_engine("postgresql+asyncpg://app@db/app")
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
            AsyncPGInstrumentor().instrument()  # ERROR
            """
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/telemetry.py": """
                    from opentelemetry.instrumentation import asyncpg as otel_asyncpg
                    from opentelemetry.instrumentation import sqlalchemy as otel_sa

                    def setup_tracing(engine) -> None:
                        otel_sa.SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
                        driver = otel_asyncpg.AsyncPGInstrumentor()
                        driver.instrument(capture_parameters=False)  # ERROR
                """,
                "app/main.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine
                    from app.telemetry import setup_tracing

                    engine = create_async_engine("postgresql+asyncpg://app@db/app")
                    setup_tracing(engine)
                """,
            },
            note="module aliases, an instance in a variable, across modules",
        ),
        Invalid(
            {
                "Dockerfile": """
                    FROM python:3.12-slim
                    COPY . /srv
                    RUN pip install -r /srv/requirements.txt
                    CMD ["opentelemetry-instrument", "uvicorn", "app.main:app", "--host", "0.0.0.0"]
                """,
                "requirements.txt": """
                    fastapi
                    sqlalchemy[asyncio]>=2.0,<2.1
                    asyncpg
                    opentelemetry-distro
                    opentelemetry-instrumentation-sqlalchemy
                    opentelemetry-instrumentation-asyncpg  # ERROR
                """,
            },
            note="the launcher enables every installed instrumentor",
        ),
        Invalid(
            {
                "Procfile": """
                    web: opentelemetry-instrument gunicorn -k uvicorn.workers.UvicornWorker app.main:app
                """,
                "pyproject.toml": """
                    [project]
                    name = "orders"
                    version = "1.0"
                    dependencies = [
                        "sqlalchemy[asyncio]>=2.0,<2.1",
                        "opentelemetry-instrumentation-psycopg2",  # ERROR
                    ]
                """,
                "app/db.py": """
                    from sqlalchemy import create_engine
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    engine = create_engine("postgresql+psycopg2://app@db/app")
                    SQLAlchemyInstrumentor().instrument(engine=engine)
                """,
            },
            note="SQLAlchemy instrumented in code, the psycopg2 one by the launcher",
        ),
    ]


# The first release of opentelemetry-instrumentation-asyncpg that wraps PreparedStatement methods.
ASYNCPG_PREPARED_STATEMENTS_SINCE = "0.64b0"


def _asyncpg_misses_prepared_statements(deps) -> bool:
    """Every pin or lock of opentelemetry-instrumentation-asyncpg is older than 0.64b0."""
    from packaging.version import InvalidVersion, Version

    pins = [d.pinned for d in deps if d.name == DRIVER_PACKAGES["asyncpg"][0] and d.pinned]
    try:
        return bool(pins) and all(Version(p) < Version(ASYNCPG_PREPARED_STATEMENTS_SINCE) for p in pins)
    except InvalidVersion:
        return False


def _message(what: str, driver: str, where: str) -> str:
    return (
        f"{what} traces the {driver} driver beside the SQLAlchemy instrumentation ({where}): every query through an "
        f"engine on {driver} is traced twice, as two sibling spans under the request span (one SQLAlchemy span, one "
        f"{driver} span), plus driver spans for each BEGIN/ROLLBACK"
    )


def _imports_sqlalchemy_instrumentation(index) -> bool:
    for facts in index.modules:
        for site in facts.imports:
            if site.module.startswith("opentelemetry.instrumentation.sqlalchemy"):
                return True
            if site.module == "opentelemetry.instrumentation" and "sqlalchemy" in site.names:
                return True
    return False


def _together(index, sqla: set[int], drivers: set[int]) -> dict[int, tuple]:
    """Driver call site -> (facts, site) of a SQLAlchemy instrument() call that runs in the same process."""
    found: dict[int, tuple] = {}
    if not sqla or not drivers:
        return found
    for timeline in index.timelines():
        sqla_events = [e for e in timeline if e.kind == "call" and e.site is not None and id(e.site) in sqla]
        for event in timeline:
            if event.kind != "call" or event.site is None or id(event.site) not in drivers or id(event.site) in found:
                continue
            partner: Optional[object] = next((s for s in sqla_events if _same_run(s, event)), None)
            if partner is not None:
                found[id(event.site)] = (partner.module, partner.site)
    return found


def _same_run(a, b) -> bool:
    """Both happen in one run: not alternatives, and not two different later entry functions."""
    if exclusive(a.branches, b.branches):
        return False
    if a.late and b.late and (getattr(a, "root", "") or a.via) != (getattr(b, "root", "") or b.via):
        return False
    return True
