from __future__ import annotations

from typing import Iterable, Optional

from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.rule import Invalid, ProjectReport, Rule, Valid
from otel_sqla_doctor.static.launchers import (
    launchers,
    sqlalchemy_auto_instrumentation_disabled,
    sqlalchemy_instrumentation_installed,
)
from otel_sqla_doctor.static.paths import is_test
from otel_sqla_doctor.static.startup import (
    ASYNCIO_IMPORTERS,
    CREATE_ASYNC_ENGINE,
    creation_function,
    definitely_before,
    engine_label,
    exclusive,
    site_span,
    startup_orders,
)

# Third-party packages whose import imports `sqlalchemy.ext.asyncio` (so it is no longer "first
# imported" afterwards). Listing one too many only makes the rule quieter.
KNOWN_ASYNCIO_IMPORTERS = (
    *ASYNCIO_IMPORTERS,
    "fastapi_users_db_sqlalchemy",
    "advanced_alchemy",
    "sqladmin",
)


class AsyncioImportedAfterGlobalInstrument(Rule):
    """
    `SQLAlchemyInstrumentor().instrument()` runs before `sqlalchemy.ext.asyncio` is first imported, or
    the service starts under `opentelemetry-instrument`: two tracers per AsyncEngine.

    ## What it does
    Simulates the start of each entry module and reports the first
    `SQLAlchemyInstrumentor().instrument()` call when `sqlalchemy.ext.asyncio` is imported only
    after it, and an AsyncEngine is then created through the wrapped `create_async_engine`. It
    also reports an `opentelemetry-instrument` launcher (Dockerfile, Procfile, compose file,
    script, Makefile, pyproject.toml) in a project that creates AsyncEngines (itself, or through a
    library configuration such as advanced-alchemy's `SQLAlchemyAsyncConfig`), since the launcher
    always instruments before the application imports anything.

    Static detection is best effort: a third-party package that imports `sqlalchemy.ext.asyncio`
    itself, before instrument() runs, prevents the problem, and the rule only knows a few of them
    (sqlmodel's asyncio extension, fastapi-users-db-sqlalchemy, advanced-alchemy, sqladmin; add
    yours with the `asyncio_importers` option).

    ## Why is this bad?
    `instrument()` wraps both `sqlalchemy.engine.create_engine` and
    `sqlalchemy.ext.asyncio.create_async_engine`. When `sqlalchemy.ext.asyncio.engine` is first
    imported after that, it binds the *wrapped* `create_engine` as its internal `_create_engine`,
    so every `create_async_engine()` attaches two EngineTracers to the engine: each query starts
    two spans, only one is ended and exported, and the other is never ended (a leak per query,
    upstream #2149). With `enable_commenter=True` every statement also carries two SQL comments,
    the first with the traceparent of the span that is never exported, so the database-side
    correlation points at nothing.

    ## Example
    ```python
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(enable_commenter=True)

    from sqlalchemy.ext.asyncio import create_async_engine  # first import: binds the wrapper
    engine = create_async_engine(DATABASE_URL)
    ```

    ## Use instead
    ```python
    import sqlalchemy.ext.asyncio  # noqa: F401  must be imported before instrument()
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(enable_commenter=True)
    ```
    or create the engine first and instrument it explicitly with
    `instrument(engines=[engine.sync_engine])`. Under `opentelemetry-instrument`, set
    `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=sqlalchemy` and instrument the engine in code.

    ## Known problems
    Best effort (see above): imports done by third-party code are not followed, so a package
    that imports `sqlalchemy.ext.asyncio` early makes this a false positive, and one that
    imports it late hides the problem. Two startup hooks have no known order, so an
    instrument() and an import in different hooks are not reported. The launcher case assumes
    the SQLAlchemy instrumentation is installed when the dependency files mention it (or
    `opentelemetry-bootstrap`) or the code imports it. Measured with SQLAlchemy 2.0.58 and
    opentelemetry-instrumentation-sqlalchemy 0.66b1; a fixed release would make this rule moot.

    ## References
    - reproduced by tests/rules/test_osd106_live.py in the otel-sqla-doctor repository (2 spans started, 1 exported;
      two comments; `opentelemetry-instrument`)
    - open-telemetry/opentelemetry-python-contrib#2149 ("Unclosed Spans and Memory Leak")
    """

    CODE = "OSD106"
    NAME = "asyncio-imported-after-global-instrument"
    FAMILY = "wiring"
    SEVERITY = Severity.WARNING
    MESSAGE = (
        "SQLAlchemyInstrumentor().instrument() runs before `sqlalchemy.ext.asyncio` is first imported: every "
        "AsyncEngine gets two tracers, each query starts two spans and exports one (the other never ends), "
        "and the commenter adds two SQL comments"
    )
    HINT = (
        "`import sqlalchemy.ext.asyncio` before calling instrument(), or instrument the engines explicitly "
        "with `instrument(engines=[engine.sync_engine])`"
    )
    PREFILTER = ()
    FIX = None
    OPTIONS = {"asyncio_importers": []}

    @classmethod
    def check_project(cls, index, options: dict) -> Iterable[ProjectReport]:
        found = launchers(index)
        if found:
            return _launcher_reports(index, found)
        importers = (*KNOWN_ASYNCIO_IMPORTERS, *options.get("asyncio_importers", ()))
        reports: dict[tuple, ProjectReport] = {}
        for order in startup_orders(index, importers):
            if not order.asyncio_imports:
                continue
            for first in order.first_instruments:
                report = _doubled(order, first)
                if report is not None:
                    reports.setdefault((report.path, report.line, report.column), report)
        return [reports[k] for k in sorted(reports)]

    VALID = [
        Valid(
            """
            import sqlalchemy.ext.asyncio
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            SQLAlchemyInstrumentor().instrument()

            from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

            engine = create_async_engine("sqlite+aiosqlite://")
            """,
            note="sqlalchemy.ext.asyncio imported first",
        ),
        Valid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine

                    engine = create_async_engine("postgresql+asyncpg://app@db/app")
                """,
                "app/main.py": """
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                    from app.db import engine

                    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
                """,
            },
            note="engine created first, instrumented explicitly: one tracer",
        ),
        Valid(
            {
                "app/__init__.py": "",
                "app/telemetry.py": """
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                    from sqlalchemy.ext.asyncio import AsyncEngine

                    def setup() -> None:
                        SQLAlchemyInstrumentor().instrument()
                """,
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine

                    engine = create_async_engine("postgresql+asyncpg://app@db/app")
                """,
                "app/main.py": """
                    from app.telemetry import setup

                    setup()

                    from app.db import engine  # noqa: E402
                """,
            },
            note="an AsyncEngine type import in the telemetry module already imported sqlalchemy.ext.asyncio",
        ),
        Valid(
            """
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
            from sqlalchemy import create_engine

            SQLAlchemyInstrumentor().instrument()
            engine = create_engine("postgresql+psycopg://app@db/app")
            """,
            note="no asyncio engine at all",
        ),
        Valid(
            {
                "Dockerfile": """
                    FROM python:3.12-slim
                    ENV OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=sqlalchemy
                    CMD ["opentelemetry-instrument", "python", "-m", "worker"]
                """,
                "requirements.txt": "opentelemetry-instrumentation-sqlalchemy==0.66b1\nsqlalchemy[asyncio]==2.0.58\n",
                "worker/__init__.py": "",
                "worker/__main__.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    engine = create_async_engine("postgresql+asyncpg://w@db/w")
                    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
                """,
            },
            note="the launcher's SQLAlchemy instrumentation is disabled; the code instruments the engine",
        ),
    ]
    INVALID = [
        Invalid(
            {
                "Dockerfile": """
                    FROM python:3.12-slim
                    RUN pip install opentelemetry-distro opentelemetry-instrumentation-sqlalchemy
                    CMD ["opentelemetry-instrument", "uvicorn", "src.main:app"]  # ERROR
                """,
                "src/__init__.py": "",
                "src/main.py": """
                    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
                    from litestar import Litestar

                    def create_app() -> Litestar:
                        db_config = SQLAlchemyAsyncConfig(connection_string="postgresql+asyncpg://app@db/app")
                        return Litestar(plugins=[SQLAlchemyPlugin(config=db_config)])

                    app = create_app()
                """,
            },
            note="the AsyncEngine is created by a library's config (advanced-alchemy) under the launcher",
        ),
        Invalid(
            """
            from opentelemetry.instrumentation import sqlalchemy as otel_sqlalchemy

            otel_sqlalchemy.SQLAlchemyInstrumentor().instrument(enable_commenter=True)  # ERROR

            from sqlalchemy.ext.asyncio import create_async_engine as make_engine  # noqa: E402

            engine = make_engine("postgresql+asyncpg://app@db/app")
            """,
            note="aliased; the first import of sqlalchemy.ext.asyncio comes after instrument()",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/telemetry.py": """
                    from opentelemetry import trace
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                    from opentelemetry.sdk.trace import TracerProvider

                    def setup_tracing() -> None:
                        trace.set_tracer_provider(TracerProvider())
                        SQLAlchemyInstrumentor().instrument()  # ERROR
                """,
                "app/db.py": """
                    import sqlalchemy.ext.asyncio as sa_async

                    engine = sa_async.create_async_engine("postgresql+asyncpg://app@db/app")
                """,
                "app/main.py": """
                    from app.telemetry import setup_tracing

                    setup_tracing()

                    from app import db  # noqa: E402  (after instrument(), as OSD102 asks)
                """,
            },
            note="across modules: the order OSD102 asks for, without the asyncio pre-import",
        ),
        Invalid(
            {
                "pyproject.toml": """
                    [project]
                    name = "orders"
                    version = "1.0"
                    dependencies = ["sqlalchemy[asyncio]==2.0.58", "opentelemetry-instrumentation-sqlalchemy==0.66b1"]

                    [tool.poe.tasks]
                    serve = "opentelemetry-instrument uvicorn orders.main:app"  # ERROR
                """,
                "orders/__init__.py": "",
                "orders/main.py": """
                    from fastapi import FastAPI
                    from sqlalchemy.ext.asyncio import create_async_engine

                    engine = create_async_engine("postgresql+asyncpg://orders@db/orders")
                    app = FastAPI()
                """,
            },
            note="started under opentelemetry-instrument (a poe task in pyproject.toml)",
        ),
    ]


def _doubled(order, first) -> Optional[ProjectReport]:
    """The report for `first` when every import of sqlalchemy.ext.asyncio surely comes after it and an
    AsyncEngine is then created through the wrapped create_async_engine."""
    imports = [i for i in order.asyncio_imports if not exclusive(i, first.event)]
    if not imports or not all(definitely_before(first.event, imported) for imported in imports):
        return None
    doubled = [
        c
        for c in order.creations
        if c.kind == "async_engine"
        and not exclusive(c.event, first.event)
        and (
            (c.how == "attribute" and definitely_before(first.event, c.event))
            or (c.how == "name" and definitely_before(first.event, c.binding))
        )
    ]
    if not doubled:
        return None
    line, column, end_line, end_column = site_span(first.site)
    imported = imports[0]
    entry = f" when started from {order.entry.path}" if order.entry is not None else ""
    return ProjectReport(
        path=first.facts.path,
        line=line,
        column=column,
        end_line=end_line,
        end_column=end_column,
        message=(
            f"SQLAlchemyInstrumentor().instrument() runs before `sqlalchemy.ext.asyncio` is first imported"
            f"{entry} (by {imported.module.path}, `{imported.imported}`): AsyncEngine "
            f"{engine_label(doubled[0])} gets two tracers; each query starts two spans and exports one "
            "(the other never ends), and the commenter adds two SQL comments"
        ),
    )


# Library configurations that create their AsyncEngine with `create_async_engine` when the app starts.
_ENGINE_CONFIG_CLASSES = ("SQLAlchemyAsyncConfig",)
_ENGINE_CONFIG_PACKAGES = ("advanced_alchemy", "litestar")


def _library_engine_configs(index) -> list[tuple[str, int]]:
    """(path, line) of `SQLAlchemyAsyncConfig(...)` (advanced-alchemy, Litestar's plugin) in the app."""
    def wanted(callee: str) -> bool:
        return callee.split(".", 1)[0] in _ENGINE_CONFIG_PACKAGES and callee.rsplit(".", 1)[-1] in _ENGINE_CONFIG_CLASSES

    found = []
    for facts in index.modules:
        if is_test(facts.path):
            continue
        found += [(facts.path, site.line) for site in facts.calls if wanted(site.callee)]
        found += [(facts.path, function.line) for function in facts.functions.values() if any(wanted(c) for _, c in function.calls)]
    return sorted(found)


def _launcher_reports(index, found) -> list[ProjectReport]:
    if sqlalchemy_auto_instrumentation_disabled(index):
        return []
    installed = sqlalchemy_instrumentation_installed(index)
    if not installed:
        return []
    engines = [
        (facts, site)
        for facts, site in index.all_calls()
        if creation_function(index, site) == CREATE_ASYNC_ENGINE
        and not is_test(facts.path)
        and not (site.summary and site.summary[0] == "call" and site.summary[1][:1] == ("ref",) and site.summary[1][1].startswith("sqlalchemy.ext.asyncio.engine."))
    ]
    places = [(facts.path, site.line) for facts, site in engines] or _library_engine_configs(index)
    if not places:
        return []
    path, line = places[0]
    return [
        ProjectReport(
            path=launcher.path,
            line=launcher.line,
            column=launcher.column,
            end_line=launcher.line,
            end_column=launcher.end_column,
            message=(
                f"the service starts under {launcher.how}, which instruments SQLAlchemy before "
                "`sqlalchemy.ext.asyncio` is first imported: every AsyncEngine (e.g. "
                f"{path}:{line}) gets two tracers; each query starts two spans and exports one "
                "(the other never ends), and the commenter adds two SQL comments"
            ),
            hint=(
                "set `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=sqlalchemy` for the launcher and instrument the engines "
                "in code with `SQLAlchemyInstrumentor().instrument(engines=[engine.sync_engine])`"
            ),
        )
        for launcher in found
    ]
