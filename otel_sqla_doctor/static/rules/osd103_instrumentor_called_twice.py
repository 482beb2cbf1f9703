from __future__ import annotations

from typing import Iterable, Optional

import libcst as cst

from otel_sqla_doctor.static.facts import RUN_ONCE

from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.known import SQLALCHEMY_INSTRUMENTOR
from otel_sqla_doctor.static.launchers import AUTO_INSTRUMENTATION_INITIALIZE, launcher_for, sqlalchemy_instrumentation_installed, sqlalchemy_auto_instrumentation_disabled
from otel_sqla_doctor.static.patterns import exclusive, instrumentor_call, instrumentor_requirement, method_call
from otel_sqla_doctor.static.rule import Invalid, ProjectReport, Rule, Valid, check

WARNING = "Attempting to instrument while already instrumented"
_THIS = "otel_sqla_doctor.static.rules.osd103_instrumentor_called_twice"


class InstrumentorCalledTwice(Rule):
    """
    `SQLAlchemyInstrumentor().instrument(...)` runs more than once in one process: every call after the first is ignored.

    ## What it does
    Follows the project's start-up (module-level code and imports in order, the functions they call,
    then startup hooks and other functions that run later) and finds `SQLAlchemyInstrumentor()
    .instrument(...)` calls, per-engine (`engine=`/`engines=`) or global, in any mix, that run after
    another one already did, with no `uninstrument()` in between. Every such call is reported, naming
    the call that ran first; a call site that runs twice (a helper called once per engine, a call in
    a loop, an `__init__` run for each object built, through subclasses and `super()`) is reported
    too. An `opentelemetry-instrument` launcher that starts the process (a Dockerfile, compose file
    or Procfile naming its module), or `auto_instrumentation.initialize()`, counts as the first
    call when the SQLAlchemy instrumentation is installed and not disabled. Functions that nothing
    in the project calls (a library's API) are each followed alone.

    ## Why is this bad?
    Instrumentors are singletons with an "already instrumented" flag. The second `instrument()` only
    logs the WARNING `Attempting to instrument while already instrumented` and returns None: the
    engine it names gets `connect` spans only and no query spans, and its options (tracer provider,
    commenter) are ignored. The first call decides everything. Two engines instrumented by two calls
    therefore leave the second engine dark, and a global `instrument()` followed by a per-engine call
    (or the reverse) drops the second one (upstream #1103 and #3977).

    ## Example
    ```python
    SQLAlchemyInstrumentor().instrument(engine=primary.sync_engine)
    SQLAlchemyInstrumentor().instrument(engine=replica.sync_engine)  # ignored
    ```

    ## Use instead
    ```python
    SQLAlchemyInstrumentor().instrument(engines=[primary.sync_engine, replica.sync_engine])
    ```

    ## Fix safety
    Where the calls are consecutive statements of one block (no `uninstrument()` between, the same
    other arguments, each passing `engine=` or a literal `engines=[...]`, and no name they use
    rebound between them), the fix merges them into the last one, `instrument(engines=[...])` with
    every engine, and deletes the others. It is unsafe: the earlier engines are instrumented later
    than before (at the position of the last call, where every engine exists), so queries run in
    between are no longer traced, and the instrumentation now actually applies to engines that
    previously got no query spans (new spans, new SQL comments when the commenter is on).

    ## Known problems
    - A call preceded by `uninstrument()` in the flow (tests that instrument and uninstrument per
      test, in a fixture or in the test itself) is not reported; since the order of functions that
      run after start-up is not known, an `uninstrument()` anywhere in the same function, or run
      before it during start-up, counts.
    - Functions that run after start-up and that nothing in the project calls (startup hooks,
      lifespans, CLI commands, tests) are each taken as a separate continuation of start-up: two
      such functions that each instrument once are not reported against each other, since often
      only one of them runs (two CLI commands). Two startup hooks that both run are missed.
    - Calls in alternatives (`if`/`else`, `try`/`except`) are not reported against each other. A
      loop is taken to run at least twice, and a function nothing in the project runs (a
      library's public API) once, from a clean state.
    - The launcher is tied to a process by the module its command names (`uvicorn app.main:app`,
      `python -m worker`); a launcher that starts a console script is not tied to any.
    - A call inside an `if` that tests `is_instrumented_by_opentelemetry` is never reported: an
      idempotent setup is fine, but a guarded per-engine call after another one still leaves its
      engine without query spans, and that is missed. A later call with `skip_dep_check=True` is
      not reported either: it is the retry for a SQLAlchemy outside the declared range (OSD107).
    - Processes are told apart by their entry modules (modules nothing imports); tests run by
      pytest in one process beside a `conftest.py` are not joined with it.

    ## References
    - reproduced by tests/rules/test_osd103_live.py in the otel-sqla-doctor repository (`Attempting to instrument
      while already instrumented`, connect-only spans)
    - open-telemetry/opentelemetry-python-contrib#1103, #1132 (`engines=`, 0.33b0), #3977
    - https://opentelemetry-python-contrib.readthedocs.io/en/latest/instrumentation/sqlalchemy/sqlalchemy.html
    """

    CODE = "OSD103"
    NAME = "instrumentor-called-twice"
    FAMILY = "wiring"
    SEVERITY = Severity.ERROR
    MESSAGE = (
        "SQLAlchemyInstrumentor().instrument() runs again after an earlier call: it only logs "
        f'"{WARNING}" and returns None, so the engines it names get `connect` spans only, no query spans'
    )
    HINT = (
        "instrument once, with every engine: `SQLAlchemyInstrumentor().instrument(engines=[a.sync_engine, "
        "b.sync_engine])` (or call `uninstrument()` before instrumenting again)"
    )
    PREFILTER = (b"instrument",)
    FIX = "unsafe"

    # -- the fix, per file ---------------------------------------------------------------------
    def __init__(self, ctx, options=None) -> None:
        super().__init__(ctx, options)
        self._blocks: list[cst.CSTNode] = []
        self._block_nodes: dict[int, cst.CSTNode] = {}
        self._statement: Optional[cst.SimpleStatementLine] = None
        self._candidates: dict[int, dict[int, tuple]] = {}  # block -> statement -> (call, requirement, check)
        self._ordinals: dict[tuple, int] = {}
        self._indents: dict[int, list[str]] = {}

    def visit_Module(self, node: cst.Module) -> None:
        self._blocks.append(node)

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._blocks.append(node)

    def leave_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._blocks.pop()

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._statement = node

    def leave_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._statement = None

    def visit_Call(self, node: cst.Call) -> None:
        call = method_call(self.ctx, node, "instrument")
        if call is None or call.receiver is None:
            return
        summary = self.ctx.summarize(node)
        scope = self.ctx.function.qualname if self.ctx.function else ""
        key = (scope, summary)
        ordinal = self._ordinals.get(key, 0)
        self._ordinals[key] = ordinal + 1
        receiver = instrumentor_requirement(call.receiver)
        statement = self._statement
        if receiver is None or statement is None or not self._blocks:
            return
        if not (len(statement.body) == 1 and isinstance(statement.body[0], cst.Expr) and statement.body[0].value is node):
            return
        block = self._blocks[-1]
        self._block_nodes[id(block)] = block
        module = self.ctx.module_node
        self._indents[id(block)] = [
            b.indent if b.indent is not None else module.default_indent for b in self._blocks if isinstance(b, cst.IndentedBlock)
        ]
        reported = check(summary, f"{_THIS}:reported_by_project", self.ctx.path, scope, ordinal)
        self._candidates.setdefault(id(block), {})[id(statement)] = (node, receiver, reported)

    def leave_Module(self, node: cst.Module) -> None:
        for block_id, by_statement in self._candidates.items():
            block = self._block_nodes[block_id]
            run: list[tuple[int, cst.SimpleStatementLine, cst.Call, object, object]] = []
            body = list(block.body)
            for index, statement in enumerate(body):
                entry = by_statement.get(id(statement))
                engines = _engines(entry[0]) if entry else None
                if entry is not None and engines is not None:
                    if run and _other_arguments(run[-1][2]) != _other_arguments(entry[0]):
                        self._offer(run, body, self._indents[block_id])
                        run = []
                    run.append((index, statement, entry[0], entry[1], entry[2]))
                    continue
                if "instrument" in self.ctx.module_node.code_for_node(statement):
                    self._offer(run, body, self._indents[block_id])  # another instrument()/uninstrument(): a barrier
                    run = []
            self._offer(run, body, self._indents[block_id])

    def _offer(self, run: list, body: list, indents: list[str]) -> None:
        if len(run) < 2:
            return
        first_index, last_index = run[0][0], run[-1][0]
        used: set[str] = set()
        for _, _, call, _, _ in run[:-1]:
            for element in _engines(call) or ():
                used |= _names(element)
        between = [s for i, s in enumerate(body[first_index:last_index], start=first_index) if i not in {r[0] for r in run}]
        if any(_assigned(statement) & used for statement in between):
            return  # an engine name is rebound between the calls: moving it would change its meaning
        elements: list[cst.BaseExpression] = []
        seen: set[str] = set()
        for _, _, call, _, _ in run:
            for element in _engines(call) or ():
                text = self.ctx.module_node.code_for_node(element)
                if text not in seen:
                    seen.add(text)
                    elements.append(element)
        last = run[-1][2]
        merged_list = cst.List([cst.Element(e) for e in elements])
        new_args = []
        replaced = False
        for arg in last.args:
            if arg.keyword is not None and arg.keyword.value in ("engine", "engines"):
                if not replaced:
                    new_args.append(arg.with_changes(keyword=cst.Name("engines"), value=merged_list))
                    replaced = True
                continue
            new_args.append(arg)
        if new_args and new_args[-1].comma is not cst.MaybeSentinel.DEFAULT and len(new_args) < len(last.args):
            new_args[-1] = new_args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        merged = last.with_changes(args=new_args)
        text = _code_in_block(self.ctx.module_node, merged, indents)
        if text is None:
            return
        self.report(
            last,
            message=(
                "SQLAlchemyInstrumentor().instrument() again in the same block as an earlier call: it only logs "
                f'"{WARNING}" and returns None, so the engines it names get `connect` spans only, no query spans'
            ),
            requires=(*(entry[3] for entry in run), run[-1][4]),  # every receiver; the last call is reported
            replacement=text,
            fix_description=f"Merge the {len(run)} calls into one `instrument(engines=[...])` call",
            extra_edits=[(statement, "", True) for _, statement, _, _, _ in run[:-1]],
        )

    # -- the finding, for the whole project --------------------------------------------------------
    @classmethod
    def check_project(cls, index, options: dict) -> Iterable[ProjectReport]:
        found = _analyse(index)
        for facts, site, first_facts, first_site, event, first in sorted(found.values(), key=lambda f: (f[0].path, f[1].line, f[1].column)):
            if not site.line:
                continue
            names_engines = any(name in ("engine", "engines") for name, _ in site.summary[3])
            consequence = (
                "the engines it names get `connect` spans only, no query spans"
                if names_engines
                else "its options (tracer provider, commenter) are ignored and it instruments nothing"
            )
            launcher = getattr(first, "launcher", None)
            if launcher is not None:
                before = (
                    f"{launcher.how} at {launcher.path}:{launcher.line} already instrumented SQLAlchemy globally "
                    "before this process imported anything"
                )
            elif site is first_site and event is first:
                before = (
                    "this call runs more than once: once per iteration of its loop"
                    if getattr(site, "in_loop", False) or not event.via
                    else f"this call runs more than once: `{_short(event.via)}` is called from a loop"
                )
            elif site is first_site and first.via == event.via and event.via:
                within = f" within one call of `{_short(event.root)}`" if event.root and event.root != event.via else ""
                before = f"this call runs more than once: `{_short(event.via)}` runs again{within}"
            elif site is first_site:
                ways = " and then ".join(_short(v) if v else "module level" for v in (first.via, event.via))
                before = f"this call runs more than once ({ways})"
            else:
                before = f"the call at {first_facts.path}:{first_site.line} ran first"
            yield ProjectReport(
                facts.path, site.line, site.column, site.end_line, site.end_column,
                message=(
                    f"SQLAlchemyInstrumentor().instrument() runs again ({before}): it only logs \"{WARNING}\" "
                    f"and returns None, so {consequence}"
                ),
            )

    VALID = [
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            primary = create_async_engine("postgresql+asyncpg://app@db/app")
            replica = create_async_engine("postgresql+asyncpg://app@replica/app")
            SQLAlchemyInstrumentor().instrument(engines=[primary.sync_engine, replica.sync_engine])
            """,
            note="one call with every engine",
        ),
        Valid(
            """
            import pytest
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            @pytest.fixture
            def engine():
                engine = create_async_engine("sqlite+aiosqlite://")
                SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
                yield engine
                SQLAlchemyInstrumentor().uninstrument()

            def test_commenter():
                engine = create_async_engine("sqlite+aiosqlite://")
                SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
                try:
                    pass
                finally:
                    SQLAlchemyInstrumentor().uninstrument()
            """,
            note="tests that instrument and uninstrument each time",
        ),
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            _engine = None

            def get_engine():
                global _engine
                if _engine is None:
                    _engine = create_async_engine("postgresql+asyncpg://app@db/app")
                    SQLAlchemyInstrumentor().instrument(engine=_engine.sync_engine)
                return _engine

            async def handler():
                return get_engine()

            async def worker():
                return get_engine()

            get_engine()
            get_engine()
            for _ in range(3):
                get_engine()
            """,
            note="lazy initialisation behind `global _engine; if _engine is None`: runs once per process, loops too",
        ),
        Valid(
            {
                "app/__init__.py": "",
                "app/tracing.py": """
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    _instrumentor = SQLAlchemyInstrumentor()

                    def instrument_engine(engine):
                        _instrumentor.instrument(engine=engine.sync_engine)
                """,
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine

                    _engine = None

                    def get_engine():
                        global _engine
                        if _engine is None:
                            _engine = create_async_engine("postgresql+asyncpg://app@db/app")
                            from app.tracing import instrument_engine
                            instrument_engine(_engine)
                        return _engine
                """,
                "app/main.py": """
                    from app.db import get_engine

                    get_engine()
                    get_engine()
                """,
            },
            note="the helper that instruments is called behind the run-once guard of its caller",
        ),
        Valid(
            """
            import os
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engine = create_async_engine(os.environ["DATABASE_URL"])
            if os.environ.get("OTEL_SQL_COMMENTER") == "1":
                SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=True)
            else:
                SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
            """,
            note="alternatives: only one runs",
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
                "worker/__init__.py": "",
                "worker/main.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    engine = create_async_engine("postgresql+asyncpg://app@db/app")
                    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
                """,
            },
            note="two services, two processes",
        ),
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
            from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

            engine = create_async_engine("postgresql+asyncpg://app@db/app")
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
            AsyncPGInstrumentor().instrument()
            """,
            note="another instrumentor (that is OSD105's business)",
        ),
        Valid(
            """
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            def setup_tracing() -> None:
                instrumentor = SQLAlchemyInstrumentor()
                if not instrumentor.is_instrumented_by_opentelemetry:
                    instrumentor.instrument(enable_commenter=True)

            setup_tracing()
            setup_tracing()
            """,
            note="an idempotent setup called twice",
        ),
        Valid(
            """
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            instrumentor = SQLAlchemyInstrumentor()
            instrumentor.instrument()
            if not instrumentor.is_instrumented_by_opentelemetry:  # SQLAlchemy outside the declared range
                instrumentor.instrument(skip_dep_check=True)
            """,
            note="the retry with skip_dep_check=True",
        ),
        Valid(
            {
                "compose.yaml": """
                    services:
                      web:
                        command: opentelemetry-instrument uvicorn app.main:app
                        environment:
                          OTEL_PYTHON_DISABLED_INSTRUMENTATIONS: sqlalchemy
                """,
                "requirements.txt": "opentelemetry-instrumentation-sqlalchemy==0.66b1\nsqlalchemy==2.0.58\n",
                "app/__init__.py": "",
                "app/main.py": """
                    from sqlalchemy import create_engine
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    engine = create_engine("postgresql+psycopg://app@db/app")
                    SQLAlchemyInstrumentor().instrument(engine=engine, enable_commenter=True)
                """,
            },
            note="the launcher's SQLAlchemy instrumentation is disabled: the code's call is the first",
        ),
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            def check_each(urls):
                for url in urls:
                    engine = create_async_engine(url)
                    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
                    SQLAlchemyInstrumentor().uninstrument()
            """,
            note="a loop that uninstruments before the next round",
        ),
    ]
    INVALID = [
        Invalid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            primary = create_async_engine("postgresql+asyncpg://app@db/app")
            SQLAlchemyInstrumentor().instrument(engine=primary.sync_engine)

            # the read replica
            replica = create_async_engine("postgresql+asyncpg://app@replica/app")
            SQLAlchemyInstrumentor().instrument(engine=replica.sync_engine)  # ERROR
            """,
            expected_fix="""
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            primary = create_async_engine("postgresql+asyncpg://app@db/app")

            # the read replica
            replica = create_async_engine("postgresql+asyncpg://app@replica/app")
            SQLAlchemyInstrumentor().instrument(engines=[primary.sync_engine, replica.sync_engine])  # ERROR
            """,
            unsafe_fixes=True,
            note="two engines, two calls: merged into one",
        ),
        Invalid(
            """
            import sqlalchemy.ext.asyncio as sa_async
            from opentelemetry.instrumentation import sqlalchemy as otel_sa

            def init_db(urls: list[str], provider) -> list:
                instrumentor = otel_sa.SQLAlchemyInstrumentor()
                engines = [sa_async.create_async_engine(url) for url in urls]
                instrumentor.instrument(engine=engines[0].sync_engine, tracer_provider=provider)
                instrumentor.instrument(  # ERROR
                    engines=[engines[1].sync_engine, engines[2].sync_engine],
                    tracer_provider=provider,
                )
                return engines

            init_db(["sqlite+aiosqlite://"] * 3, None)
            """,
            expected_fix="""
            import sqlalchemy.ext.asyncio as sa_async
            from opentelemetry.instrumentation import sqlalchemy as otel_sa

            def init_db(urls: list[str], provider) -> list:
                instrumentor = otel_sa.SQLAlchemyInstrumentor()
                engines = [sa_async.create_async_engine(url) for url in urls]
                instrumentor.instrument(  # ERROR
                    engines=[engines[0].sync_engine, engines[1].sync_engine, engines[2].sync_engine],
                    tracer_provider=provider,
                )
                return engines

            init_db(["sqlite+aiosqlite://"] * 3, None)
            """,
            unsafe_fixes=True,
            note="aliases, an instance in a variable, engines=[...], inside a function",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/telemetry.py": """
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    def setup_tracing() -> None:
                        SQLAlchemyInstrumentor().instrument(enable_commenter=True)
                """,
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor as SAI

                    engine = create_async_engine("postgresql+asyncpg://app@db/app")
                    SAI().instrument(engine=engine.sync_engine)  # ERROR
                """,
                "app/main.py": """
                    from app.telemetry import setup_tracing

                    setup_tracing()

                    from app.db import engine
                """,
            },
            note="a global call, then a per-engine call in another module: the per-engine one is ignored",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    def make_engine(url: str) -> AsyncEngine:
                        engine = create_async_engine(url)
                        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)  # ERROR
                        return engine

                    orders = make_engine("postgresql+asyncpg://app@db/orders")
                    billing = make_engine("postgresql+asyncpg://app@db/billing")
                """,
            },
            note="one call site that runs once per engine",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/main.py": """
                    from contextlib import asynccontextmanager
                    from fastapi import FastAPI
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
                    from app.db import engine

                    SQLAlchemyInstrumentor().instrument()

                    @asynccontextmanager
                    async def lifespan(app: FastAPI):
                        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)  # ERROR
                        yield

                    app = FastAPI(lifespan=lifespan)
                """,
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine

                    engine = create_async_engine("postgresql+asyncpg://app@db/app")
                """,
            },
            note="global at import time, then per-engine in the lifespan",
        ),
        Invalid(
            """
            import os
            from sqlalchemy.ext.asyncio import create_async_engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            engines = {}
            for name in ("orders", "billing"):
                engines[name] = create_async_engine(os.environ[f"{name.upper()}_DATABASE_URL"])
                SQLAlchemyInstrumentor().instrument(engine=engines[name].sync_engine)  # ERROR
            """,
            note="one call per engine in a loop",
        ),
        Invalid(
            {
                "dblib/__init__.py": "",
                "dblib/database.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    class Database:
                        def __init__(self, url: str) -> None:
                            self.engine = create_async_engine(url)
                            SQLAlchemyInstrumentor().instrument(engine=self.engine.sync_engine)  # ERROR

                    class ReadOnlyDatabase(Database):
                        def __init__(self, url: str) -> None:
                            super().__init__(url)
                """,
                "dblib/cluster.py": """
                    from dblib.database import Database, ReadOnlyDatabase

                    class Cluster:
                        def __init__(self, databases):
                            self.databases = databases

                        @classmethod
                        def with_replicas(cls, url, replica_urls):
                            return cls([Database(url)] + [ReadOnlyDatabase(u) for u in replica_urls])
                """,
            },
            note="a library: each object instruments its own engine, and one call builds several (through super())",
        ),
        Invalid(
            {
                "compose.yaml": """
                    services:
                      web:
                        command: opentelemetry-instrument uvicorn app.main:app --host 0.0.0.0
                """,
                "requirements.txt": "opentelemetry-instrumentation-sqlalchemy==0.66b1\nsqlalchemy==2.0.58\n",
                "app/__init__.py": "",
                "app/main.py": """
                    from sqlalchemy import create_engine
                    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

                    engine = create_engine("postgresql+psycopg://app@db/app")
                    SQLAlchemyInstrumentor().instrument(engine=engine, enable_commenter=True)  # ERROR
                """,
                "tests/test_app.py": """
                    from app.main import engine

                    def test_engine():
                        assert engine is not None
                """,
            },
            note="the `opentelemetry-instrument` launcher instrumented first: the commenter never turns on",
        ),
    ]


# -- helpers -------------------------------------------------------------------------------------------
def _short(qualname: str) -> str:
    """`Database.__init__` for `pkg.database.Database.__init__`: the name a reader finds in the file."""
    parts = qualname.split(".")
    return ".".join(parts[-2:]) if len(parts) >= 2 and parts[-2][:1].isupper() else parts[-1]


def _engines(call: cst.Call) -> Optional[list[cst.BaseExpression]]:
    """The engines a call names, when the fix can merge it (keyword arguments only)."""
    found: Optional[list] = None
    for arg in call.args:
        if arg.star or arg.keyword is None:
            return None
        if arg.keyword.value == "engine":
            if found is not None:
                return None
            found = [arg.value]
        elif arg.keyword.value == "engines":
            if found is not None or not isinstance(arg.value, (cst.List, cst.Tuple)):
                return None
            elements = arg.value.elements
            if any(not isinstance(e, cst.Element) for e in elements):
                return None
            found = [e.value for e in elements]
    return found


def _code_in_block(module: cst.Module, node: cst.CSTNode, indents: list[str]) -> Optional[str]:
    """The node's code as it reads inside its block: continuation lines keep the block's indentation
    (`Module.code_for_node` renders a node as if it stood at column 0)."""
    text = module.code_for_node(node)
    if "\n" not in text or not indents:
        return text
    try:
        from libcst._nodes.internal import CodegenState

        state = CodegenState(default_indent=module.default_indent, default_newline=module.default_newline)
        state.indent_tokens.extend(indents)
        node._codegen(state)
        return "".join(state.tokens)
    except Exception:  # a private LibCST API: without it, no fix rather than a misindented one
        return None


def _other_arguments(call: cst.Call) -> tuple:
    module = cst.Module([])
    return tuple(
        sorted(
            (arg.keyword.value, module.code_for_node(arg.value))
            for arg in call.args
            if arg.keyword is not None and arg.keyword.value not in ("engine", "engines")
        )
    )


def _names(node: cst.CSTNode) -> set[str]:
    found: set[str] = set()

    class Names(cst.CSTVisitor):
        def visit_Name(self, name: cst.Name) -> None:
            found.add(name.value)

    node.visit(Names())
    return found


def _assigned(statement: cst.CSTNode) -> set[str]:
    found: set[str] = set()

    class Targets(cst.CSTVisitor):
        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            found.update(_names(node.target))

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            found.update(_names(node.target))

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            found.update(_names(node.target))

        def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
            found.update(_names(node.target))

        def visit_For(self, node: cst.For) -> None:
            found.update(_names(node.target))

        def visit_AsName(self, node: cst.AsName) -> None:
            found.update(_names(node.name))

        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            found.add(node.name.value)

        def visit_ClassDef(self, node: cst.ClassDef) -> None:
            found.add(node.name.value)

        def visit_Del(self, node: cst.Del) -> None:
            found.update(_names(node.target))

        def visit_Global(self, node: cst.Global) -> None:
            found.update(item.name.value for item in node.names)

    statement.visit(Targets())
    return found


def _analyse(index) -> dict:
    """id(site) -> (facts, site, first facts, first site, event, first event), for every ignored call."""
    cached = index.__dict__.get("_osd103_found")
    if cached is not None:
        return cached
    found: dict[int, tuple] = {}

    auto_instrumented = sqlalchemy_instrumentation_installed(index) and not sqlalchemy_auto_instrumentation_disabled(index)

    def relevant(event):
        if event.kind != "call" or event.site is None:
            return None
        if event.site.callee == AUTO_INSTRUMENTATION_INITIALIZE:
            return "instrument" if auto_instrumented else None  # every installed instrumentor, globally
        call = instrumentor_call(index, event.site, ("instrument", "uninstrument"))
        if call is None or call.cls != SQLALCHEMY_INSTRUMENTOR or not call.on_instance:
            return None
        return call.method

    def run(events, active):
        for position, (event, method) in enumerate(events):
            if method == "uninstrument":
                active = None
            elif active is None:
                active = event
                if event.repeated and not _guarded_or_retry(event.site) and not _undone_in(events[position + 1:], event):
                    # A call made in a loop (or in a function called from one), per engine or per object.
                    found.setdefault(id(event.site), (event.module, event.site, event.module, event.site, event, event))
            elif _guarded_or_retry(event.site):
                continue  # runs only when the earlier call did not take, or cannot hurt if it did
            elif not exclusive(active.branches, event.branches):
                found.setdefault(id(event.site), (event.module, event.site, active.module, active.site, event, active))
        return active

    for entry, timeline in index.entry_timelines():
        launcher = launcher_for(index, entry)
        startup: list = [(_LauncherStart(launcher), "instrument")] if launcher else []
        roots: dict[str, list] = {}
        for event in timeline:
            method = relevant(event)
            if method is None:
                continue
            if event.late:
                roots.setdefault(getattr(event, "root", "") or event.via, []).append((event, method))
            else:
                startup.append((event, method))
        after_startup = run(startup, None)
        for events in roots.values():
            run(events, after_startup)  # each later root continues from the end of start-up
    for timeline in index.orphan_timelines():
        run([(event, method) for event in timeline if (method := relevant(event)) is not None], None)
    index.__dict__["_osd103_found"] = found
    return found


class _LauncherStart:
    """The global `instrument()` that `opentelemetry-instrument` runs before the entry starts."""

    module = site = None
    branches: tuple = ()
    via = root = ""
    late = repeated = False

    def __init__(self, launcher) -> None:
        self.launcher = launcher


def _undone_in(later, event) -> bool:
    """An `uninstrument()` later in the same function: the loop instruments and undoes each time."""
    return any(method == "uninstrument" and other.via == event.via for other, method in later)


def _guarded_or_retry(site) -> bool:
    """`if not inst.is_instrumented_by_opentelemetry: inst.instrument(...)` is idempotent by design, and
    `instrument(..., skip_dep_check=True)` after a call is the retry for a SQLAlchemy outside the declared
    range (OSD107): the earlier call instrumented nothing, or this one is a harmless no-op."""
    guards = getattr(site, "guards", ())
    if "is_instrumented_by_opentelemetry" in guards or RUN_ONCE in guards:
        return True  # idempotent by design, or lazy initialisation that runs once per process
    for name, value in site.summary[3]:
        if name == "skip_dep_check" and value == ("lit", True):
            return True
    return False


def reported_by_project(index, summary, path: str, scope: str, ordinal: int) -> bool:
    """Requirement of the file visitor's fix: the project analysis reports this very call site."""
    facts = next((m for m in index.modules if m.path == path), None)
    if facts is None:
        return False
    same = [s for s in facts.calls if s.scope == scope and s.summary == summary]
    if ordinal >= len(same):
        return False
    return id(same[ordinal]) in _analyse(index)
