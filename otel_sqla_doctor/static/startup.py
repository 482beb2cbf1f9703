"""The start-up order model shared by the wiring rules (OSD102, OSD104, OSD106): one simulated
process start per entry module, with the `SQLAlchemyInstrumentor().instrument()` calls, the engine
creations and the `sqlalchemy.ext.asyncio` imports it runs, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Optional

from otel_sqla_doctor.static.facts import CallSite, ImportSite, ModuleFacts
from otel_sqla_doctor.static.known import SQLALCHEMY_INSTRUMENTOR, canonical
from otel_sqla_doctor.static.patterns import exclusive as branches_exclusive
from otel_sqla_doctor.static.summary import kwarg

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


def sets_up_tracing(index) -> bool:
    """The code configures OpenTelemetry itself (SDK, exporters, instrumentors, a distro)."""
    for facts in index.modules:
        if any(is_tracing_setup_module(site.module) and not site.type_checking for site in facts.imports):
            return True
    return False


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
            split = self.index.locate(qualname)
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
            if self.index.locate(qualname) is None:
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
