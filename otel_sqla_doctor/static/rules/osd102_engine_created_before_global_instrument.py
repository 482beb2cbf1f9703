from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Optional

from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.facts import CallSite, ImportSite, ModuleFacts
from otel_sqla_doctor.static.known import SQLALCHEMY_INSTRUMENTOR, canonical
from otel_sqla_doctor.static.rule import Invalid, ProjectReport, Rule, Valid
from otel_sqla_doctor.static.summary import kwarg
from otel_sqla_doctor.static.launchers import (  # noqa: F401  (re-exported for OSD104 and OSD106)
    AUTO_INSTRUMENTATION_INITIALIZE,
    Launcher,
    launchers,
    sqlalchemy_auto_instrumentation_disabled,
)

# -- start-up order analysis, shared with OSD104 and OSD106 ----------------------------------------
#
# What `SQLAlchemyInstrumentor().instrument()` (any form: the engine arguments only add tracers)
# does, in opentelemetry-instrumentation-sqlalchemy 0.50b0..0.66b1: it replaces the module
# attributes `sqlalchemy.create_engine`, `sqlalchemy.engine.create_engine`,
# `sqlalchemy.engine.create.create_engine` and `sqlalchemy.ext.asyncio.create_async_engine` with
# wrappers that attach an EngineTracer to every engine created through them afterwards. Engines
# created earlier, and engines created through a name bound earlier by `from ... import`, get no
# tracer (only the `connect` span from the `Engine.connect` patch). A second instrument() call is
# ignored. `sqlalchemy.ext.asyncio.engine` binds `create_engine` when it is first imported, so when
# that happens after instrument() every AsyncEngine gets a second tracer (upstream #2149).

CREATE_ASYNC_ENGINE = "sqlalchemy.ext.asyncio.create_async_engine"
CREATE_ENGINE = "sqlalchemy.create_engine"
ENGINE_FACTORIES = {CREATE_ASYNC_ENGINE: "async_engine", CREATE_ENGINE: "sync_engine"}
# `from <module> import <name>` binds a function that instrument() replaces (wrapped only when
# the import runs after instrument()).
WRAPPED_ATTRIBUTES = {
    ("sqlalchemy.ext.asyncio", "create_async_engine"),
    ("sqlalchemy", "create_engine"),
    ("sqlalchemy.engine", "create_engine"),
    ("sqlalchemy.engine.create", "create_engine"),
}
ASYNCIO_SUBMODULE = "sqlalchemy.ext.asyncio.engine"  # its create_async_engine is never wrapped
# Modules whose first import imports `sqlalchemy.ext.asyncio` (OSD106 can extend this by option).
ASYNCIO_IMPORTERS = ("sqlalchemy.ext.asyncio", "sqlmodel.ext.asyncio")

# Importing one of these means the code sets tracing up itself (the API alone, `opentelemetry.trace`,
# is what libraries and services configured by their deployment use).
TRACING_SETUP_MODULES = (
    "opentelemetry.sdk",
    "opentelemetry.instrumentation",
    "opentelemetry.exporter",
    "opentelemetry.distro",
    "azure.monitor.opentelemetry",
    "logfire",
)


def is_tracing_setup_module(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in TRACING_SETUP_MODULES)


def uses_opentelemetry(index) -> bool:
    """Some module imports OpenTelemetry, or the service starts under the launcher."""
    for facts in index.modules:
        if any(site.module.split(".", 1)[0] == "opentelemetry" for site in facts.imports):
            return True
    return bool(launchers(index))


def sets_up_tracing(index) -> bool:
    """The code configures OpenTelemetry itself (SDK, exporters, instrumentors, a distro)."""
    for facts in index.modules:
        if any(is_tracing_setup_module(site.module) and not site.type_checking for site in facts.imports):
            return True
    return False


def is_test_module(facts: ModuleFacts) -> bool:
    from otel_sqla_doctor.static.paths import is_test

    return is_test(facts.path)


@dataclass
class Instrument:
    """One run of `SQLAlchemyInstrumentor().instrument(...)` in a simulated start."""

    event: object  # index.Event
    site: CallSite
    facts: ModuleFacts
    is_global: bool  # no engine=/engines= (and no **kwargs we cannot see into)
    targets: tuple  # summaries given as engine= / engines=[...]


@dataclass
class Creation:
    """One run of `create_async_engine(...)` / `create_engine(...)` in a simulated start."""

    event: object
    site: CallSite
    facts: ModuleFacts
    kind: str  # "async_engine" | "sync_engine"
    how: str  # "attribute" (looked up at call time) | "name" (bound earlier by import) | "submodule" | "unknown"
    binding: object = None  # for "name": the import event that bound the function
    binding_site: Optional[ImportSite] = None
    binding_facts: Optional[ModuleFacts] = None


def instrument_call(index, site: CallSite) -> Optional[tuple[bool, tuple]]:
    """(is_global, engine targets) when the call is `SQLAlchemyInstrumentor().instrument(...)`."""
    if site.method is not None and site.method != "instrument":
        return None
    summary = site.summary
    if not summary or summary[0] != "call" or not summary[1]:
        return None
    callee = summary[1]
    if callee[0] == "attr" and callee[2] == "instrument":
        receiver = callee[1]
    elif callee[0] == "ref" and callee[1].endswith(".instrument"):
        receiver = ("ref", callee[1][: -len(".instrument")])
    else:
        return None
    # `SQLAlchemyInstrumentor()` (or a name bound to it); the class itself is OSD108's TypeError.
    if index.value(receiver) != ("result", SQLALCHEMY_INSTRUMENTOR):
        return None
    targets: list = []
    explicit = False
    for name in ("engine", "engines"):
        value = kwarg(summary, name)
        if value is None or value == ("lit", None):
            continue
        explicit = True
        if value[0] == "list":
            targets.extend(value[1])
        else:
            targets.append(value)
    hidden = "**" in (site.text or "")  # instrument(**options): cannot tell
    return (not explicit and not hidden, tuple(targets))


def creation_function(index, site: CallSite) -> Optional[str]:
    """CREATE_ASYNC_ENGINE / CREATE_ENGINE when the call creates an engine directly."""
    callee = site.callee
    if not callee:
        return None
    name = canonical(callee)
    if name not in ENGINE_FACTORIES:
        name = index.qualname_of(("ref", callee)) or ""
    return name if name in ENGINE_FACTORIES else None


def definitely_before(a, b) -> bool:
    """`a` runs before `b` in every start the simulation stands for."""
    if a is b:
        return False
    if a.late and b.late and a.root != b.root:
        return False  # two startup hooks / tasks: no known order
    return a.seq < b.seq


def possibly_before(a, b) -> bool:
    return a is not b and not definitely_before(b, a)


def exclusive(a, b) -> bool:
    """The two events sit in different branches of one if/else or try/except: never both run."""
    from otel_sqla_doctor.static.patterns import exclusive as branches_exclusive

    return branches_exclusive(getattr(a, "branches", ()), getattr(b, "branches", ()))


class StartupOrder:
    """The instrumentation-relevant facts of one simulated process start (one entry module)."""

    def __init__(self, index, events: list, entry: Optional[ModuleFacts] = None) -> None:
        self.index = index
        self.events = events
        self.entry = entry
        self.instruments: list[Instrument] = []
        self.creations: list[Creation] = []
        self.asyncio_imports: list = []
        self.opentelemetry_imported = False
        self.tracing_set_up = False  # this start imports the SDK, an exporter or an instrumentor
        for event in events:
            if event.kind == "import":
                if event.imported.split(".", 1)[0] == "opentelemetry":
                    self.opentelemetry_imported = True
                if is_tracing_setup_module(event.imported):
                    self.tracing_set_up = True
                continue
            site = event.site
            instrument = instrument_call(index, site)
            if instrument is not None:
                self.instruments.append(Instrument(event, site, event.module, instrument[0], instrument[1]))
                self.opentelemetry_imported = self.tracing_set_up = True
                continue
            function = creation_function(index, site)
            if function is not None:
                self.creations.append(self._creation(event, site, function))

    def note_asyncio_importers(self, prefixes: Iterable[str]) -> None:
        prefixes = tuple(prefixes)
        self.asyncio_imports = [
            e for e in self.events
            if e.kind == "import" and any(e.imported == p or e.imported.startswith(p + ".") for p in prefixes)
        ]

    # -- bindings ---------------------------------------------------------------------------------
    def _creation(self, event, site: CallSite, function: str) -> Creation:
        kind = ENGINE_FACTORIES[function]
        creation = Creation(event, site, event.module, kind, "unknown")
        raw = site.summary[1] if site.summary and site.summary[0] == "call" else None
        if not raw or raw[0] != "ref":
            return creation
        spelled = (site.text or "").split("(", 1)[0].strip()
        qualname = raw[1]
        facts, scope = event.module, site.scope
        for _ in range(10):  # follow project re-exports to the import that binds the sqlalchemy function
            if qualname.startswith(ASYNCIO_SUBMODULE + "."):
                creation.how = "submodule"
                return creation
            split = self.index._split(qualname)
            if split is None:
                if "." in spelled and facts is event.module:
                    creation.how = "attribute"  # `sa_async.create_async_engine(...)`
                    return creation
                break
            facts, rest = split
            symbol = facts.symbols.get(rest)
            if not symbol or symbol[0] != "ref":
                return creation  # an assignment or something we do not follow
            spelled, scope, qualname = rest, "", symbol[1]
            if self.index._split(qualname) is None:
                break
        else:
            return creation
        # `qualname` is the sqlalchemy function; find the `from ... import` in `facts` that bound it.
        site_found = _binding_import(facts, scope, qualname)
        if site_found is None:
            return creation
        if site_found.module == ASYNCIO_SUBMODULE:
            creation.how = "submodule"
            return creation
        name = qualname.rsplit(".", 1)[-1]
        if (site_found.module, name) not in WRAPPED_ATTRIBUTES:
            return creation  # sqlmodel.create_engine and friends: not followed
        binding = None
        for other in self.events:
            if other.kind == "import" and other.import_site is site_found and possibly_before(other, event):
                if binding is None or definitely_before(binding, other):
                    binding = other
        if binding is None:
            return creation
        creation.how, creation.binding, creation.binding_site, creation.binding_facts = "name", binding, site_found, facts
        return creation

    # -- questions --------------------------------------------------------------------------------
    @cached_property
    def first_instruments(self) -> list[Instrument]:
        """The instrument() calls that surely run first (the later ones are ignored): one, or one per
        branch of an if/else that holds alternatives; none when the order is unknown."""
        return [
            candidate
            for candidate in self.instruments
            if all(
                o is candidate or definitely_before(candidate.event, o.event) or exclusive(candidate.event, o.event)
                for o in self.instruments
            )
        ]

    def possibly_wrapped(self, creation: Creation) -> bool:
        """Some instrument() may have run early enough for this creation to get a tracer."""
        early = [i for i in self.instruments if possibly_before(i.event, creation.event) and not exclusive(i.event, creation.event)]
        if not early:
            return False
        if creation.how == "name":
            return any(possibly_before(i.event, creation.binding) for i in early)
        if creation.how == "submodule":
            # Only the `create_engine` that `sqlalchemy.ext.asyncio.engine` bound on first import.
            first = self.first_asyncio_import
            return first is None or any(possibly_before(i.event, first) for i in early)
        return True  # "attribute", "unknown"

    @property
    def first_asyncio_import(self):
        return self.asyncio_imports[0] if self.asyncio_imports else None

    def missed_by(self, instrument: Instrument) -> list[tuple[str, Creation]]:
        """Engines the (first, global) `instrument` surely misses, and why."""
        missed = []
        for creation in self.creations:
            if exclusive(creation.event, instrument.event):
                continue
            if definitely_before(creation.event, instrument.event):
                missed.append(("created", creation))
            elif creation.how == "name" and definitely_before(creation.binding, instrument.event):
                missed.append(("bound", creation))
            elif creation.how == "submodule" and self.first_asyncio_import is not None and definitely_before(self.first_asyncio_import, instrument.event):
                missed.append(("submodule", creation))
        return missed


def _binding_import(facts: ModuleFacts, scope: str, qualname: str) -> Optional[ImportSite]:
    """The `from m import n [as x]` of `facts` (in `scope`, else at module level) that binds `qualname`."""
    best = None
    for site in facts.imports:
        if site.scope not in (scope, ""):
            continue
        if any(f"{site.module}.{name}" == qualname for name in site.names):
            if best is None or (site.scope == scope and best.scope != scope):
                best = site
    return best


def startup_orders(index, asyncio_importers: Iterable[str] = ASYNCIO_IMPORTERS) -> list[StartupOrder]:
    """One StartupOrder per entry module (cached on the index for the three rules)."""
    key = ("_startup_orders", tuple(asyncio_importers))
    cache = index.__dict__.setdefault("_osd_startup_cache", {})
    if key not in cache:
        orders = []
        # Paired with their entries: entries that cannot reach OpenTelemetry have no timeline.
        for entry, events in index.entry_timelines():
            order = StartupOrder(index, events, entry)
            order.note_asyncio_importers(asyncio_importers)
            orders.append(order)
        cache[key] = orders
    return cache[key]


def engine_label(creation: Creation) -> str:
    """`engine` (app/db.py:4) or `create_async_engine(...)` in app.db.make_engine (app/db.py:7)."""
    where = f"{creation.facts.path}:{creation.site.line}"
    if not creation.site.scope:
        for name, summary in creation.facts.symbols.items():
            if summary == creation.site.summary:
                return f"`{name}` ({where})"
    text = creation.site.text or "create_engine(...)"
    if creation.site.scope:
        return f"`{text}` in `{creation.site.scope}` ({where})"
    return f"`{text}` ({where})"


def site_span(site: CallSite) -> tuple[int, int, int, int]:
    return site.line, site.column, site.end_line or site.line, site.end_column or site.column


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
