from __future__ import annotations

from typing import Iterable

from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.launchers import launchers
from otel_sqla_doctor.static.rule import Invalid, ProjectReport, Rule, Valid
from otel_sqla_doctor.static.startup import Instrument, StartupOrder, engine_label, exclusive, site_span, startup_orders


class EngineCreatedBeforeGlobalInstrument(Rule):
    """
    A global `SQLAlchemyInstrumentor().instrument()` that runs after an engine was created, or after
    `create_async_engine` / `create_engine` was bound by `from ... import`.

    ## What it does
    Simulates the start of each entry module of the project (module-level code and imports in
    order, project functions called at import time inlined, startup hooks afterwards) and finds the
    first `SQLAlchemyInstrumentor().instrument()` call without `engine=` / `engines=`. It reports
    that call when, before it runs:
    - an engine was created (`create_async_engine(...)`, `create_engine(...)`, directly or in a
      factory function), typically at module level in a module imported earlier; or
    - `from sqlalchemy.ext.asyncio import create_async_engine` (or `from sqlalchemy import
      create_engine`) bound the original function, through which an engine is created later; or
    - `from sqlalchemy.ext.asyncio.engine import create_async_engine` is used after
      `sqlalchemy.ext.asyncio` was imported (that function is never wrapped).

    ## Why is this bad?
    A global `instrument()` does not look for existing engines: it replaces
    `sqlalchemy.ext.asyncio.create_async_engine` and `sqlalchemy.create_engine` with wrappers that
    attach a tracer to the engines created *afterwards*, through those module attributes. An engine
    that already exists, or one created through a name that was imported before the wrap, gets no
    tracer. It still shows a `connect` span (from the global `Engine.connect` patch), so tracing
    looks alive, but there is not one query span: `spans == ['connect']`. No error, no warning.

    ## Example
    ```python
    # app/main.py
    from app.db import engine  # app/db.py: engine = create_async_engine(DATABASE_URL)
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument()  # too late for `engine`
    ```

    ## Use instead
    Instrument the engine itself, after it exists (this also avoids OSD106):
    ```python
    from app.db import engine
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engines=[engine.sync_engine])
    ```
    or run the global `instrument()` before any module that creates an engine or imports
    `create_async_engine` is imported (and `import sqlalchemy.ext.asyncio` before it: OSD106).

    ## Known problems
    The start is simulated from the source: conditions (`if settings.tracing:`), engines kept
    as instance attributes, and imports done by third-party code or frameworks (an app factory
    string handed to uvicorn, `importlib.import_module`) are not followed. Two startup hooks have
    no known order between them, so an engine created in one and instrument() called in another
    is not reported. When the repository starts the service under `opentelemetry-instrument`,
    the rule stays silent: the launcher instruments first and this call is ignored anyway (OSD106
    covers the launcher). `create_engine` imported from sqlmodel is not followed. Several apps in
    one repository with the same package name (two `shop/db.py`) are not told apart: scan each
    app on its own.

    ## References
    - reproduced by tests/rules/test_osd102_live.py in the otel-sqla-doctor repository (engine created before:
      connect spans only; the import style decides)
    - open-telemetry/opentelemetry-python-contrib#1648 ("only connect span")
    - opentelemetry-instrumentation-sqlalchemy `_instrument()` (the wrapped module attributes)
    """

    CODE = "OSD102"
    NAME = "engine-created-before-global-instrument"
    FAMILY = "wiring"
    SEVERITY = Severity.ERROR
    MESSAGE = (
        "global SQLAlchemyInstrumentor().instrument() runs after an engine was created: that engine "
        "gets `connect` spans only, no query spans"
    )
    HINT = (
        "instrument the engine explicitly, `instrument(engines=[engine.sync_engine])`, or call instrument() "
        "before any module that creates an engine or imports `create_async_engine` is imported"
    )
    PREFILTER = ()
    FIX = None

    @classmethod
    def check_project(cls, index, options: dict) -> Iterable[ProjectReport]:
        if launchers(index):
            return []
        found: dict[tuple, tuple[Instrument, list, StartupOrder]] = {}
        for order in startup_orders(index):
            for first in order.first_instruments:
                if not first.is_global:
                    continue
                if any(
                    not other.is_global and other.facts is first.facts and exclusive(first.event, other.event)
                    for other in order.instruments
                ):
                    # `try: instrument(engine=...) except: instrument()`, `if engine: ... else:
                    # instrument()`: the fallback of an explicit instrumentation, for when there is
                    # no engine to name.
                    continue
                missed = order.missed_by(first)
                if not missed:
                    continue
                key = (first.facts.path, first.site.line, first.site.column)
                if key not in found:
                    found[key] = (first, [], order)
                seen = {id(c.site) for _, c in found[key][1]}
                found[key][1].extend((why, c) for why, c in missed if id(c.site) not in seen)
        reports = []
        for key in sorted(found):
            instrument, missed, order = found[key]
            line, column, end_line, end_column = site_span(instrument.site)
            reports.append(
                ProjectReport(
                    path=instrument.facts.path,
                    line=line,
                    column=column,
                    end_line=end_line,
                    end_column=end_column,
                    message=_message(missed, order),
                )
            )
        return reports

    VALID = [
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine("postgresql+asyncpg://app@db/app")

            def setup_tracing(engine):
                if engine is not None:
                    try:
                        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
                    except Exception:
                        SQLAlchemyInstrumentor().instrument()
                else:
                    SQLAlchemyInstrumentor().instrument()

            setup_tracing(engine)
            """,
            note="global instrument() only as the fallback of an explicit engine= instrumentation",
        ),
        Valid(
            {
                "Dockerfile": 'FROM python:3.12\nCMD ["python", "bot.py"]\n',
                "database/__init__.py": "",
                "database/database.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine
                    engine = create_async_engine("postgresql+asyncpg://app@db/app")
                """,
                "bot.py": """
                    import asyncio
                    from database.database import engine

                    async def main():
                        async with engine.connect():
                            pass

                    asyncio.run(main())
                """,
                "utils/__init__.py": "",
                "utils/distributed_tracing.py": """
                    import os
                    from opentelemetry import trace
                    from opentelemetry.sdk.trace import TracerProvider
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                    from database.database import engine

                    def setup_tracing():
                        trace.set_tracer_provider(TracerProvider())
                        SQLAlchemyInstrumentor().instrument()

                    if os.getenv("TRACING_ENABLED") == "true":
                        setup_tracing()
                """,
            },
            note="a module deep in a package that nothing imports, starts or names: dead code, not a start",
        ),
        Valid(
            """
            import sqlalchemy.ext.asyncio
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            SQLAlchemyInstrumentor().instrument()

            from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

            engine = create_async_engine("sqlite+aiosqlite://")
            """,
            note="instrument() first, then the import and the engine",
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

                    SQLAlchemyInstrumentor().instrument(engines=[engine.sync_engine])
                """,
            },
            note="the engine exists first, but it is instrumented explicitly",
        ),
        Valid(
            {
                "app/__init__.py": "",
                "app/telemetry.py": """
                    import sqlalchemy.ext.asyncio  # noqa: F401  (see OSD106)
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    def setup_tracing() -> None:
                        SQLAlchemyInstrumentor().instrument()
                """,
                "app/db.py": """
                    import sqlalchemy.ext.asyncio as sa_async

                    engine = sa_async.create_async_engine("postgresql+asyncpg://app@db/app")
                """,
                "app/main.py": """
                    from app.telemetry import setup_tracing

                    setup_tracing()

                    from app.db import engine  # noqa: E402
                """,
            },
            note="instrument() runs (through a function) before the engine module is imported",
        ),
        Valid(
            {
                "app/__init__.py": "",
                "app/telemetry.py": """
                    from __future__ import annotations

                    from typing import TYPE_CHECKING

                    import sqlalchemy.ext.asyncio  # noqa: F401  (see OSD106)
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    if TYPE_CHECKING:
                        from app.db import engine

                    def setup_tracing() -> None:
                        SQLAlchemyInstrumentor().instrument()
                """,
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine

                    engine = create_async_engine("postgresql+asyncpg://app@db/app")
                """,
                "app/main.py": """
                    from app.telemetry import setup_tracing

                    setup_tracing()

                    from app.db import engine  # noqa: E402
                """,
            },
            note="an import under `if TYPE_CHECKING:` never runs",
        ),
        Valid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    import sqlalchemy.ext.asyncio as sa_async

                    def make_engine():
                        return sa_async.create_async_engine("postgresql+asyncpg://app@db/app")
                """,
                "app/main.py": """
                    from fastapi import FastAPI
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                    from app.db import make_engine

                    app = FastAPI()
                    SQLAlchemyInstrumentor().instrument()

                    @app.on_event("startup")
                    async def startup() -> None:
                        app.state.engine = make_engine()
                """,
            },
            note="the engine is created in a startup hook, after the module-level instrument()",
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

                    SQLAlchemyInstrumentor().instrument()
                """,
                "Dockerfile": """
                    FROM python:3.12-slim
                    CMD ["opentelemetry-instrument", "uvicorn", "app.main:app"]
                """,
            },
            note="started under opentelemetry-instrument: the launcher instruments first (OSD106's business)",
        ),
        Valid(
            """
            import os

            import sqlalchemy.ext.asyncio as sa_async
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            if os.environ.get("TESTING"):
                engine = sa_async.create_async_engine("sqlite+aiosqlite://")  # tests: no tracing
            else:
                SQLAlchemyInstrumentor().instrument()
                engine = sa_async.create_async_engine(os.environ["DATABASE_URL"])
            """,
            note="alternatives: the engine of the first branch never meets the instrument() of the second",
        ),
        Valid(
            """
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
            from sqlalchemy.ext.asyncio import create_async_engine

            class Instrumentor:
                def instrument(self): ...

            engine = create_async_engine("sqlite+aiosqlite://")
            Instrumentor().instrument()
            """,
            note="someone else's instrument()",
        ),
    ]
    INVALID = [
        Invalid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine

                    engine = create_async_engine("postgresql+asyncpg://app@db/app", pool_size=10)
                """,
                "app/main.py": """
                    from fastapi import FastAPI
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    from app.db import engine

                    app = FastAPI()
                    SQLAlchemyInstrumentor().instrument()  # ERROR
                """,
            },
            note="module-level engine in a module imported earlier",
        ),
        Invalid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine as make_async_engine
            from opentelemetry.instrumentation import sqlalchemy as otel_sqlalchemy

            otel_sqlalchemy.SQLAlchemyInstrumentor().instrument(enable_commenter=True)  # ERROR

            engine = make_async_engine("sqlite+aiosqlite://")
            """,
            note="aliased early binding: the engine is created after instrument() but through the unwrapped function",
        ),
        Invalid(
            {
                "svc/__init__.py": "",
                "svc/database.py": """
                    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

                    def build_engine(url: str) -> AsyncEngine:
                        return create_async_engine(url, pool_pre_ping=True)

                    engine = build_engine("postgresql+asyncpg://svc@db/svc")
                """,
                "svc/observability.py": """
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    instrumentor = SQLAlchemyInstrumentor()

                    def configure() -> None:
                        instrumentor.instrument()  # ERROR
                """,
                "svc/worker.py": """
                    import asyncio

                    from svc import database
                    from svc.observability import configure

                    async def main() -> None:
                        configure()
                        async with database.engine.connect():
                            pass

                    if __name__ == "__main__":
                        asyncio.run(main())
                """,
            },
            note="across modules: a factory at import time, instrument() through a function called from main()",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine

                    _engine = None

                    def get_engine():
                        global _engine
                        if _engine is None:
                            _engine = create_async_engine("postgresql+asyncpg://app@db/app")
                        return _engine
                """,
                "app/main.py": """
                    from fastapi import FastAPI
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    from app.db import get_engine

                    app = FastAPI()

                    @app.on_event("startup")
                    async def startup() -> None:
                        SQLAlchemyInstrumentor().instrument()  # ERROR
                        get_engine()
                """,
            },
            note="lazy engine, but `create_async_engine` was imported before the startup hook instruments",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    import sqlalchemy as sa

                    engine = sa.create_engine("postgresql+psycopg://app@db/app")
                """,
                "app/tracing.py": """
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    SQLAlchemyInstrumentor().instrument()  # ERROR
                """,
                "app/main.py": """
                    from app import db
                    from app import tracing
                """,
            },
            note="a sync engine in a module imported before the tracing module",
        ),
    ]


def _message(missed: list, order: StartupOrder) -> str:
    lines = []
    for why, creation in missed[:3]:
        label = engine_label(creation)
        if why == "created":
            lines.append(f"engine {label} was created before it")
        elif why == "bound":
            binding = creation.binding_site
            lines.append(
                f"engine {label} is created through `{binding.module}.{creation.site.callee.rsplit('.', 1)[-1]}`, "
                f"imported at {creation.binding_facts.path}:{binding.line or '?'} before the wrap"
            )
        else:
            lines.append(f"engine {label} is created through `sqlalchemy.ext.asyncio.engine.create_async_engine`, which is never wrapped")
    more = f" (and {len(missed) - 3} more)" if len(missed) > 3 else ""
    entry = f" when started from {order.entry.path}" if order.entry is not None else ""
    return (
        f"global SQLAlchemyInstrumentor().instrument() runs too late{entry}: "
        + "; ".join(lines)
        + more
        + ". Such engines get `connect` spans only, no query spans"
    )
