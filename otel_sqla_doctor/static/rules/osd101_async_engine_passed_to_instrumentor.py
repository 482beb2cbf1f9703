from __future__ import annotations

import libcst as cst

from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.patterns import instrumentor_requirement, keyword, method_call
from otel_sqla_doctor.static.rule import Invalid, Rule, Valid, kind_in


class AsyncEnginePassedToInstrumentor(Rule):
    """
    An `AsyncEngine` handed to `SQLAlchemyInstrumentor().instrument(engine=...)` or `engines=[...]`.

    ## What it does
    Finds `instrument(engine=X)` and `instrument(engines=[..., X, ...])` calls where `X` is an
    `AsyncEngine` (from `create_async_engine`, an `AsyncEngine` annotation, or a factory that
    returns one, in this module or another one of the project).

    ## Why is this bad?
    The instrumentation listens to SQLAlchemy's Core events, which exist only on the synchronous
    engine that an `AsyncEngine` drives. `instrument()` raises `NotImplementedError: asynchronous
    events are not implemented at this time` from `sqlalchemy.event.listen`, after it has already
    patched `create_engine` and `Engine.connect`: the service typically logs or swallows the
    error, and from then on exports only `connect` spans and no query spans. A retry patches
    everything again, and the engines created later get two tracers that leak one span per query.

    ## Example
    ```python
    engine = create_async_engine("postgresql+asyncpg://app@db/app")
    SQLAlchemyInstrumentor().instrument(engine=engine)
    ```

    ## Use instead
    ```python
    engine = create_async_engine("postgresql+asyncpg://app@db/app")
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
    ```

    ## Fix safety
    The fix appends `.sync_engine`. It is safe: `AsyncEngine.sync_engine` is the engine the
    instrumentation is designed for, and the call could not have worked before.

    ## Known problems
    An engine kept as an attribute of a class instance (`self.engine`) or built by a third-party
    helper is not followed.

    ## References
    - reproduced by tests/rules/test_osd101_live.py in the otel-sqla-doctor repository (`NotImplementedError`,
      connect-only spans; `.sync_engine` works)
    - open-telemetry/opentelemetry-python-contrib#1648
    - https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html#using-events-with-the-asyncio-extension
    """

    CODE = "OSD101"
    NAME = "async-engine-passed-to-instrumentor"
    FAMILY = "wiring"
    SEVERITY = Severity.ERROR
    MESSAGE = (
        "AsyncEngine passed to SQLAlchemyInstrumentor.instrument(): it raises NotImplementedError and "
        "only `connect` spans are exported, no query spans"
    )
    HINT = "pass the engine's synchronous core: `engine.sync_engine`"
    PREFILTER = (b"instrument",)
    FIX = "safe"

    def visit_Call(self, node: cst.Call) -> None:
        call = method_call(self.ctx, node, "instrument")
        if call is None:
            return
        receiver = instrumentor_requirement(call.receiver)
        if receiver is None:
            return
        targets = []
        single = keyword(node, "engine")
        if single is not None:
            targets.append(single.value)
        many = keyword(node, "engines")
        if many is not None and isinstance(many.value, (cst.List, cst.Tuple, cst.Set)):
            targets.extend(e.value for e in many.value.elements if isinstance(e, cst.Element))
        for target in targets:
            self.report(
                target,
                requires=(receiver, kind_in(self.ctx.summarize(target), "async_engine")),
                replacement=cst.Attribute(value=target, attr=cst.Name("sync_engine")),
                fix_description="Pass `.sync_engine`",
            )

    VALID = [
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine("sqlite+aiosqlite://")
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
            """
        ),
        Valid(
            """
            from sqlalchemy import create_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_engine("sqlite://")
            SQLAlchemyInstrumentor().instrument(engine=engine)
            """,
            note="a sync engine is what the instrumentation wants",
        ),
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine

            class Instrumentor:
                def instrument(self, engine): ...

            engine = create_async_engine("sqlite+aiosqlite://")
            Instrumentor().instrument(engine=engine)
            """,
            note="someone else's instrument()",
        ),
    ]
    INVALID = [
        Invalid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine("sqlite+aiosqlite://")
            SQLAlchemyInstrumentor().instrument(engine=engine)  # ERROR
            """,
            expected_fix="""
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine("sqlite+aiosqlite://")
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)  # ERROR
            """,
        ),
        Invalid(
            """
            import sqlalchemy.ext.asyncio as sa_async
            from opentelemetry.instrumentation import sqlalchemy as otel_sa

            primary = sa_async.create_async_engine("postgresql+asyncpg://app@db/app")
            replica = sa_async.create_async_engine("postgresql+asyncpg://app@replica/app")
            instrumentor = otel_sa.SQLAlchemyInstrumentor()
            instrumentor.instrument(engines=[primary.sync_engine, replica])  # ERROR
            """,
            note="aliased imports, engines=[...]",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

                    def make_engine(url: str) -> AsyncEngine:
                        return create_async_engine(url, pool_size=5)

                    engine = make_engine("postgresql+asyncpg://app@db/app")
                """,
                "app/telemetry.py": """
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                    from .db import engine

                    def setup_tracing() -> None:
                        try:
                            SQLAlchemyInstrumentor().instrument(engine=engine)  # ERROR
                        except Exception:
                            pass
                """,
            },
            note="across modules, behind a factory, error swallowed",
        ),
        Invalid(
            """
            from sqlalchemy.ext.asyncio import AsyncEngine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            def instrument_database(engine: AsyncEngine) -> None:
                SQLAlchemyInstrumentor().instrument(engine=engine)  # ERROR
            """,
            note="an AsyncEngine annotation",
        ),
    ]
