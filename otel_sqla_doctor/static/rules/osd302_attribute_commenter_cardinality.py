from __future__ import annotations

from typing import Iterable

from otel_sqla_doctor.static.paths import PathRole, is_test
from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.patterns import alternative_to_any, sqlalchemy_instrument_calls
from otel_sqla_doctor.static.rule import Invalid, ProjectReport, Rule, Valid


class AttributeCommenterCardinality(Rule):
    """
    `SQLAlchemyInstrumentor().instrument(enable_commenter=True, enable_attribute_commenter=True)`
    with the traceparent in the comment: every span's `db.statement` becomes unique.

    ## What it does
    Finds `instrument()` calls of `SQLAlchemyInstrumentor` (any import path, an instance kept in a
    variable or another module) that set both `enable_commenter` and `enable_attribute_commenter`
    to true, literally or through a constant or a settings default, while `commenter_options`
    leaves `opentelemetry_values` on (the default).

    ## Why is this bad?
    With `enable_attribute_commenter=True` the instrumentation copies the sqlcommenter comment into
    the span's `db.statement` attribute, and the comment carries `traceparent='00-<trace id>-<span
    id>-..'`. So every span has a different `db.statement`: N traces give N distinct values for
    one query. Backends that group, aggregate or index spans by statement (query analytics, span
    metrics, attribute indexes) see unbounded cardinality, and "slowest queries" views stop
    grouping. The instrumentation's own docs warn about it; the option was on by default in
    0.50b0 and made opt-in in 0.51b0 for this reason.

    ## Example
    ```python
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine,
        enable_commenter=True,
        enable_attribute_commenter=True,
    )
    ```

    ## Use instead
    ```python
    # The comment still reaches the database (server logs, pg_stat_activity); db.statement stays clean.
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
    ```

    ## Default
    Off by default (`extend-select = ["OSD302"]` turns it on). On the real-world corpus of 42
    repositories (`bench/realworld`), its one finding was in a branch that cannot run (a call one
    line earlier raises `AttributeError`), which no rule models: the harm is proven by the live
    test, but not yet the precision on code nobody here wrote.

    ## Known problems
    Arguments passed through `**kwargs` or read from the environment without a literal default are
    not evaluated, so such calls are not reported. Test modules (`tests/`, `test_*.py`,
    `conftest.py`) are skipped. Backends that normalise statements before grouping are less
    affected; the attribute still costs storage per span.

    ## References
    - reproduced by tests/rules/test_osd302_live.py in the otel-sqla-doctor repository (`db.statement` carries the
      traceparent; the comment format)
    - open-telemetry/opentelemetry-python-contrib PR #2937, PR #3112 (opt-in since 0.51b0)
    - https://opentelemetry-python-contrib.readthedocs.io/en/latest/instrumentation/sqlalchemy/sqlalchemy.html
    """

    CODE = "OSD302"
    REPORTS_IN = frozenset({PathRole.SERVICE})
    REPORTS_IN_WHY = 'Span cardinality costs money only where spans are exported from production traffic.'
    NAME = "attribute-commenter-cardinality"
    # Opt-in (issue 11's bar): on the real-world corpus (bench/realworld) its only finding was
    # false, in code that cannot run; on until the corpus shows it precise.
    DEFAULT_ENABLED = False
    FAMILY = "sql-text"
    SEVERITY = Severity.WARNING
    MESSAGE = (
        "enable_attribute_commenter=True puts the sqlcommenter comment, traceparent included, into "
        "`db.statement`: every trace gets its own statement text (unbounded attribute cardinality)"
    )
    HINT = (
        "drop `enable_attribute_commenter=True` (the comment still reaches the database), or set "
        "`commenter_options={\"opentelemetry_values\": False}` if the statement must carry the comment"
    )

    @classmethod
    def check_project(cls, index, options: dict) -> Iterable[ProjectReport]:
        reported: dict[str, list] = {}
        for facts, site, settings in sqlalchemy_instrument_calls(index):
            if is_test(facts.path):
                continue
            if settings.enable_commenter and settings.attribute_commenter and settings.traceparent:
                if alternative_to_any(site, reported.setdefault(facts.path, [])):
                    continue  # alternatives of one if/else or try/except: at most one runs
                reported[facts.path].append(site)
                yield ProjectReport(facts.path, site.line, site.column, site.end_line, site.end_column)

    VALID = [
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine("postgresql+asyncpg://app@db/app")
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
            """,
            note="the comment reaches the database only",
        ),
        Valid(
            """
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            SQLAlchemyInstrumentor().instrument(
                enable_commenter=True,
                commenter_options={"opentelemetry_values": False},
                enable_attribute_commenter=True,
            )
            """,
            note="no traceparent in the comment: db_driver/db_framework are constant",
        ),
        Valid(
            """
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            SQLAlchemyInstrumentor().instrument(enable_attribute_commenter=True)
            """,
            note="without enable_commenter the attribute option does nothing",
        ),
        Valid(
            """
            import os
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            SQLAlchemyInstrumentor().instrument(
                enable_commenter=True, enable_attribute_commenter=os.getenv("SQL_COMMENT_IN_SPANS") == "1"
            )
            """,
            note="decided at run time: not reported",
        ),
        Valid(
            {
                "tests/conftest.py": """
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    def instrument():
                        SQLAlchemyInstrumentor().instrument(enable_commenter=True, enable_attribute_commenter=True)
                """,
            },
            note="a test suite asserting on the comment",
        ),
        Valid(
            """
            from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

            class Instrumentor:
                def instrument(self, **kwargs): ...

            Instrumentor().instrument(enable_commenter=True, enable_attribute_commenter=True)
            """,
            note="someone else's instrument()",
        ),
    ]
    INVALID = [
        Invalid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine("postgresql+asyncpg://app@db/app")
            SQLAlchemyInstrumentor().instrument(  # ERROR
                engine=engine.sync_engine,
                enable_commenter=True,
                enable_attribute_commenter=True,
            )
            """,
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/config.py": """
                    from pydantic_settings import BaseSettings

                    class Settings(BaseSettings):
                        database_url: str = "postgresql+asyncpg://app@db/app"
                        sql_commenter: bool = True
                        sql_comment_in_spans: bool = True

                    settings = Settings()
                    COMMENTER_OPTIONS = {"db_framework": False}
                """,
                "app/telemetry.py": """
                    from opentelemetry.instrumentation import sqlalchemy as otel_sa
                    from app.config import settings, COMMENTER_OPTIONS

                    instrumentor = otel_sa.SQLAlchemyInstrumentor()

                    def setup():
                        instrumentor.instrument(  # ERROR
                            enable_commenter=settings.sql_commenter,
                            commenter_options=COMMENTER_OPTIONS,
                            enable_attribute_commenter=settings.sql_comment_in_spans,
                        )
                """,
            },
            note="settings defaults, options from another module (traceparent still on), instrumentor in a variable",
        ),
    ]
