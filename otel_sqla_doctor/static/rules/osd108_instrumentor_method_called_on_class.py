from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Iterable

from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.patterns import instrumentor_call
from otel_sqla_doctor.static.rule import Invalid, ProjectReport, Rule, Valid

INSTRUMENTOR_CLASSES = "opentelemetry.instrumentation.*Instrumentor"


class InstrumentorMethodCalledOnClass(Rule):
    """
    `SomeInstrumentor.instrument()` called on the class instead of an instance.

    ## What it does
    Finds `instrument()` and `uninstrument()` called on an OpenTelemetry instrumentor class itself
    (any class under `opentelemetry.instrumentation.` whose name ends with `Instrumentor`, imported
    under any alias or through another module of the project) instead of on an instance.

    ## Why is this bad?
    `instrument()` is an instance method of `BaseInstrumentor`. Called on the class, Python binds
    nothing to `self`, and the call raises at startup:
    `TypeError: BaseInstrumentor.instrument() missing 1 required positional argument: 'self'`.
    The service either does not start, or (when the call sits in a `try` that logs and carries on)
    runs with no instrumentation at all. The mistake is easy to make because the instrumentors are
    singletons and read like static helpers; it is found in public code.

    ## Example
    ```python
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor.instrument(engine=engine.sync_engine)
    ```

    ## Use instead
    ```python
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
    ```

    ## Known problems
    - A call that passes a positional argument (`SQLAlchemyInstrumentor.instrument(self, ...)`, the
      explicit form a subclass may use) or `*args` is not reported: the first argument may be an
      instance.
    - Subclasses defined in the project (`class MyInstrumentor(SQLAlchemyInstrumentor)`) and
      instrumentors of other packages are not followed.
    - Static helpers with other names (`FastAPIInstrumentor.instrument_app(app)`) are fine and are
      not reported.

    ## References
    - https://opentelemetry-python-contrib.readthedocs.io/en/latest/instrumentation/sqlalchemy/sqlalchemy.html
    - `BaseInstrumentor.instrument(self, **kwargs)` in opentelemetry-instrumentation's `instrumentor.py`
    """

    CODE = "OSD108"
    NAME = "instrumentor-method-called-on-class"
    FAMILY = "wiring"
    SEVERITY = Severity.ERROR
    MESSAGE = (
        "instrument() called on the instrumentor class, not an instance: it raises "
        "`TypeError: BaseInstrumentor.instrument() missing 1 required positional argument: 'self'` at startup, "
        "and nothing is instrumented"
    )
    HINT = "call it on an instance: `SQLAlchemyInstrumentor().instrument(...)` (instrumentors are singletons)"
    PREFILTER = ()
    FIX = None

    @classmethod
    def check_project(cls, index, options: dict) -> Iterable[ProjectReport]:
        for facts, site in index.all_calls():
            if not site.line:
                continue
            call = instrumentor_call(index, site)
            if call is None or call.on_instance or not fnmatchcase(call.cls, INSTRUMENTOR_CLASSES):
                continue
            summary = site.summary
            if summary[2] or getattr(site, "star_args", False) or "(*" in site.text or ", *" in site.text:
                continue  # an explicit instance may be passed as the first argument
            name = call.cls.rsplit(".", 1)[-1]
            base = "BaseInstrumentor"
            yield ProjectReport(
                facts.path, site.line, site.column, site.end_line, site.end_column,
                message=(
                    f"`{name}.{call.method}()` is called on the class, not on an instance: it raises `TypeError: "
                    f"{base}.{call.method}() missing 1 required positional argument: 'self'` "
                    + ("at startup, so nothing is instrumented" if call.method == "instrument" else "when it runs, and nothing is uninstrumented")
                ),
                hint=f"call it on an instance: `{name}().{call.method}(...)` (instrumentors are singletons)",
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
            from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

            instrumentor = AsyncPGInstrumentor()
            instrumentor.instrument()
            """,
            note="an instance kept in a variable",
        ),
        Valid(
            """
            from fastapi import FastAPI
            from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

            app = FastAPI()
            FastAPIInstrumentor.instrument_app(app)
            """,
            note="instrument_app is a static method",
        ),
        Valid(
            """
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            class TenantInstrumentor(SQLAlchemyInstrumentor):
                def instrument(self, **kwargs):
                    kwargs.setdefault("enable_commenter", True)
                    return SQLAlchemyInstrumentor.instrument(self, **kwargs)
            """,
            note="explicit self passed to the base class's method",
        ),
        Valid(
            """
            class Instrumentor:
                @classmethod
                def instrument(cls, engine): ...

            Instrumentor.instrument(engine=None)
            """,
            note="someone else's Instrumentor with a classmethod",
        ),
    ]
    INVALID = [
        Invalid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine("sqlite+aiosqlite://")
            SQLAlchemyInstrumentor.instrument(engine=engine.sync_engine)  # ERROR
            """
        ),
        Invalid(
            """
            import opentelemetry.instrumentation.asyncpg as otel_asyncpg
            from opentelemetry.instrumentation.logging import LoggingInstrumentor as LogInstr

            def setup_tracing() -> None:
                try:
                    otel_asyncpg.AsyncPGInstrumentor.instrument()  # ERROR
                except Exception:
                    pass
                LogInstr.instrument(set_logging_format=True)  # ERROR
            """,
            note="module alias and class alias, error swallowed",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/otel.py": """
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor as Instrumentor
                """,
                "app/main.py": """
                    from app.otel import Instrumentor

                    def shutdown() -> None:
                        Instrumentor.uninstrument()  # ERROR
                """,
            },
            note="re-exported by another module; uninstrument() too",
        ),
    ]
