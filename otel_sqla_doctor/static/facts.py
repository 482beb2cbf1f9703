"""What one module contributes to the project index, as cacheable plain data.

The indexer (`indexer.py`) fills a `ModuleFacts` during the same walk in which the rules run.
Everything here is JSON-serialisable, so a file whose content has not changed is never parsed
again: its facts and findings come from the cache, and the project index is rebuilt from facts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Optional

from otel_sqla_doctor.static.summary import Summary, from_json



def resolve_relative_import(package: list[str], level: int, module: str) -> str:
    """The absolute module of `from <level dots><module> import ...` written in a module of
    `package` (its dotted parts): `from ..x import y` in `a.b.c` (package ["a", "b"]) -> `a.x`.
    The one relative-import resolver (no LibCST: the cheap regex pass can use it too)."""
    base = ".".join(package[: len(package) - (level - 1)] if level - 1 <= len(package) else [])
    if module:
        return f"{base}.{module}" if base else module
    return base


@dataclass
class CallSite:
    """A call whose callee we could name (directly or through a known object)."""

    callee: str  # canonical qualified name, or "" when the callee is not a global (see `summary`)
    summary: Summary  # ("call", callee_summary, args, kwargs)
    scope: str  # "" at module level, else the qualified name of the enclosing function
    order: int  # position in the walk: statement order within the module
    line: int = 0
    column: int = 0
    end_line: int = 0
    end_column: int = 0
    main_guard: bool = False  # inside `if __name__ == "__main__":`
    arg_calls: tuple = ()  # callees of calls passed as arguments, e.g. asyncio.run(main())
    text: str = ""  # the call's source, shortened, for messages
    star_args: bool = False  # the call passes *args or **kwargs (its arguments are not all known)
    # Enclosing alternatives, as "path:n:k" labels (statement n, branch k: if-body 0 / else 1,
    # try-body 0 / except 1). Two calls with the same "path:n" and different k never both run.
    branches: tuple = ()
    guards: tuple = ()  # names read by the tests of the enclosing `if`s (e.g. is_instrumented_by_opentelemetry)
    # The called name's last part (`instrument` for `x.instrument()` and `pkg.instrument()`; ""
    # when the callee is not a name or attribute). Lets the index skip a call without decoding
    # its summary. None: not recorded (facts built by hand), so nothing may be skipped.
    method: Optional[str] = None
    in_loop: bool = False  # inside a loop body or a comprehension: may run several times


def _summary_get(site: "CallSite") -> Summary:
    value = site.__dict__["_summary"]
    if type(value) is str:  # still in its cached JSON form: decode on first use
        value = site.__dict__["_summary"] = from_json(json.loads(value))
    return value


def _summary_set(site: "CallSite", value: Summary) -> None:
    site.__dict__["_summary"] = value


# Call summaries are half of a project's cached facts (query-builder chains) and most are never
# read when the index is rebuilt from the cache: they stay JSON text until first used, which
# made loading prefect's cache 2.5x faster. Set after @dataclass, so `__init__`, `__eq__` and
# `asdict` all go through it.
CallSite.summary = property(_summary_get, _summary_set)  # type: ignore[assignment]


@dataclass
class ImportSite:
    module: str  # absolute module imported (for `from m import x`: m; the index also tries m.x)
    names: tuple  # names imported with `from`, or () for `import m`
    scope: str
    order: int
    line: int = 0
    main_guard: bool = False
    guarded_by: tuple = ()  # exception names of an enclosing `try`, e.g. ("ImportError",)
    fallback_disables: bool = False  # the except branch sets something to None/False or passes
    column: int = 0
    end_line: int = 0
    end_column: int = 0
    in_handler: bool = False  # inside an `except` block: a fallback import
    type_checking: bool = False  # inside `if TYPE_CHECKING:`: never runs


@dataclass
class FunctionFacts:
    qualname: str
    is_async: bool
    line: int
    returns: tuple = ()  # summaries of returned values
    yields: tuple = ()  # summaries of yielded values
    decorators: tuple = ()  # summaries of decorators
    calls: tuple = ()  # (order, canonical qualified name) of every call of a global, in order
    depends: tuple = ()  # summaries of the callees of its `Depends(...)` parameters (FastAPI runs them per request)
    params: tuple = ()  # parameter names, in order
    # Parameters it calls database methods on (`db.query(...)`, `session.commit()`): handed a sync
    # Session, it blocks. And (param, callee, position or keyword) for parameters it passes on.
    db_params: tuple = ()
    param_calls: tuple = ()
    loop_calls: tuple = ()  # orders (see `calls`) of the calls made inside a loop or comprehension


# A guard token (in CallSite.guards): the body runs once per process, whatever calls it
# (`global _engine; if _engine is None:`).
RUN_ONCE = "<run-once>"


@dataclass
class ModuleFacts:
    path: str
    module: str
    is_package: bool
    symbols: dict = field(default_factory=dict)  # name (or "Class.attr") -> Summary
    symbol_lines: dict = field(default_factory=dict)  # name -> line, for engines and friends
    functions: dict = field(default_factory=dict)  # qualname -> FunctionFacts
    calls: list = field(default_factory=list)  # CallSite
    imports: list = field(default_factory=list)  # ImportSite
    has_async_def: bool = False
    has_main_guard: bool = False  # an `if __name__ == "__main__":` block: started as a script
    enum_classes: tuple = ()  # module-level classes deriving from an Enum (StrEnum, IntEnum, ...)
    mentions: tuple = ()  # notable words found in the raw bytes (see indexer.MENTION_WORDS)
    # Module-level classes -> the qualified names of their project-resolvable bases, so that
    # `Sub(...)` runs an inherited `__init__` and `super().__init__()` runs the base's.
    class_bases: dict = field(default_factory=dict)
    # Attribute name -> calls whose result is stored in `<anything>.name = ...` (`app.state.engine
    # = engine` in a lifespan): lets `instrument(engine=app.state.engine.sync_engine)` be followed.
    attr_stores: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        data = asdict(self)
        for call in data["calls"]:
            call["summary"] = json.dumps(call["summary"], separators=(",", ":"))
        return data

    @classmethod
    def from_json(cls, data: dict) -> "ModuleFacts":
        data = dict(data)
        data["symbols"] = {k: from_json(v) for k, v in data["symbols"].items()}
        data["functions"] = {
            k: FunctionFacts(**{kk: from_json(vv) for kk, vv in v.items()}) for k, v in data["functions"].items()
        }
        data["calls"] = [CallSite(**{k: v if k == "summary" else from_json(v) for k, v in c.items()}) for c in data["calls"]]
        data["imports"] = [ImportSite(**{k: from_json(v) for k, v in i.items()}) for i in data["imports"]]
        data["mentions"] = tuple(data.get("mentions", ()))
        data["attr_stores"] = {k: from_json(v) for k, v in data.get("attr_stores", {}).items()}
        return cls(**data)

    def function(self, qualname: str) -> Optional[FunctionFacts]:
        return self.functions.get(qualname)
