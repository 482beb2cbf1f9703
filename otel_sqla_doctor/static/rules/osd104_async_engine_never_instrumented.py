from __future__ import annotations

from typing import Iterable, Optional

from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.summary import kwarg
from otel_sqla_doctor.static.rule import Invalid, ProjectReport, Rule, Valid
from otel_sqla_doctor.static.launchers import launchers
from otel_sqla_doctor.static.paths import is_test
from otel_sqla_doctor.static.startup import (
    Creation,
    creation_function,
    engine_label,
    instrument_call,
    sets_up_tracing,
    site_span,
    startup_orders,
)

# Other libraries' ways to instrument SQLAlchemy engines (they call the instrumentor themselves).
LOGFIRE_INSTRUMENT_SQLALCHEMY = "logfire.instrument_sqlalchemy"
OTHER_INSTRUMENTATION_CALLS = frozenset({LOGFIRE_INSTRUMENT_SQLALCHEMY, "logfire.instrument_asyncpg"})
ASYNCPG_INSTRUMENTOR = "opentelemetry.instrumentation.asyncpg.AsyncPGInstrumentor"

_MATCH, _OTHER, _UNKNOWN = "match", "other", "unknown"


class AsyncEngineNeverInstrumented(Rule):
    """
    An `AsyncEngine` that no OpenTelemetry instrumentation reaches, in a project that uses OpenTelemetry.

    ## What it does
    Finds each `create_async_engine(...)` (at module level, in a factory or in a startup hook) and
    checks, over a simulated start of each entry module, that something instruments it:
    - a `SQLAlchemyInstrumentor().instrument(...)` call that runs before the engine is created
      (any form: every call replaces `create_async_engine`) and before the `from ... import
      create_async_engine` it is created through; or
    - an `instrument(engine=X.sync_engine)` / `instrument(engines=[..., X.sync_engine])` naming it; or
    - an `opentelemetry-instrument` launcher in the repository's Dockerfile, Procfile, compose
      files, shell scripts, Makefile or pyproject.toml.
    It reports the engine's creation when none does.

    The rule is silent in projects that do not set OpenTelemetry up themselves: no import of the
    SDK, an exporter, an instrumentor or a distro (`opentelemetry.sdk`, `opentelemetry.exporter`,
    `opentelemetry.instrumentation`, `azure.monitor.opentelemetry`, `logfire`). Not tracing is a
    choice, not a bug, and code that only uses the API (`trace.get_tracer`) is configured by its
    deployment. It also stays silent when a start that creates the engine sets nothing up (a CLI,
    a migration script), for engines created in tests, and when `logfire.instrument_sqlalchemy`
    is called anywhere. An engine that a global `instrument()` misses because it runs too late is
    reported once, by OSD102, not again here.

    ## Why is this bad?
    The service exports spans (HTTP requests, custom spans), so tracing looks complete, but every
    query through this engine is invisible: not even the `connect` span appears unless some
    instrument() call ran. Slow queries, N+1 patterns and database errors never reach the traces.
    Giving `instrument()` another engine does not help: its `engine=`/`engines=` arguments only
    add tracers to the engines named, and engines created before the call are left alone.

    ## Example
    ```python
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from sqlalchemy.ext.asyncio import create_async_engine

    primary = create_async_engine(PRIMARY_URL)
    replica = create_async_engine(REPLICA_URL)  # never instrumented
    SQLAlchemyInstrumentor().instrument(engine=primary.sync_engine)
    ```

    ## Use instead
    ```python
    SQLAlchemyInstrumentor().instrument(engines=[primary.sync_engine, replica.sync_engine])
    ```

    ## Known problems
    When an `instrument(engine=...)` argument cannot be followed (a function parameter, an
    attribute that the project never assigns an engine to), the rule assumes it may be any engine
    and reports nothing. An attribute (`app.state.engine`, `self.engine`) is followed by its name
    across the project, whatever object holds it. `logfire.instrument_sqlalchemy(engine=...)`
    counts as naming that engine; without `engine=` it instruments globally and the rule is silent. Two engines created by identical calls (same arguments) are not told apart.
    Instrumentation done outside the repository (the OpenTelemetry Operator injecting
    auto-instrumentation into a Kubernetes pod, a base image's entrypoint) is not seen: add a
    suppression comment (`# doctor: ignore[OSD104]`) or disable the rule. An instrument() call
    in another entry module (gunicorn.conf.py, a sitecustomize) counts as possibly reaching
    every engine, since the two starts cannot be ordered. `AsyncPGInstrumentor().instrument()`
    (or `logfire.instrument_asyncpg()`) counts as reaching every engine: it traces the driver
    under SQLAlchemy's asyncpg dialect, though not an engine on another driver beside it.
    `auto_instrumentation.initialize()` called in the code counts as the launcher. A project
    that neither sets up the OpenTelemetry SDK nor uses an instrumentation (spans made through
    logfire for LLM calls only) is not reported: nothing says it wants database spans.

    ## References
    - reproduced by tests/rules/test_osd104_live.py in the otel-sqla-doctor repository (per-engine instrument of
      `sync_engine` works; `engines=` for several)
    - open-telemetry/opentelemetry-python-contrib#1648, #1103
    """

    CODE = "OSD104"
    NAME = "async-engine-never-instrumented"
    FAMILY = "wiring"
    SEVERITY = Severity.WARNING
    MESSAGE = (
        "AsyncEngine is never instrumented: no SQLAlchemyInstrumentor().instrument() runs before it is "
        "created, none names its `sync_engine`, and no `opentelemetry-instrument` launcher starts the "
        "service, so its queries produce no spans"
    )
    HINT = (
        "instrument it after it is created, in one call for all engines: "
        "`SQLAlchemyInstrumentor().instrument(engines=[engine.sync_engine, ...])`"
    )
    PREFILTER = ()
    FIX = None

    @classmethod
    def check_project(cls, index, options: dict) -> Iterable[ProjectReport]:
        if launchers(index) or not sets_up_tracing(index) or _other_instrumentation(index):
            return []
        if not _uses_instrumentations(index):
            return []  # tracing set up by hand for other things (LLM calls): no database spans asked for
        orders = startup_orders(index)
        explicit_targets: list = []  # engine= / engines= summaries anywhere in the project
        instrument_sites: list = []
        for facts, site in index.all_calls():
            call = instrument_call(index, site)
            if call is None:
                explicit_targets.extend(_logfire_targets(site))
                continue
            instrument_sites.append((facts, site))
            explicit_targets.extend(call[1])
        # Creations, with the starts (timelines) they run in.
        runs: dict[int, list] = {}
        creations: dict[int, Creation] = {}
        for order in orders:
            for creation in order.creations:
                if creation.kind == "async_engine" and not is_test(creation.facts.path):
                    runs.setdefault(id(creation.site), []).append((order, creation))
                    creations.setdefault(id(creation.site), creation)
        reports = []
        for key, creation in creations.items():
            if _named_by_instrument(index, creation, explicit_targets):
                continue
            occurrences = runs[key]
            traced_starts = [(o, c) for o, c in occurrences if o.tracing_set_up]
            if not traced_starts:
                continue  # only started by processes that do not use OpenTelemetry
            seen_sites = {id(i.site) for o, _ in occurrences for i in o.instruments}
            if any(id(site) not in seen_sites and not is_test(facts.path) for facts, site in instrument_sites):
                continue  # an instrument() in another start (gunicorn.conf.py, ...): no known order
            if any(_reached(order, c) for order, c in traced_starts):
                continue
            line, column, end_line, end_column = site_span(creation.site)
            others = [i for o, _ in traced_starts for i in o.instruments]
            why = (
                "; the SQLAlchemyInstrumentor().instrument() call at "
                f"{others[0].facts.path}:{others[0].site.line} instruments other engines only"
                if others
                else ""
            )
            reports.append(
                ProjectReport(
                    path=creation.facts.path,
                    line=line,
                    column=column,
                    end_line=end_line,
                    end_column=end_column,
                    message=(
                        f"AsyncEngine {engine_label(creation)} is never instrumented: no SQLAlchemyInstrumentor()."
                        "instrument() runs before it is created, none names its `sync_engine`, and no "
                        f"`opentelemetry-instrument` launcher starts the service{why}. Its queries produce no spans"
                    ),
                )
            )
        return sorted(reports, key=lambda r: (r.path, r.line, r.column))

    VALID = [
        Valid(
            {
                "api/__init__.py": "",
                "api/main.py": """
                    from contextlib import asynccontextmanager

                    from fastapi import FastAPI
                    from opentelemetry import trace
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                    from opentelemetry.sdk.trace import TracerProvider
                    from sqlalchemy.ext.asyncio import create_async_engine

                    @asynccontextmanager
                    async def lifespan(app: FastAPI):
                        engine = create_async_engine("postgresql+asyncpg://api@db/api")
                        app.state.db_engine = engine
                        trace.set_tracer_provider(TracerProvider())
                        SQLAlchemyInstrumentor().instrument(engine=app.state.db_engine.sync_engine)
                        yield

                    app = FastAPI(lifespan=lifespan)
                """,
            },
            note="the engine kept in `app.state` is the one instrumented",
        ),
        Valid(
            {
                "agent/__init__.py": "",
                "agent/db.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine

                    engine = create_async_engine("postgresql+asyncpg://app@db/app")
                """,
                "agent/main.py": """
                    import logfire
                    from opentelemetry import trace

                    from agent.db import engine

                    logfire.configure()
                    logfire.instrument_openai_agents()
                    tracer = trace.get_tracer("agent")
                """,
            },
            note="tracing set up for LLM calls only (logfire), no SDK or instrumentation of its own",
        ),
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine("postgresql+asyncpg://app@db/app")
            """,
            note="no OpenTelemetry anywhere: the project does not trace, not our business",
        ),
        Valid(
            """
            from opentelemetry import trace
            from sqlalchemy.ext.asyncio import create_async_engine

            tracer = trace.get_tracer(__name__)

            async def main(url: str) -> None:
                engine = create_async_engine(url)
                with tracer.start_as_current_span("job"):
                    async with engine.connect():
                        pass
            """,
            note="the API only: tracing (and instrumentation) is configured by the deployment",
        ),
        Valid(
            """
            import logfire
            from sqlalchemy.ext.asyncio import create_async_engine

            logfire.configure()
            engine = create_async_engine("postgresql+asyncpg://app@db/app")
            logfire.instrument_sqlalchemy(engine=engine)
            """,
            note="Logfire instruments the engine (it calls the instrumentor itself)",
        ),
        Valid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine

                    primary = create_async_engine("postgresql+asyncpg://app@db/app")
                    replica = create_async_engine("postgresql+asyncpg://app@replica/app", pool_size=2)
                """,
                "app/telemetry.py": """
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                    from app.db import primary, replica

                    def setup() -> None:
                        SQLAlchemyInstrumentor().instrument(engines=[primary.sync_engine, replica.sync_engine])
                """,
                "app/main.py": """
                    from app.telemetry import setup

                    setup()
                """,
            },
            note="both engines named, across modules",
        ),
        Valid(
            {
                "app/__init__.py": "",
                "app/main.py": """
                    from contextlib import asynccontextmanager

                    from fastapi import FastAPI
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                    from sqlalchemy.ext.asyncio import create_async_engine

                    @asynccontextmanager
                    async def lifespan(app: FastAPI):
                        engine = create_async_engine("postgresql+asyncpg://app@db/app")
                        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
                        app.state.engine = engine
                        yield
                        await engine.dispose()

                    app = FastAPI(lifespan=lifespan)
                """,
            },
            note="created and instrumented in the lifespan",
        ),
        Valid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine

                    engine = create_async_engine("postgresql+asyncpg://app@db/app")
                """,
                "app/main.py": """
                    from fastapi import FastAPI
                    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
                    from app.db import engine

                    app = FastAPI()
                    FastAPIInstrumentor.instrument_app(app)
                """,
                "Procfile": "web: opentelemetry-instrument uvicorn app.main:app --host 0.0.0.0\n",
            },
            note="started under opentelemetry-instrument (OSD106 covers its own catch)",
        ),
        Valid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    import sqlalchemy.ext.asyncio as sa_async
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    other = sa_async.create_async_engine("sqlite+aiosqlite:///jobs.db")
                    SQLAlchemyInstrumentor().instrument(engine=other.sync_engine)
                    engine = sa_async.create_async_engine("postgresql+asyncpg://app@db/app")
                """,
            },
            note="created after an instrument() call: the wrapped create_async_engine gives it a tracer",
        ),
        Valid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine

                    engine = create_async_engine("postgresql+asyncpg://app@db/app")
                """,
                "app/telemetry.py": """
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    def instrument_database(engine) -> None:
                        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
                """,
                "app/main.py": """
                    from app.db import engine
                    from app.telemetry import instrument_database

                    instrument_database(engine)
                """,
            },
            note="a helper that takes the engine as a parameter: cannot tell which engine, so assume it",
        ),
        Valid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine

                    engine = create_async_engine("postgresql+asyncpg://app@db/app")
                """,
                "app/main.py": """
                    from opentelemetry import trace
                    from app.db import engine

                    tracer = trace.get_tracer(__name__)
                """,
                "scripts/migrate.py": """
                    import asyncio
                    from sqlalchemy.ext.asyncio import create_async_engine

                    async def main() -> None:
                        engine = create_async_engine("postgresql+asyncpg://app@db/app")
                        await engine.dispose()

                    asyncio.run(main())
                """,
                "gunicorn.conf.py": """
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    def post_fork(server, worker):
                        SQLAlchemyInstrumentor().instrument()
                """,
            },
            note="instrumented from gunicorn's post_fork hook (another start); the script does not trace",
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
            },
            note="a global instrument() that runs too late is OSD102's finding, not reported twice",
        ),
    ]
    INVALID = [
        Invalid(
            {
                "api/__init__.py": "",
                "api/main.py": """
                    from contextlib import asynccontextmanager

                    from fastapi import FastAPI
                    from opentelemetry import trace
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                    from opentelemetry.sdk.trace import TracerProvider
                    from sqlalchemy.ext.asyncio import create_async_engine

                    def setup_db(app: FastAPI) -> None:
                        app.state.db_engine = create_async_engine("postgresql+asyncpg://api@db/api")
                        graph_engine = create_async_engine("postgresql+asyncpg://api@graph/traces")  # ERROR
                        app.state.graph_engine = graph_engine

                    def setup_tracing(app: FastAPI) -> None:
                        trace.set_tracer_provider(TracerProvider())
                        SQLAlchemyInstrumentor().instrument(engine=app.state.db_engine.sync_engine)

                    @asynccontextmanager
                    async def lifespan(app: FastAPI):
                        setup_db(app)
                        setup_tracing(app)
                        yield

                    app = FastAPI(lifespan=lifespan)
                """,
            },
            note="engines kept in `app.state`: the instrumented attribute holds the other engine",
        ),
        Invalid(
            {
                "svc/__init__.py": "",
                "svc/main.py": """
                    from contextlib import asynccontextmanager
                    from functools import lru_cache

                    import logfire
                    from fastapi import FastAPI
                    from sqlalchemy.ext.asyncio import create_async_engine

                    @lru_cache
                    def get_engine():
                        return create_async_engine("postgresql+asyncpg://svc@db/svc")

                    @asynccontextmanager
                    async def lifespan(app: FastAPI):
                        logfire.configure()
                        logfire.instrument_sqlalchemy(engine=get_engine().sync_engine)
                        yield

                    def add_audit_log(app: FastAPI) -> None:
                        audit_engine = create_async_engine("postgresql+asyncpg://svc@db/audit")  # ERROR
                        app.state.audit_engine = audit_engine

                    app = FastAPI(lifespan=lifespan)
                    add_audit_log(app)
                """,
            },
            note="logfire.instrument_sqlalchemy(engine=...) names one engine; a second one is left out",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine

                    engine = create_async_engine("postgresql+asyncpg://app@db/app")  # ERROR
                """,
                "app/main.py": """
                    from fastapi import FastAPI
                    from opentelemetry import trace
                    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
                    from opentelemetry.sdk.trace import TracerProvider

                    from app.db import engine

                    trace.set_tracer_provider(TracerProvider())
                    app = FastAPI()
                    FastAPIInstrumentor.instrument_app(app)
                """,
            },
            note="HTTP traced, the database never instrumented",
        ),
        Invalid(
            """
            import sqlalchemy.ext.asyncio as sa_async
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor as SAI

            primary = sa_async.create_async_engine("postgresql+asyncpg://app@db/app")
            replica = sa_async.create_async_engine("postgresql+asyncpg://app@replica/app")  # ERROR
            SAI().instrument(engine=primary.sync_engine)
            """,
            note="aliases; the instrumentor is given another engine",
        ),
        Invalid(
            {
                "svc/__init__.py": "",
                "svc/engines.py": """
                    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

                    def analytics_engine(url: str) -> AsyncEngine:
                        return create_async_engine(url, pool_size=2)  # ERROR

                    main_engine = create_async_engine("postgresql+asyncpg://svc@db/svc")
                    reporting = analytics_engine("postgresql+asyncpg://svc@olap/svc")
                """,
                "svc/otel.py": """
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                    from svc.engines import main_engine

                    SQLAlchemyInstrumentor().instrument(engines=[main_engine.sync_engine])
                """,
                "svc/app.py": """
                    from svc import otel
                    from svc.engines import reporting
                """,
            },
            note="across modules: the engine from a factory is missed by engines=[...]",
        ),
        Invalid(
            {
                "worker/__init__.py": "",
                "worker/tracing.py": """
                    from opentelemetry import trace
                    from opentelemetry.sdk.trace import TracerProvider

                    def configure() -> None:
                        trace.set_tracer_provider(TracerProvider())
                """,
                "worker/main.py": """
                    import asyncio

                    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

                    from worker.tracing import configure

                    async def main() -> None:
                        configure()
                        engine = create_async_engine("postgresql+asyncpg://w@db/w")  # ERROR
                        Session = async_sessionmaker(engine)
                        async with Session() as session:
                            ...

                    if __name__ == "__main__":
                        asyncio.run(main())
                """,
            },
            note="an engine created in a function of a worker that sets up tracing",
        ),
    ]


def _uses_instrumentations(index) -> bool:
    """The project sets up the OpenTelemetry SDK itself or traces its libraries with instrumentations
    (SQLAlchemy's, its web framework's...): then an engine left out is a gap, not a choice."""
    if any(_logfire_targets(site) for _, site in index.all_calls()):
        return True
    return any(
        (site.module.startswith("opentelemetry.instrumentation.") or site.module.split(".")[:2] == ["opentelemetry", "sdk"])
        and not is_test(facts.path)
        for facts in index.modules
        for site in facts.imports
        if site.module != "opentelemetry.instrumentation.utils"
    )


def _logfire_targets(site) -> tuple:
    """The engines `logfire.instrument_sqlalchemy(engine=...)` / `(engines=[...])` names."""
    if site.callee != LOGFIRE_INSTRUMENT_SQLALCHEMY:
        return ()
    targets: list = []
    for name in ("engine", "engines"):
        value = kwarg(site.summary, name)
        if value is None or value == ("lit", None):
            continue
        targets.extend(value[1] if value[0] in ("list", "tuple") else (value,))
    return tuple(targets)


def _other_instrumentation(index) -> bool:
    from otel_sqla_doctor.static.patterns import instrumentor_call

    for facts, site in index.all_calls():
        call = instrumentor_call(index, site, ("instrument",))
        # The asyncpg instrumentation patches the driver's classes for every connection, those of
        # SQLAlchemy's asyncpg dialect included: the queries are traced as asyncpg spans.
        if call is not None and call.on_instance and call.cls == ASYNCPG_INSTRUMENTOR:
            return True
    for facts in index.modules:
        for site in facts.calls:
            # logfire.instrument_sqlalchemy(engine=...) instruments the engines it names only: those
            # are followed like SQLAlchemyInstrumentor's engine= (see `_logfire_targets`).
            if site.callee in OTHER_INSTRUMENTATION_CALLS and not _logfire_targets(site):
                return True
        recorded = {site.order for site in facts.calls}
        for function in facts.functions.values():
            if any(callee in OTHER_INSTRUMENTATION_CALLS and order not in recorded for order, callee in function.calls):
                return True
    return False


def _named_by_instrument(index, creation: Creation, targets: list) -> bool:
    """An engine=/engines= argument names this engine, or may (when it cannot be followed)."""
    return any(_target_matches(index, creation, t) != _OTHER for t in targets)


def _target_matches(index, creation: Creation, target) -> str:
    named: Optional[tuple] = None
    summary = target
    for _ in range(16):
        if summary is None:
            return _UNKNOWN
        tag = summary[0]
        if tag == "attr" and summary[2] == "sync_engine":
            summary = summary[1]
            continue
        if tag == "ref":
            qualname = summary[1]
            if qualname.endswith(".sync_engine"):
                qualname = qualname[: -len(".sync_engine")]
            split = index.locate(qualname)
            if split is None or not split[1]:
                return _UNKNOWN
            facts, rest = split
            symbol = facts.symbols.get(rest)
            if symbol is None:
                return _UNKNOWN
            named = (facts, rest)
            summary = symbol
            continue
        if tag == "call":
            return _call_matches(index, creation, summary, named)
        if tag == "attr":
            # `app.state.engine`, `self.engine`: the engines the project stores under that name.
            stored = index.attribute_stores(summary[2])
            verdicts = {_call_matches(index, creation, call, None) for call in stored}
            if not stored or _UNKNOWN in verdicts:
                return _UNKNOWN
            return _MATCH if _MATCH in verdicts else _OTHER
        return _UNKNOWN
    return _UNKNOWN


def _call_matches(index, creation: Creation, call, named) -> str:
    site = creation.site
    if call == site.summary:
        if named is not None:
            facts, name = named
            lines = facts.symbol_lines.get(name)
            if facts is creation.facts and lines and not site.scope and lines[0] != site.line:
                return _OTHER  # same arguments, another assignment
        return _MATCH
    callee = index.qualname_of(call[1]) if call[1] else None
    if callee and index.function(callee) is not None:
        # A factory: does it (or what it calls) contain this creation?
        return _MATCH if site.scope and site.scope in _reachable_functions(index, index.function(callee)[1].qualname) else _OTHER
    from otel_sqla_doctor.static.facts import CallSite

    probe = CallSite(callee=callee or "", summary=call, scope="", order=0)
    if creation_function(index, probe) is not None:
        return _OTHER  # another create_async_engine(...) call
    return _UNKNOWN


def _reachable_functions(index, qualname: str) -> set[str]:
    seen: set[str] = set()
    stack = [qualname]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        hit = index.functions.get(current)
        if hit is None:
            continue
        for _, callee in hit[1].calls:
            found = index.function(callee)
            if found is not None:
                stack.append(found[1].qualname)
    return seen


def _reached(order, creation: Creation) -> bool:
    """Some instrument() in this start may reach the engine (or OSD102 reports why not)."""
    if any(i.is_global for i in order.instruments):
        return True  # reached, or missed for a reason OSD102 reports at that call
    return order.possibly_wrapped(creation)
