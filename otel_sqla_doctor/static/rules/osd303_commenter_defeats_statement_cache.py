from __future__ import annotations

import re
from typing import Iterable, Optional

from otel_sqla_doctor.static.paths import PathRole, is_test
from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.known import canonical
from otel_sqla_doctor.static.patterns import alternative_to_any, sqlalchemy_instrument_calls
from otel_sqla_doctor.static.rule import Invalid, ProjectReport, Rule, Valid
from otel_sqla_doctor.static.summary import kwarg, positional

CREATE_ASYNC_ENGINE = "sqlalchemy.ext.asyncio.create_async_engine"
CREATE_ENGINE = "sqlalchemy.create_engine"
ENV_GETTERS = ("os.getenv", "os.environ.get", "os.environ.setdefault")
URL_BUILDERS = ("sqlalchemy.engine.URL.create", "sqlalchemy.URL.create", "sqlalchemy.engine.url.URL.create")
URL_PARSERS = ("sqlalchemy.engine.make_url", "sqlalchemy.make_url", "sqlalchemy.engine.url.make_url", "str")
FIELD_DEFAULTS = ("pydantic.Field", "pydantic.fields.Field", "sqlmodel.Field")
# `asyncpg` as a package name (not opentelemetry-instrumentation-asyncpg), or SQLAlchemy's extra.
_COMMENT = re.compile(r"(?:^|(?<=\s))#[^\n]*", re.M)  # a `# ...` comment in TOML or a requirements file
ASYNCPG_DEPENDENCY = re.compile(r"(?<![\w.-])asyncpg(?![\w-])|postgresql_asyncpg")
DEPENDENCY_FILE = re.compile(r"(^|/)(pyproject\.toml|requirements[^/]*\.(txt|in)|[^/]*\.lock|setup\.cfg|Pipfile|environment\.ya?ml|constraints[^/]*\.txt)$")


class CommenterDefeatsStatementCache(Rule):
    """
    sqlcommenter with the traceparent (`enable_commenter=True`) on an asyncpg engine: every
    execution is a new SQL text, so every execution is prepared again on the server.

    ## What it does
    Finds `SQLAlchemyInstrumentor().instrument(enable_commenter=True)` calls whose
    `commenter_options` leave `opentelemetry_values` on (the default) in a project whose async
    engine uses asyncpg: the engine passed to `instrument()` (or, for a global `instrument()`,
    any `create_async_engine`) has a `postgresql+asyncpg://` URL (a literal, a constant, a settings
    default, an `os.getenv` default, a `.replace(..., "postgresql+asyncpg://")`), or, when the URL
    cannot be read, the project imports `asyncpg` or declares it in its dependency files.

    ## Why is this bad?
    The comment appended to each statement carries `traceparent='00-<trace id>-<span id>-..'`, so
    each execution has a different SQL text. SQLAlchemy's asyncpg dialect caches prepared
    statements by SQL text, so it misses every time: every execution sends a new Parse/Describe to
    PostgreSQL and plans the query again (measured: a new `__asyncpg_stmt_N__` per execution,
    about 1.7x the time on a trivial query and 2.7-4x on a join, localhost; more over a network).
    The cache also churns (evicted statements are closed on the server).

    ## Example
    ```python
    engine = create_async_engine("postgresql+asyncpg://app@db/app")
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
    ```

    ## Use instead
    ```python
    engine = create_async_engine("postgresql+asyncpg://app@db/app")
    # Keep db_driver/db_framework in the comment, drop the per-execution traceparent:
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine,
        enable_commenter=True,
        commenter_options={"opentelemetry_values": False},
    )
    # or leave the commenter off and correlate through the spans' db.statement.
    ```

    ## Known problems
    Only sampled queries carry the comment (unsampled ones are not commented), so the cost scales
    with the sampling rate, which the doctor cannot see. An engine URL that is built at run time
    without a literal default falls back to the project's imports and dependency files, which
    may name asyncpg for another reason. An engine created by a library (not by
    `create_async_engine` in the project) is judged by the imports and dependencies alone.
    Test modules are skipped.

    ## References
    - reproduced by tests/rules/test_osd303_live.py in the otel-sqla-doctor repository (one distinct
      `__asyncpg_stmt_N__` per execution, e.g. 626 for 626 executions; 311-323 vs 186-196 us per
      execution; the comment format; unsampled queries carry no comment)
    - open-telemetry/opentelemetry-python-contrib#3164; google/sqlcommenter#284
    - https://docs.sqlalchemy.org/en/20/dialects/postgresql.html#prepared-statement-cache
    """

    CODE = "OSD303"
    REPORTS_IN = frozenset({PathRole.SERVICE})
    REPORTS_IN_WHY = 'Statement-cache churn matters under production load, not in tests or scripts.'
    NAME = "commenter-defeats-statement-cache"
    FAMILY = "sql-text"
    SEVERITY = Severity.WARNING
    MESSAGE = (
        "enable_commenter=True adds a per-execution traceparent to every statement on an asyncpg engine: "
        "each SQL text is new, so asyncpg prepares every execution again (statement cache defeated)"
    )
    HINT = (
        "pass `commenter_options={\"opentelemetry_values\": False}` (keeps db_driver/db_framework, drops "
        "the traceparent), or turn the commenter off"
    )

    @classmethod
    def check_project(cls, index, options: dict) -> Iterable[ProjectReport]:
        async_engines = [(f, s) for f, s in index.all_calls() if s.callee == CREATE_ASYNC_ENGINE]
        reported: dict[str, list] = {}
        for facts, site, settings in sqlalchemy_instrument_calls(index):
            if is_test(facts.path) or not (settings.enable_commenter and settings.traceparent):
                continue
            if alternative_to_any(site, reported.get(facts.path, [])):
                continue  # `try: instrument(engine=...) except: instrument(...)`: one runs
            evidence = _asyncpg_evidence(index, site, async_engines)
            if evidence:
                reported.setdefault(facts.path, []).append(site)
                yield ProjectReport(
                    facts.path,
                    site.line,
                    site.column,
                    site.end_line,
                    site.end_column,
                    message=f"{cls.MESSAGE} (asyncpg: {evidence})",
                )

    VALID = [
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine(
                "postgresql+asyncpg://app@pgbouncer/app",
                connect_args={"statement_cache_size": 0, "prepared_statement_cache_size": 0},
            )
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
            """,
            note="the statement cache is off (pgbouncer): there is nothing to defeat",
        ),
        Valid(
            """
            import os
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine_args = {"pool_pre_ping": True}
            if os.environ.get("POOLING", "1") == "1":
                engine_args["connect_args"] = {"statement_cache_size": 0, "prepared_statement_cache_size": 0}
            engine = create_async_engine(os.environ["DATABASE_URL"], **engine_args)
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
            """,
            note="connect_args built up in the engine's module: the cache is off there too",
        ),
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine("postgresql+asyncpg://app@db/app")
            SQLAlchemyInstrumentor().instrument(
                engine=engine.sync_engine,
                enable_commenter=True,
                commenter_options={"opentelemetry_values": False},
            )
            """,
            note="no traceparent: the comment is the same on every execution",
        ),
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine("sqlite+aiosqlite:///app.db")
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
            """,
            note="aiosqlite has no server-side statement cache",
        ),
        Valid(
            {
                "requirements.txt": "sqlalchemy[asyncio]\npsycopg[binary]\nopentelemetry-instrumentation-asyncpg\n",
                "app.py": """
                    import os
                    from sqlalchemy.ext.asyncio import create_async_engine
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    engine = create_async_engine(os.environ["DATABASE_URL"])
                    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
                """,
            },
            note="URL unknown; the dependencies name psycopg, and only the asyncpg *instrumentation*",
        ),
        Valid(
            {
                "requirements.txt": "sqlalchemy[asyncio]\npsycopg[binary]  # asyncpg was dropped: no prepared statements behind pgbouncer\n",
                "app.py": """
                    import os
                    from sqlalchemy.ext.asyncio import create_async_engine
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    engine = create_async_engine(os.environ["DATABASE_URL"])
                    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
                """,
            },
            note="asyncpg named only in a comment of the dependency file",
        ),
        Valid(
            """
            from sqlalchemy import create_engine
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            reports = create_engine("postgresql+psycopg2://app@db/app")
            app = create_async_engine("postgresql+asyncpg://app@db/app")
            SQLAlchemyInstrumentor().instrument(engine=reports, enable_commenter=True)
            """,
            note="the commenter is on for the sync psycopg2 engine only",
        ),
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine("postgresql+asyncpg://app@db/app")
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
            """,
            note="no commenter",
        ),
    ]
    INVALID = [
        Invalid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine("postgresql+asyncpg://app@db/app", pool_size=10)
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)  # ERROR
            """,
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/config.py": """
                    import os
                    from pydantic_settings import BaseSettings

                    class Settings(BaseSettings):
                        database_url: str = "postgresql://app@localhost/app"

                    settings = Settings()
                    ASYNC_URL = settings.database_url.replace("postgresql://", "postgresql+asyncpg://")
                """,
                "app/db.py": """
                    from sqlalchemy.ext import asyncio as sa_asyncio
                    from app.config import ASYNC_URL

                    def make_engine():
                        return sa_asyncio.create_async_engine(ASYNC_URL)

                    engine = make_engine()
                """,
                "app/telemetry.py": """
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    def setup():
                        SQLAlchemyInstrumentor().instrument(  # ERROR
                            enable_commenter=True,
                            commenter_options={"db_driver": False},
                        )
                """,
            },
            note="global instrument(); URL from a settings default rewritten with .replace(); options keep the traceparent",
        ),
        Invalid(
            {
                "pyproject.toml": """
                    [project]
                    name = "svc"
                    dependencies = ["sqlalchemy[asyncio]>=2", "asyncpg>=0.29", "opentelemetry-instrumentation-sqlalchemy"]

                    [tool.otel-sqla-doctor]
                    root = true
                """,
                "svc.py": """
                    import os
                    from sqlalchemy.ext.asyncio import create_async_engine
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    engine = create_async_engine(os.environ["DATABASE_URL"])
                    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)  # ERROR
                """,
            },
            note="URL from the environment; asyncpg declared in pyproject.toml",
        ),
        Invalid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine("postgresql+asyncpg://app@db/app")
            try:
                SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)  # ERROR
            except Exception:
                SQLAlchemyInstrumentor().instrument(enable_commenter=True)
            """,
            note="alternatives of one try/except: one report",
        ),
    ]


# -- which engines, which driver ---------------------------------------------------------------
def _statement_cache_off(index, call) -> bool:
    """`connect_args={"statement_cache_size": 0, "prepared_statement_cache_size": 0}` or the same
    in the URL's query (pgbouncer set-ups): asyncpg keeps no prepared statements to defeat."""
    connect_args = kwarg(call, "connect_args")
    value = index.value(connect_args) if connect_args and connect_args[0] != "dict" else connect_args
    if value and value[0] == "dict":
        for key, item in value[1]:
            if key and key[0] == "lit" and key[1] in ("statement_cache_size", "prepared_statement_cache_size"):
                if item and item[0] == "lit" and item[1] in (0, "0"):
                    return True
    url = _url(call)
    text = url[1] if url and url[0] == "lit" and isinstance(url[1], str) else ""
    return "prepared_statement_cache_size=0" in text or "statement_cache_size=0" in text


def _asyncpg_evidence(index, site, async_engines) -> Optional[str]:
    targets = [v for v in (kwarg(site.summary, "engine"), kwarg(site.summary, "engines")) if v is not None]
    if async_engines and all(
        _statement_cache_off(index, call.summary) or "statement_cache_size" in facts.mentions for facts, call in async_engines
    ):
        # Every async engine of the project turns the cache off (in its arguments, or in the
        # connect_args its module builds up for pgbouncer).
        return None
    if targets:
        creations: list = []
        for target in targets:
            creations.extend(_creations(index, target, 0))
        engines = [c for c in creations if _callee(index, c) == CREATE_ASYNC_ENGINE]
        if creations and not engines:
            return None  # only sync engines are instrumented
        engines = [c for c in engines if not _statement_cache_off(index, c)]
        if creations and not engines:
            return None
        urls = [(None, _url(c)) for c in engines]
    else:
        urls = [((facts, call), _url(call.summary)) for facts, call in async_engines]
        if not async_engines and any(s.callee == CREATE_ENGINE for _, s in index.all_calls()):
            return None  # sync engines only: no asyncpg behind SQLAlchemy
    unknown = not urls
    for where, url in urls:
        driver = _driver(index, url, 0)
        if driver == "asyncpg":
            if where is not None:
                return f"create_async_engine() at {where[0].path}:{where[1].line}"
            return "the instrumented engine's URL"
        if driver is None:
            unknown = True
    if not unknown:
        return None
    for facts in index.modules:
        for imported in facts.imports:
            if imported.module.split(".", 1)[0] == "asyncpg" and not is_test(facts.path):
                return f"imported in {facts.path}"
    for path, text in sorted(index.files.texts.items()):
        if DEPENDENCY_FILE.search(path) and ASYNCPG_DEPENDENCY.search(_COMMENT.sub("", text)):
            return f"declared in {path}"
    return None


def _callee(index, call) -> Optional[str]:
    if not call or call[0] != "call":
        return None
    return index.qualname_of(call[1])


def _raw(index, summary):
    """What a global name is bound to, as written (not evaluated): keeps the arguments of calls."""
    if not summary or summary[0] != "ref":
        return None
    split = index.locate(canonical(summary[1]))
    if split is None or not split[1]:
        return None
    facts, rest = split
    if rest in facts.symbols:
        return facts.symbols[rest]
    head, _, tail = rest.partition(".")
    bound = facts.symbols.get(head)
    if tail and bound and bound[0] == "call":  # settings = Settings(); settings.database_url
        cls = index.value(bound[1])
        if cls and cls[0] == "class":
            owner = index.locate(cls[1])
            if owner:
                return owner[0].symbols.get(f"{owner[1]}.{tail}")
    return None


def _creations(index, summary, depth: int) -> list:
    """The create_engine()/create_async_engine() calls an engine expression comes from."""
    if not summary or depth > 8:
        return []
    tag = summary[0]
    if tag == "list":
        return [c for item in summary[1] for c in _creations(index, item, depth + 1)]
    if tag == "attr" and summary[2] == "sync_engine":
        return _creations(index, summary[1], depth + 1)
    if tag == "ref":
        return _creations(index, _raw(index, summary), depth + 1)
    if tag == "call":
        callee = index.value(summary[1])
        if callee and callee[0] == "q" and callee[1] in (CREATE_ASYNC_ENGINE, CREATE_ENGINE):
            return [summary]
        if callee and callee[0] == "func":
            hit = index.function(callee[1])
            if hit:
                return [c for r in hit[1].returns for c in _creations(index, r, depth + 1)]
    return []


def _url(call):
    return positional(call, 0) or kwarg(call, "url")


def _driver(index, summary, depth: int) -> Optional[str]:
    """"asyncpg", "other", or None when the URL cannot be told."""
    text = _url_text(index, summary, depth)
    if text is None or "://" not in text and "+" not in text:
        return None
    scheme = text.split("://", 1)[0]
    if not scheme or "{" in scheme:
        return None
    return "asyncpg" if scheme.partition("+")[2] == "asyncpg" else "other"


def _url_text(index, summary, depth: int) -> Optional[str]:
    if not summary or depth > 10:
        return None
    tag = summary[0]
    if tag == "lit":
        return summary[1] if isinstance(summary[1], str) else None
    if tag == "fstr":
        first = summary[1][0] if summary[1] else None
        return first[1] if first and first[0] == "lit" and isinstance(first[1], str) else None
    if tag == "or":
        return _url_text(index, summary[1], depth + 1) or _url_text(index, summary[2], depth + 1)
    if tag == "ref":
        raw = _raw(index, summary)
        if raw is not None:
            return _url_text(index, raw, depth + 1)
    if tag == "call":
        callee = summary[1]
        if callee and callee[0] in ("attr", "ref") and (callee[-1] if callee[0] == "attr" else callee[1].rsplit(".", 1)[-1]) == "replace":
            new = positional(summary, 1)
            if new and new[0] == "lit" and isinstance(new[1], str) and "://" in new[1]:
                return new[1]
            base = callee[1] if callee[0] == "attr" else ("ref", callee[1].rsplit(".", 1)[0])
            return _url_text(index, base, depth + 1)
        name = index.qualname_of(callee)
        if name in ENV_GETTERS:
            return _url_text(index, positional(summary, 1) or kwarg(summary, "default"), depth + 1)
        if name in URL_BUILDERS:
            driver = positional(summary, 0) or kwarg(summary, "drivername")
            text = _url_text(index, driver, depth + 1)
            return f"{text}://" if text else None
        if name in URL_PARSERS:
            return _url_text(index, positional(summary, 0), depth + 1)
        if name in FIELD_DEFAULTS:
            return _url_text(index, positional(summary, 0) or kwarg(summary, "default"), depth + 1)
        if callee and callee[0] == "ref" and callee[1] == "str":
            return _url_text(index, positional(summary, 0), depth + 1)
    value = index.value(summary)
    if value and value != summary and value[0] in ("lit", "fstr"):
        return _url_text(index, value, depth + 1)
    return None
