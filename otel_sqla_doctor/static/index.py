"""The project index: every module's facts, and answers that need more than one file.

Rules ask the index what a summary resolves to (`kind_of`, `qualname_of`), and the wiring rules
ask in which order module-level code and imports run (`timelines`). It never parses anything:
it works from `ModuleFacts` alone, which is what makes a warm scan cheap.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePosixPath
from typing import Iterable, Iterator, Optional

from otel_sqla_doctor.static import known, paths
from otel_sqla_doctor.static.facts import RUN_ONCE, CallSite, FunctionFacts, ImportSite, ModuleFacts
from otel_sqla_doctor.static.summary import UNKNOWN, Summary, kwarg

Value = tuple  # ("kind", k) | ("q", qualname) | ("func", q) | ("class", q) | ("obj", q) | ("module", m) | ("lit", v) | ...

_MAX_DEPTH = 30


@dataclass
class Event:
    """One step of a simulated process start: a module imported, or a tracked call made."""

    kind: str  # "import" | "call"
    module: ModuleFacts
    seq: int
    site: Optional[CallSite] = None
    imported: str = ""  # for "import": the module name imported
    first_import: bool = False
    via: str = ""  # the function whose body made the call ("" at module level)
    late: bool = False  # run after start-up, from a function nobody calls at import time
    # For late events: the function whose run made them (a startup hook, a lifespan, a task).
    # Late events of different roots have no known order between them.
    root: str = ""
    import_site: Optional[ImportSite] = None  # for "import": the statement that made it
    # The alternatives (if/else, try/except) this event sits in, through the calls that led to
    # it (see CallSite.branches): two events with conflicting labels never both happen.
    branches: tuple = ()
    # The event sits in a loop, or in a function called from a loop: it may happen several times.
    repeated: bool = False


@dataclass
class ProjectFiles:
    """Non-Python files some rules read: dependency declarations and launchers."""

    # relative path -> text, for pyproject.toml, requirements*.txt, *.lock, Dockerfile, Procfile, ...
    texts: dict[str, str] = field(default_factory=dict)


class ProjectIndex:
    def __init__(
        self,
        modules: Iterable[ModuleFacts],
        files: Optional[ProjectFiles] = None,
        imported_elsewhere: Iterable[str] = (),
    ) -> None:
        self.modules: list[ModuleFacts] = sorted(modules, key=lambda m: m.path)
        self.files = files or ProjectFiles()
        # Module names imported by files that were not parsed (an `__init__.py` that re-exports
        # its submodules, say): such modules are not where a process starts.
        self.imported_elsewhere = frozenset(imported_elsewhere)
        # Files (parsed or not) that contain `async def`: set by the engine from the raw bytes.
        self.async_paths: tuple = ()
        # Modules of another project of the repository that this one imports (a shared library).
        self.library_paths: frozenset = frozenset()
        # Modules named as `"pkg.module:attr"` in the project's code (uvicorn/gunicorn app strings).
        self.app_references: frozenset = frozenset()
        self._by_name: dict[str, list[ModuleFacts]] = {}
        for facts in self.modules:
            self._by_name.setdefault(facts.module, []).append(facts)
        for facts in self.modules:  # aliases never shadow a canonical name
            for name in _module_aliases(facts)[1:]:
                self._by_name.setdefault(name, []).append(facts)
        self.functions: dict[str, tuple[ModuleFacts, FunctionFacts]] = {}
        self.class_bases: dict[str, tuple] = {}
        for facts in self.modules:
            for qualname, function in facts.functions.items():
                self.functions.setdefault(qualname, (facts, function))
            for qualname, bases in getattr(facts, "class_bases", {}).items():
                self.class_bases.setdefault(qualname, bases)
        self._value_cache: dict[Summary, Optional[Value]] = {}
        self._active: set = set()

    # -- modules ------------------------------------------------------------------------------
    def module(self, name: str) -> Optional[ModuleFacts]:
        found = self._by_name.get(name)
        return found[0] if found else None

    def locate(self, qualname: str) -> Optional[tuple[ModuleFacts, str]]:
        """The project module a qualified name lives in, and the rest of the name."""
        cache = self.__dict__.setdefault("_split_cache", {})
        if qualname in cache:
            return cache[qualname]
        result = None
        parts = qualname.split(".")
        for i in range(len(parts), 0, -1):
            facts = self.module(".".join(parts[:i]))
            if facts is not None:
                result = (facts, ".".join(parts[i:]))
                break
        cache[qualname] = result
        return result

    def is_project_name(self, qualname: str) -> bool:
        return self.locate(qualname) is not None

    def function(self, qualname: str) -> Optional[tuple[ModuleFacts, FunctionFacts]]:
        hit = self.functions.get(qualname)
        if hit is not None:
            return hit
        split = self.locate(qualname)
        if split and split[1]:
            return self.functions.get(f"{split[0].module}.{split[1]}")
        return None

    # -- values -------------------------------------------------------------------------------
    def value(self, summary: Optional[Summary], depth: int = 0) -> Optional[Value]:
        if summary is None or summary == UNKNOWN or depth > _MAX_DEPTH:
            return None
        if summary in self._value_cache:
            return self._value_cache[summary]
        if summary in self._active:
            return None
        self._active.add(summary)
        try:
            result = self._value(summary, depth + 1)
        finally:
            self._active.discard(summary)
        self._value_cache[summary] = result
        return result

    def kind_of(self, summary: Optional[Summary]) -> Optional[str]:
        """`async_engine`, `sync_session`, ... or None when unknown."""
        value = self.value(summary)
        return value[1] if value and value[0] == "kind" else None

    def qualname_of(self, summary: Optional[Summary]) -> Optional[str]:
        """The canonical qualified name of what a summary refers to, through project re-exports."""
        value = self.value(summary)
        if value and value[0] in ("q", "func", "class"):
            return value[1]
        return None

    def _value(self, summary: Summary, depth: int) -> Optional[Value]:
        tag = summary[0]
        if tag == "lit":
            return summary
        if tag == "ref":
            return self._global(known.canonical(summary[1]), depth)
        if tag == "call":
            return self._call(self.value(summary[1], depth), summary, depth)
        if tag == "attr":
            return self._attribute(self.value(summary[1], depth), summary[2], depth)
        if tag == "instance":
            cls = self.value(summary[1], depth)
            if cls and cls[0] == "kind":  # an `Annotated[Session, Depends(get_db)]` alias
                return cls
            if cls and cls[0] == "q" and cls[1] in known.ANNOTATION_KINDS:
                return ("kind", known.ANNOTATION_KINDS[cls[1]])
            if cls and cls[0] == "class":
                return ("obj", cls[1])
            return None
        if tag == "depends":
            return self._call(self.value(summary[1], depth), ("call", summary[1], (), ()), depth, dependency=True)
        if tag == "or":
            return self.value(summary[1], depth) or self.value(summary[2], depth)
        if tag == "depends_marker":
            return self.value(summary[1], depth)
        return summary

    def _global(self, qualname: str, depth: int) -> Optional[Value]:
        split = self.locate(qualname)
        if split is None:
            return ("q", qualname)
        facts, rest = split
        if not rest:
            return ("module", facts.module)
        full = f"{facts.module}.{rest}"
        if full in self.functions:
            return ("func", full)
        symbol = facts.symbols.get(rest)
        if symbol is not None:
            if symbol[0] == "ref" and symbol[1] in (full, f"{facts.module}.{rest}"):
                return ("class", full) if full not in self.functions else ("func", full)
            return self.value(symbol, depth)
        head, _, tail = rest.partition(".")
        if tail and head in facts.symbols:
            value = self.value(facts.symbols[head], depth)
            for part in tail.split("."):
                value = self._attribute(value, part, depth)
            return value
        return None

    def _attribute(self, base: Optional[Value], name: str, depth: int) -> Optional[Value]:
        if base is None:
            return None
        tag = base[0]
        if tag == "kind":
            attr = known.ATTRIBUTE_KINDS.get((base[1], name))
            return ("kind", attr) if attr else ("method", base[1], name)
        if tag == "q":
            return ("q", known.canonical(f"{base[1]}.{name}"))
        if tag == "module":
            return self._global(f"{base[1]}.{name}", depth)
        if tag in ("class", "obj"):
            split = self.locate(base[1])
            if split:
                facts, rest = split
                symbol = facts.symbols.get(f"{rest}.{name}")
                if symbol is not None:
                    return self.value(symbol, depth)
                method = f"{base[1]}.{name}"
                if method in self.functions:
                    return ("func", method)
            return None
        return None

    def _call(self, callee: Optional[Value], call: Summary, depth: int, dependency: bool = False) -> Optional[Value]:
        if callee is None:
            return None
        tag = callee[0]
        if tag == "q":
            kind = known.CALL_KINDS.get(callee[1])
            if kind == "sync_sessionmaker" and self._is_async_session_class(kwarg(call, "class_")):
                kind = "async_sessionmaker"
            if kind:
                return ("kind", kind)
            return ("result", callee[1])
        if tag == "kind":
            kind = known.CALLABLE_KINDS.get(callee[1])
            return ("kind", kind) if kind else None
        if tag == "method":
            kind = known.METHOD_KINDS.get((callee[1], callee[2]))
            return ("kind", kind) if kind else None
        if tag == "class":
            return ("obj", callee[1])
        if tag == "func":
            hit = self.functions.get(callee[1])
            if hit is None:
                return None
            function = hit[1]
            # A dependency or context manager hands out what it yields; a factory what it returns.
            candidates = (function.yields + function.returns) if dependency or function.yields else function.returns
            best = None
            for returned in candidates:
                value = self.value(returned, depth)
                if value and value[0] == "kind":
                    return value
                best = best or value
            return best
        return None

    def _is_async_session_class(self, summary: Optional[Summary]) -> bool:
        value = self.value(summary)
        return bool(value and value[0] == "q" and value[1] == "sqlalchemy.ext.asyncio.AsyncSession")

    # -- execution order ----------------------------------------------------------------------
    @cached_property
    def entry_modules(self) -> list[ModuleFacts]:
        """Modules nothing in the project imports: where a process starts (apps, workers, scripts)."""
        imported: set[str] = set()
        for facts in self.modules:
            if paths.is_test(facts.path) or _imports_pytest(facts):
                continue  # tests import the app to test it: it is still started on its own
            for site in facts.imports:
                for target in self._import_targets(site):
                    if target is not facts:
                        imported.add(target.path)
        entries = [
            m
            for m in self.modules
            if m.path not in imported and m.path not in self.library_paths and self.imported_elsewhere.isdisjoint(_module_aliases(m))
        ]
        # Test modules all run inside one pytest process with its own tracing set-up; they start
        # nothing of the application's, so they are entries only in a project of nothing else.
        # Alembic's env.py runs under the `alembic` command, once per migration: not a start of
        # the service whose tracing order matters.
        non_test = [
            m for m in entries
            if not paths.is_test(m.path) and not _imports_pytest(m) and paths.role_of(m.path) is not paths.PathRole.MIGRATION
        ]
        # A module deep in a package that nothing imports, runs as a script or names as a server
        # app is dead code (or loaded by a framework we cannot see), not a start of its own.
        started = [m for m in non_test if self._looks_started(m)]
        if started:
            return started
        # Nothing looks like a start. When the whole program is indexed, the modules nothing
        # imports are the starts; when unparsed files import project modules, the real starts
        # are among those files, and guessing one of the rest names the wrong program.
        return [] if self.imported_elsewhere else (non_test or entries or list(self.modules))

    @cached_property
    def script_paths(self) -> frozenset:
        """Modules that run as command-line tools (`if __name__ == "__main__"` with argparse, click
        or typer) and build no server app: one-off scripts, wherever they sit in the tree."""
        found = set()
        for facts in self.modules:
            if not facts.has_main_guard:
                continue
            if not any(site.module.split(".", 1)[0] in ("argparse", "click", "typer") for site in facts.imports):
                continue
            if self._builds_app(facts):
                continue
            found.add(facts.path)
        return frozenset(found)

    def is_enum_class(self, qualname: str) -> bool:
        """A class of the project deriving from an Enum: its members are a fixed set of values."""
        value = self.value(("ref", qualname))  # through re-exports to where the class is defined
        if value and value[0] == "class":
            qualname = value[1]
        split = self.locate(known.canonical(qualname))
        return bool(split and split[1] in split[0].enum_classes)

    def uses_argument_for_database(self, qualname: str, where, depth: int = 0) -> bool:
        """Whether calling `qualname` with a Session at `where` (a position or a keyword) runs
        database methods on it, there or in the helpers it hands it to (three calls deep)."""
        hit = self.function(qualname)
        if hit is None or depth > 3:
            return False
        function = hit[1]
        if isinstance(where, int):
            params = list(function.params[1:] if function.params[:1] in (("self",), ("cls",)) else function.params)
            name = params[where] if where < len(params) else None
        else:
            name = where if where in function.params else None
        if name is None:
            return False
        if name in function.db_params:
            return True
        return any(
            self.uses_argument_for_database(callee, passed_as, depth + 1)
            for param, callee, passed_as in function.param_calls
            if param == name
        )

    def _builds_app(self, facts: ModuleFacts) -> bool:
        """A server app built at import (`app = FastAPI()`) or by a factory (`def get_app()`)."""
        if any(value and value[0] == "call" and _is_app_constructor(self, value) for value in facts.symbols.values()):
            return True
        return any(known.canonical(callee) in _APP_CLASSES for function in facts.functions.values() for _, callee in function.calls)

    def _looks_started(self, facts: ModuleFacts) -> bool:
        if facts.has_main_guard or facts.path.rsplit("/", 1)[-1] in _ENTRY_FILE_NAMES:
            return True
        # A script at the top of the tree (or one folder down); deeper, a module without
        # `__init__.py` around it is more likely part of a namespace package than a program.
        if "." not in facts.module and facts.path.count("/") <= 1:
            return True
        if self._builds_app(facts) or facts.module in self.app_references:
            return True
        # Named by a launcher file (Dockerfile, Procfile, compose, pyproject scripts): a dotted
        # module name or a path, never a bare word that any text may contain.
        needles = [n for n in (facts.module, facts.path, facts.module.replace(".", "/")) if "." in n or "/" in n]
        return any(n in text for text in self.files.texts.values() for n in needles)

    def _import_targets(self, site: ImportSite) -> list[ModuleFacts]:
        cache = self.__dict__.setdefault("_targets_cache", {})
        key = id(site)
        if key not in cache:
            cache[key] = (site, self._compute_import_targets(site))  # the site is kept alive, so ids stay unique
        return cache[key][1]

    def _compute_import_targets(self, site: ImportSite) -> list[ModuleFacts]:
        targets: list[ModuleFacts] = []
        parts = site.module.split(".")
        # Importing a.b.c runs a/__init__, a/b/__init__ and a/b/c.
        for i in range(1, len(parts) + 1):
            facts = self.module(".".join(parts[:i]))
            if facts is not None and facts not in targets:
                targets.append(facts)
        for name in site.names:
            facts = self.module(f"{site.module}.{name}") if site.module else self.module(name)
            if facts is not None and facts not in targets:
                targets.append(facts)
        return targets

    def timelines(self) -> list[list[Event]]:
        """For each entry module, the tracked calls and imports in the order a start would run them.

        Computed once per index: several rules read the same start-up orders.
        """
        return [events for _, events in self.entry_timelines()]

    def entry_timelines(self) -> list[tuple[ModuleFacts, list[Event]]]:
        """(entry module, its timeline) for each entry whose start can touch OpenTelemetry."""
        cached = self.__dict__.get("_timelines")
        if cached is None:
            cached = self.__dict__["_timelines"] = [
                (entry, self.timeline(entry)) for entry in self.entry_modules if self._may_set_up_tracing(entry)
            ]
        return cached

    def _may_set_up_tracing(self, entry: ModuleFacts) -> bool:
        """Whether a start from `entry` can touch OpenTelemetry at all (else its order is moot).

        A library with hundreds of public modules has hundreds of entries; simulating each costs
        the whole import graph, and only those that reach OpenTelemetry matter to the rules.
        Under the `opentelemetry-instrument` launcher every start is traced, so all are kept.
        """
        reach = self.__dict__.get("_otel_reach")
        if reach is None:
            launcher = any("opentelemetry-instrument" in text for text in self.files.texts.values())
            reach = self.__dict__["_otel_reach"] = None if launcher else self._modules_reaching_opentelemetry()
        return reach is None or entry.path in reach

    def _modules_reaching_opentelemetry(self) -> frozenset:
        importers: dict[str, set[str]] = {}
        touching: list[str] = []
        for facts in self.modules:
            if any(site.module.split(".", 1)[0] in ("opentelemetry", "logfire") for site in facts.imports):  # logfire is an SDK
                touching.append(facts.path)
            for site in facts.imports:
                for target in self._import_targets(site):
                    importers.setdefault(target.path, set()).add(facts.path)
        reached = set(touching)
        stack = list(touching)
        while stack:
            for importer in importers.get(stack.pop(), ()):
                if importer not in reached:
                    reached.add(importer)
                    stack.append(importer)
        return frozenset(reached)

    def import_closure(self, entry: ModuleFacts) -> frozenset:
        """Paths of the project modules a start from `entry` can import (itself included)."""
        cache = self.__dict__.setdefault("_closures", {})
        if entry.path not in cache:
            seen = {entry.path}
            stack = [entry]
            while stack:
                facts = stack.pop()
                for site in facts.imports:
                    if site.type_checking:
                        continue
                    for target in self._import_targets(site):
                        if target.path not in seen:
                            seen.add(target.path)
                            stack.append(target)
            cache[entry.path] = frozenset(seen)
        return cache[entry.path]

    def timeline(self, entry: ModuleFacts) -> list[Event]:
        run = _Run(self)
        run.module(entry, is_main=True)
        # Functions nobody calls at import time (startup hooks, lifespans, tasks) run later, each
        # as its own root. A function that another project function calls runs inside its caller
        # (so the order within a startup hook is kept), unless no caller ever runs.
        pending = [
            qualname
            for facts in list(run.loaded_modules)
            for qualname in facts.functions
            if qualname not in run.called and self._reaches_tracked_calls(qualname)
        ]
        called_by_others = self._called_by_other_functions
        for only_uncalled in (True, False):
            for qualname in pending:
                if qualname in run.called or (only_uncalled and qualname in called_by_others):
                    continue
                run.root = qualname
                run.function(qualname, late=True)
        self.__dict__.setdefault("_reached_functions", set()).update(run.called)
        return run.events

    def orphan_timelines(self) -> list[list[Event]]:
        """One timeline per function that no simulated start runs (a library's public API, code
        whose caller lives outside the project) and that leads to an `instrument()` call: what one
        call of it does, from a clean state. Only the repetition of a call within one such run is
        known. (Engines and providers alone are not followed: only OSD103 reads these.)"""
        cached = self.__dict__.get("_orphan_timelines")
        if cached is None:
            self.entry_timelines()
            reached = self.__dict__.get("_reached_functions", set())
            called_by_others = self._called_by_other_functions
            cached = []
            for qualname, (facts, _) in sorted(self.functions.items()):
                if qualname in reached or qualname in called_by_others or not self._reaches_instrument(qualname):
                    continue
                if not paths.is_service(facts.path):
                    continue  # tests, examples, scripts and migrations have their own lives
                run = _Run(self)
                run.root = qualname
                run.function(qualname, late=True)
                cached.append(run.events)
            self.__dict__["_orphan_timelines"] = cached
        return cached

    @cached_property
    def _called_by_other_functions(self) -> frozenset:
        called: set[str] = set()
        for caller, (_, function) in self.functions.items():
            for _, callee in function.calls:
                hit = self._function_or_init(callee)
                if hit is not None and hit[1].qualname != caller:
                    called.add(hit[1].qualname)
        return frozenset(called)

    def _function_or_init(self, qualname: str) -> Optional[tuple[ModuleFacts, FunctionFacts]]:
        """A project function, or the `__init__` that calling a project class runs, looked up
        through the project's base classes (an inherited `__init__` or method)."""
        cache = self.__dict__.setdefault("_function_or_init_cache", {})
        if qualname not in cache:
            cache[qualname] = None  # a cycle of bases ends here
            cache[qualname] = (
                self.function(qualname)
                or self.function(f"{qualname}.__init__")
                or self._inherited(qualname, "__init__")
                or ("." in qualname and self._inherited(*qualname.rsplit(".", 1)))
                or None
            )
        return cache[qualname]

    def attribute_stores(self, name: str) -> tuple:
        """The calls whose results the project stores in an attribute of this name (any object)."""
        table = self.__dict__.get("_attr_stores")
        if table is None:
            table = self.__dict__["_attr_stores"] = {}
            for facts in self.modules:
                for attr, values in getattr(facts, "attr_stores", {}).items():
                    table[attr] = table.get(attr, ()) + tuple(values)
        return table.get(name, ())

    def _inherited(self, cls: str, name: str) -> Optional[tuple[ModuleFacts, FunctionFacts]]:
        if not self.class_bases or not self.is_project_name(cls):
            return None
        if cls not in self.class_bases:  # a re-export (`from pkg.db import Database` in pkg/__init__)
            value = self.value(("ref", cls))
            cls = value[1] if value and value[0] == "class" else cls
        for base in self.class_bases.get(cls, ()):
            hit = self._function_or_init(f"{base}.{name}")
            if hit is not None:
                return hit
        return None

    def _scoped_items(self, facts: ModuleFacts, scope: str) -> tuple[list, dict]:
        """(imports, {order: call site}) of one scope of a module, indexed once per module."""
        table = self.__dict__.setdefault("_scope_table", {})
        per_module = table.get(facts.path)
        if per_module is None:
            per_module = {}
            for site in facts.imports:
                if not site.type_checking:
                    per_module.setdefault(site.scope, ([], {}))[0].append(site)
            for site in facts.calls:
                per_module.setdefault(site.scope, ([], {}))[1][site.order] = site
            table[facts.path] = per_module
        return per_module.get(scope, ([], {}))

    # The simulation runs every module and function once per entry (a hundred entries in a large
    # service): what it does with each is fixed by the index, so it is planned once here.
    def _module_plan(self, facts: ModuleFacts) -> list[tuple[bool, object]]:
        """(is_import, site) of a module's top level, in the order a start runs them."""
        plans = self.__dict__.setdefault("_module_plans", {})
        plan = plans.get(facts.path)
        if plan is None:
            imports, sites = self._scoped_items(facts, "")
            items: list[tuple[int, object]] = [(s.order, s) for s in imports]
            items += list(sites.items())
            items.sort(key=lambda item: (item[1].main_guard, item[0]))
            plan = plans[facts.path] = [(isinstance(item, ImportSite), item) for _, item in items]
        return plan

    def _function_plan(self, qualname: str, facts: ModuleFacts, function: FunctionFacts) -> list[tuple[str, object]]:
        """("import" | "call" | "function", site or qualname) of a function body, in order."""
        plans = self.__dict__.setdefault("_function_plans", {})
        plan = plans.get(qualname)
        if plan is None:
            imports, sites = self._scoped_items(facts, qualname)
            items: list[tuple[int, object]] = [(s.order, s) for s in imports]
            items += list(sites.items())
            for order, callee in function.calls:
                if order not in sites and self._function_or_init(callee):
                    items.append((order, callee))
            items.sort(key=lambda item: item[0])
            loops = set(getattr(function, "loop_calls", ()))
            plan = []
            for order, item in items:
                if isinstance(item, ImportSite):
                    plan.append(("import", item))
                elif isinstance(item, CallSite):
                    plan.append(("call", item))
                else:
                    plan.append(("loop-function" if order in loops else "function", self._function_or_init(item)[1].qualname))
            plans[qualname] = plan
        return plan

    def _import_plan(self, site: ImportSite) -> tuple[list[ModuleFacts], bool]:
        """(the project modules an import runs, whether it is an event).

        Imports of the project's own modules and of the standard library are walked, not
        reported: the rules look for third-party imports (OpenTelemetry, sqlalchemy.ext.asyncio).
        """
        plans = self.__dict__.setdefault("_import_plans", {})
        plan = plans.get(id(site))
        if plan is None:
            targets = self._import_targets(site)
            plan = plans[id(site)] = (targets, not targets and site.module.split(".", 1)[0] not in _STDLIB)
        return plan

    def _call_plan(self, site: CallSite) -> tuple[bool, tuple[str, ...]]:
        """(whether the call is an event, the project functions it runs, in order).

        Only calls the wiring rules read are events (instrument(), engines, the SDK, and project
        functions that lead to those); every project call is still followed.
        """
        plans = self.__dict__.setdefault("_call_plans", {})
        plan = plans.get(id(site))
        if plan is None:
            hits = [self._function_or_init(c) if c else None for c in (*site.arg_calls, site.callee)]
            emits = _is_wiring(site) or any(h is not None and self._reaches_wiring(h[1].qualname) for h in hits)
            plan = plans[id(site)] = (emits, tuple(h[1].qualname for h in hits if h is not None))
        return plan

    def _reaches_tracked_calls(self, qualname: str) -> bool:
        """The function, or a project function it calls (transitively), makes a tracked call."""
        return self._reaches(qualname, "_reaches_cache", lambda site: True)

    def _reaches_instrument(self, qualname: str) -> bool:
        return self._reaches(qualname, "_instrument_cache", lambda site: site.method in ("instrument", "initialize") or (site.method is None and _is_wiring(site)))

    def _reaches_wiring(self, qualname: str) -> bool:
        """The function, or a project function it calls, instruments, creates an engine or sets
        up OpenTelemetry (the calls whose repetition the wiring rules care about)."""
        return self._reaches(qualname, "_wiring_cache", _is_wiring)

    def _reaches(self, qualname: str, cache_name: str, wanted, seen: Optional[set] = None) -> bool:
        cache = self.__dict__.setdefault(cache_name, {})
        if qualname in cache:
            return cache[qualname]
        seen = set() if seen is None else seen
        if qualname in seen:
            return False
        seen.add(qualname)
        hit = self.functions.get(qualname)
        result = False
        if hit is not None:
            facts, function = hit
            result = any(wanted(site) for site in self._scoped_items(facts, qualname)[1].values()) or any(
                callee_hit is not None and self._reaches(callee_hit[1].qualname, cache_name, wanted, seen)
                for callee_hit in (self._function_or_init(callee) for _, callee in function.calls)
            )
        cache[qualname] = result
        return result

    def all_calls(self) -> Iterator[tuple[ModuleFacts, CallSite]]:
        for facts in self.modules:
            for site in facts.calls:
                yield facts, site


class _Run:
    """One simulated process start (see ProjectIndex.timeline)."""

    def __init__(self, index: ProjectIndex) -> None:
        self.index = index
        self.events: list[Event] = []
        self.loaded: set[str] = set()
        self.loaded_modules: list[ModuleFacts] = []
        self.imported_names: set[str] = set()
        self.called: set[str] = set()
        self._stack: list[str] = []
        self.root = ""  # the late root function being run ("" during start-up)
        self._branches: tuple = ()  # alternatives of the calls that led here
        self._looping = 0  # calls on the way here made inside loops
        self._ran_once: set[int] = set()  # run-once call sites already run in this start

    def _emit(self, **kwargs) -> None:
        if kwargs.get("late"):
            kwargs.setdefault("root", self.root)
        self.events.append(Event(seq=len(self.events), repeated=self._looping > 0, **kwargs))

    def module(self, facts: ModuleFacts, is_main: bool = False) -> None:
        if facts.path in self.loaded:
            return
        self.loaded.add(facts.path)
        self.loaded_modules.append(facts)
        for is_import, item in self.index._module_plan(facts):
            if item.main_guard and not is_main:
                continue
            if is_import:
                self._import(facts, item, via="")
            else:
                self._call(facts, item, via="", late=False)

    def _import(self, facts: ModuleFacts, site: ImportSite, via: str, late: bool = False) -> None:
        first = site.module not in self.imported_names
        self.imported_names.add(site.module)
        targets, reported = self.index._import_plan(site)
        if reported:
            self._emit(kind="import", module=facts, imported=site.module, first_import=first, via=via, late=late, import_site=site)
        loaded = self.loaded
        for target in targets:
            if target.path not in loaded:
                self.module(target)

    def _call(self, facts: ModuleFacts, site: CallSite, via: str, late: bool) -> None:
        if RUN_ONCE in getattr(site, "guards", ()):
            # Lazy initialisation: the second caller finds it done.
            if id(site) in self._ran_once:
                return
            self._ran_once.add(id(site))
        outer = self._branches
        self._branches = outer + tuple(getattr(site, "branches", ()))
        outer_looping = self._looping
        # A run-once body runs once whatever loop leads to it; a call in a loop may run many times.
        self._looping = 0 if RUN_ONCE in getattr(site, "guards", ()) else self._looping + getattr(site, "in_loop", False)
        try:
            emits, callees = self.index._call_plan(site)
            if emits:
                self._emit(kind="call", module=facts, site=site, via=via, late=late, branches=self._branches)
            for qualname in callees:  # project functions, or project classes' __init__
                self.function(qualname, late=late)
        finally:
            self._branches = outer
            self._looping = outer_looping

    def function(self, qualname: str, late: bool = False) -> None:
        hit = self.index.functions.get(qualname)
        if hit is None or qualname in self._stack or len(self._stack) > 20:
            return
        # A helper that leads to no tracked call emits only imports: running it once per start is
        # enough, and re-running helpers called from everywhere would cost the graph squared.
        # Functions that do reach tracked calls run every time (an instrument() per engine).
        if qualname in self.called and not self.index._reaches_wiring(qualname):
            return
        self.called.add(qualname)
        facts, function = hit
        self._stack.append(qualname)
        try:
            for kind, item in self.index._function_plan(qualname, facts, function):
                if kind == "import":
                    self._import(facts, item, via=qualname, late=late)
                elif kind == "call":
                    self._call(facts, item, via=qualname, late=late)
                elif kind == "loop-function":
                    self._looping += 1
                    try:
                        self.function(item, late=late)
                    finally:
                        self._looping -= 1
                else:
                    self.function(item, late=late)
        finally:
            self._stack.pop()


_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) - {"sqlite3"}

_WIRING_NAMES = frozenset(
    {"create_engine", "create_async_engine", "instrument", "uninstrument", "instrument_engine", "set_tracer_provider", "add_span_processor"}
)


def _is_wiring(site: CallSite) -> bool:
    callee = site.callee
    if callee:
        return callee.startswith("opentelemetry.") or callee.rsplit(".", 1)[-1] in _WIRING_NAMES
    if site.method is not None and site.method not in _WIRING_NAMES:
        return False  # decided without decoding the summary
    raw = site.summary[1] if site.summary and site.summary[0] == "call" else None
    return bool(raw and raw[0] == "attr" and raw[2] in _WIRING_NAMES)


_ENTRY_FILE_NAMES = frozenset({"__main__.py", "main.py", "app.py", "asgi.py", "wsgi.py", "manage.py", "server.py", "worker.py", "cli.py", "run.py"})
# Server applications: a module that builds one is what a server (uvicorn, gunicorn) starts.
_APP_CLASSES = frozenset({
    "fastapi.FastAPI", "fastapi.applications.FastAPI", "starlette.applications.Starlette", "litestar.Litestar",
    "litestar.app.Litestar", "flask.Flask", "quart.Quart", "sanic.Sanic", "aiohttp.web.Application",
    "celery.Celery", "dramatiq.set_broker", "taskiq.TaskiqScheduler", "aiogram.Dispatcher",
})


def _is_app_constructor(index: "ProjectIndex", call) -> bool:
    name = index.qualname_of(call[1]) if call[1] else None
    return bool(name) and known.canonical(name) in _APP_CLASSES


def _imports_pytest(facts: ModuleFacts) -> bool:
    return any(site.module.split(".", 1)[0] == "pytest" for site in facts.imports)


def _module_aliases(facts: ModuleFacts) -> list[str]:
    """The canonical module name, plus the same name seen from each enclosing directory.

    Projects run from different roots (`app.db`, `src.app.db`, or a script's own folder), so a
    module is findable by every dotted suffix of its path.
    """
    names = [facts.module]
    path = PurePosixPath(facts.path)
    parts = list(path.with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    for i in range(len(parts)):
        name = ".".join(parts[i:])
        if name and name not in names and all(p.isidentifier() for p in parts[i:]):
            names.append(name)
    return names
