from __future__ import annotations

from typing import Optional

import libcst as cst

from otel_sqla_doctor.static.paths import PathRole
from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.context import dotted_name
from otel_sqla_doctor.static.known import canonical
from otel_sqla_doctor.static.rule import Invalid, Rule, Valid, check
from otel_sqla_doctor.static.summary import Summary

ENGINE_FACTORIES = frozenset({"sqlalchemy.create_engine", "sqlalchemy.ext.asyncio.create_async_engine"})

# Decorators that make a function run once (or once per argument): a cached factory is fine.
_CACHE_DECORATORS = frozenset({"lru_cache", "cache", "cached", "alru_cache", "cached_property", "once"})

# Objects whose decorators register a function that runs per request or per job.
_ROUTE_OWNERS = frozenset(
    {
        "fastapi.FastAPI", "fastapi.APIRouter", "fastapi.routing.APIRouter", "fastapi.applications.FastAPI",
        "starlette.applications.Starlette", "starlette.routing.Router",
        "flask.Flask", "flask.Blueprint", "flask.blueprints.Blueprint", "quart.Quart", "quart.Blueprint",
        "sanic.Sanic", "sanic.Blueprint", "aiohttp.web.RouteTableDef", "litestar.Router",
        "celery.Celery", "huey.RedisHuey", "huey.SqliteHuey", "huey.MemoryHuey",
    }
)
_ROUTE_METHODS = frozenset(
    {
        "get", "post", "put", "patch", "delete", "head", "options", "trace", "route", "api_route", "websocket",
        "middleware", "task", "periodic_task",
    }
)
# Decorators that are route or job registrations by themselves.
_ROUTE_FUNCTIONS = frozenset(
    {
        "celery.shared_task", "celery.task", "dramatiq.actor", "huey.contrib.djhuey.task",
        "litestar.get", "litestar.post", "litestar.put", "litestar.patch", "litestar.delete", "litestar.route",
        "litestar.websocket", "litestar.handlers.get", "litestar.handlers.post",
    }
)
# When the owner object is in a module the index does not hold, the conventional names still tell.
_CONVENTIONAL_OWNERS = frozenset({"app", "router", "api", "bp", "blueprint", "routes", "celery", "celery_app"})
_CALLER_LEVELS = 2


def _last(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _is_cache_decorator(summary: Optional[Summary]) -> bool:
    if summary and summary[0] == "call":
        summary = summary[1]
    if summary and summary[0] == "ref":
        return _last(summary[1]) in _CACHE_DECORATORS
    if summary and summary[0] == "attr":
        return summary[2] in _CACHE_DECORATORS
    return False


def _route_decorator(index, decorator: Summary) -> bool:
    target = decorator[1] if decorator and decorator[0] == "call" else decorator
    if not target:
        return False
    if target[0] == "ref":
        name = canonical(target[1])
        if name in _ROUTE_FUNCTIONS:
            return True
        qualified = index.qualname_of(target)
        if qualified in _ROUTE_FUNCTIONS:
            return True
        owner_name, _, method = name.rpartition(".")
        if not owner_name or method not in _ROUTE_METHODS:
            return False
        return _route_owner(index, ("ref", owner_name), _last(owner_name))
    if target[0] == "attr" and target[2] in _ROUTE_METHODS:
        base = target[1]
        hint = _last(base[1]) if base and base[0] == "ref" else ""
        return _route_owner(index, base, hint)
    return False


def _route_owner(index, owner: Summary, name_hint: str) -> bool:
    value = index.value(owner)
    if value is None:
        # `from app.api import router` where that module is not in the index.
        return name_hint in _CONVENTIONAL_OWNERS
    if value[0] in ("result", "q"):
        return canonical(value[1]) in _ROUTE_OWNERS
    return False


def _function_facts(index, qualname: str):
    hit = index.function(qualname)
    return hit[1] if hit is not None else None


def _is_cached(function) -> bool:
    return any(_is_cache_decorator(d) for d in function.decorators)


def _is_route(index, function) -> bool:
    return any(_route_decorator(index, d) for d in function.decorators)


def _callers(index) -> dict[str, set[str]]:
    """qualname -> the project functions that call it or take it as a FastAPI dependency."""
    cache = index.__dict__.get("_osd403_callers")
    if cache is not None:
        return cache
    callers: dict[str, set[str]] = {}
    for qualname, (_, function) in index.functions.items():
        for _, callee in function.calls:
            hit = index.function(callee)
            if hit is not None:
                callers.setdefault(hit[1].qualname, set()).add(qualname)
        for dependency in (*function.depends, *_decorator_dependencies(function)):
            target = index.qualname_of(dependency)
            hit = index.function(target) if target else None
            if hit is not None:
                callers.setdefault(hit[1].qualname, set()).add(qualname)
    index.__dict__["_osd403_callers"] = callers
    return callers


def _decorator_dependencies(function) -> list:
    """`@router.get("/", dependencies=[Depends(check_db)])`."""
    found = []
    for decorator in function.decorators:
        if decorator and decorator[0] == "call":
            for key, value in decorator[3]:
                if key == "dependencies" and value and value[0] == "list":
                    for item in value[1]:
                        if item and item[0] == "call" and item[1] and item[1][0] == "ref" and _last(item[1][1]) == "Depends" and item[2]:
                            found.append(item[2][0])
    return found


def runs_per_call(index, summary: Summary) -> bool:
    """The function (summary = ("ref", qualname)) is a route or job, or is called from one (two levels)."""
    function = _function_facts(index, summary[1])
    if function is None:
        return False
    callers = _callers(index)
    frontier, seen = [function.qualname], {function.qualname}
    for _ in range(_CALLER_LEVELS + 1):
        following = []
        for qualname in frontier:
            facts = _function_facts(index, qualname)
            if facts is None or _is_cached(facts):
                continue
            if _is_route(index, facts):
                return True
            for caller in callers.get(qualname, ()):
                if caller not in seen:
                    seen.add(caller)
                    following.append(caller)
        frontier = following
    return False


class EngineCreatedPerCall(Rule):
    """
    `create_engine()` / `create_async_engine()` inside a route handler, a task, or a function they call.

    ## What it does
    Finds engines created inside a function that runs per request or per job: one decorated as a
    route or task (`@app.get`, `@router.post`, `@app.route`, `@bp.route`, Litestar's `@get`,
    Celery's `@app.task` / `@shared_task`, ...), a FastAPI dependency of one (`Depends(get_db)`),
    or a function such a function calls (up to two levels), in this module or another one.
    Engines kept for later are not reported: a factory decorated with `@lru_cache` / `@cache`,
    the `global engine; if engine is None: engine = create_engine(...)` singleton, or an engine
    stored on an object or in a dictionary.

    ## Why is this bad?
    An engine is a connection pool. Creating one per request opens a new server connection for
    every request (TCP, authentication, session setup), and when the engine is not disposed its
    idle connection stays open until the garbage collector happens to reach the engine, so the
    database's connection count follows the request rate. For tracing, an engine created in a
    handler is never reached by per-engine instrumentation
    (`SQLAlchemyInstrumentor().instrument(engine=...)` at startup): its queries return results but
    produce no query spans, so the slowest code path is the invisible one. Measured on PostgreSQL
    (tests/rules/test_osd403_live.py): 5 calls through the startup engine used 1 server connection
    and gave 5 query spans; 5 calls of a handler with its own engine used 5 server connections (up
    to 3 open at once before the garbage collector ran) and gave 0 query spans.

    ## Example
    ```python
    @router.get("/reports/{report_id}")
    async def get_report(report_id: int):
        engine = create_async_engine(settings.DATABASE_URL)
        async with engine.connect() as conn:
            return (await conn.execute(select(Report).where(Report.id == report_id))).one()
    ```

    ## Use instead
    ```python
    engine = create_async_engine(settings.DATABASE_URL)  # once, at import or startup

    @router.get("/reports/{report_id}")
    async def get_report(report_id: int):
        async with engine.connect() as conn:
            return (await conn.execute(select(Report).where(Report.id == report_id))).one()
    ```

    ## Known problems
    With a global `instrument()` (no `engine=`), an engine created after it through the patched
    `sqlalchemy.ext.asyncio.create_async_engine` attribute does get spans (tests/rules/test_osd102_live.py in the otel-sqla-doctor repository);
    the pool cost remains. Calls through methods (`self.make_engine()`) and routes registered without a decorator
    (`app.add_api_route`, Starlette's `Route(...)` lists, Django views) are not followed. An engine
    created per tenant and cached by hand in an unusual way (e.g. in a local variable returned to
    a caching caller) may be reported; suppress it on that line.

    ## References
    - https://docs.sqlalchemy.org/en/20/core/connections.html#basic-usage ("The Engine is ... intended to be
      created once per database URL")
    - https://docs.sqlalchemy.org/en/20/faq/connections.html#how-do-i-use-engines-connections-sessions-with-python-multiprocessing-or-os-fork
    - open-telemetry/opentelemetry-python-contrib#1648 (connect-only spans)
    """

    CODE = "OSD403"
    REPORTS_IN = frozenset({PathRole.SERVICE})
    REPORTS_IN_WHY = 'A pool per call exhausts connections under production load; tests and scripts create engines per case on purpose.'
    NAME = "engine-created-per-call"
    FAMILY = "asyncio"
    SEVERITY = Severity.WARNING
    MESSAGE = (
        "engine created in a function that runs per request or per job: a new connection pool every call, "
        "connections left open, and per-engine instrumentation never sees its queries"
    )
    HINT = "create the engine once (module level, app startup or an @lru_cache factory) and reuse it"
    PREFILTER = (b"create_engine", b"create_async_engine")

    def __init__(self, ctx, options=None) -> None:
        super().__init__(ctx, options)
        self._assign_targets: list[tuple[cst.BaseExpression, tuple]] = []

    def visit_Assign(self, node: cst.Assign) -> None:
        self._assign_targets.append((node.value, tuple(t.target for t in node.targets)))

    def leave_Assign(self, node: cst.Assign) -> None:
        self._assign_targets.pop()

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._assign_targets.append((node.value, (node.target,)))

    def leave_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._assign_targets.pop()

    def visit_Call(self, node: cst.Call) -> None:
        scope = self.ctx.function
        if scope is None or self.ctx.qualname(node.func) not in ENGINE_FACTORIES:
            return
        if self.ctx.scopes[-1].kind != "function":
            return  # a class body inside a function: not followed
        if any(s.kind == "function" and _has_cache_decorator(s.node) for s in self.ctx.scopes):
            return
        if self._kept(node, scope):
            return
        self.report(node, requires=(check(("ref", scope.qualname), f"{__name__}:runs_per_call"),))

    def _kept(self, node: cst.Call, scope) -> bool:
        """The engine is stored beyond the call: a global, an attribute, a dictionary entry."""
        for value, targets in reversed(self._assign_targets):
            inner = value.expression if isinstance(value, cst.Await) else value
            if inner is not node:
                continue
            for target in targets:
                if isinstance(target, (cst.Attribute, cst.Subscript)):
                    return True
                if isinstance(target, cst.Name):
                    if target.value in scope.global_names or _stored_later(scope.node, target.value, scope.global_names):
                        return True
        return False

    VALID = [
        Valid(
            """
            from fastapi import FastAPI
            from sqlalchemy.ext.asyncio import create_async_engine

            app = FastAPI()
            engine = create_async_engine("postgresql+asyncpg://app@db/app")

            @app.get("/items")
            async def list_items():
                async with engine.connect() as conn:
                    return (await conn.execute(text("SELECT 1"))).all()
            """,
            note="one engine, at import",
        ),
        Valid(
            """
            from functools import lru_cache
            from fastapi import APIRouter
            from sqlalchemy import create_engine

            router = APIRouter()

            @lru_cache
            def get_engine():
                return create_engine("postgresql://app@db/app", pool_pre_ping=True)

            @router.get("/items")
            def list_items():
                with get_engine().connect() as conn:
                    return conn.execute(text("SELECT 1")).all()
            """,
            note="a cached factory",
        ),
        Valid(
            """
            from flask import Flask
            from sqlalchemy import create_engine

            app = Flask(__name__)
            _engine = None
            _tenant_engines = {}

            def get_engine():
                global _engine
                if _engine is None:
                    _engine = create_engine("postgresql://app@db/app")
                return _engine

            def tenant_engine(tenant: str):
                if tenant not in _tenant_engines:
                    _tenant_engines[tenant] = create_engine(f"postgresql://app@db/{tenant}")
                return _tenant_engines[tenant]

            @app.route("/items")
            def list_items():
                with get_engine().connect() as conn:
                    return conn.execute(text("SELECT 1")).all()

            @app.route("/t/<tenant>/items")
            def tenant_items(tenant):
                with tenant_engine(tenant).connect() as conn:
                    return conn.execute(text("SELECT 1")).all()
            """,
            note="a global singleton and a per-tenant dictionary",
        ),
        Valid(
            """
            from contextlib import asynccontextmanager
            from fastapi import FastAPI
            from sqlalchemy.ext.asyncio import create_async_engine

            @asynccontextmanager
            async def lifespan(app: FastAPI):
                app.state.engine = create_async_engine("postgresql+asyncpg://app@db/app")
                yield
                await app.state.engine.dispose()

            app = FastAPI(lifespan=lifespan)

            @app.on_event("startup")
            async def warm_up():
                engine = create_async_engine("postgresql+asyncpg://app@db/app")
                await engine.dispose()
            """,
            note="startup code runs once",
        ),
        Valid(
            """
            from sqlalchemy import create_engine

            def make_engine(url: str):
                return create_engine(url, pool_size=10)

            def main():
                engine = make_engine("postgresql://app@db/app")
                run_migrations(engine)
            """,
            note="a factory nobody calls per request",
        ),
    ]
    INVALID = [
        Invalid(
            """
            from fastapi import APIRouter
            from sqlalchemy import text
            from sqlalchemy.ext.asyncio import create_async_engine as make_engine

            router = APIRouter(prefix="/reports")

            @router.get("/{report_id}")
            async def get_report(report_id: int):
                engine = make_engine("postgresql+asyncpg://app@db/app")  # ERROR
                async with engine.connect() as conn:
                    return (await conn.execute(text("SELECT 1"))).one()
            """,
            note="aliased import, in the handler",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    import sqlalchemy as sa
                    from sqlalchemy.orm import sessionmaker

                    DATABASE_URL = "postgresql://app@db/app"

                    def get_db():
                        engine = sa.create_engine(DATABASE_URL)  # ERROR
                        SessionLocal = sessionmaker(bind=engine)
                        db = SessionLocal()
                        try:
                            yield db
                        finally:
                            db.close()
                """,
                "app/main.py": """
                    from fastapi import Depends, FastAPI
                    from sqlalchemy.orm import Session
                    from app.db import get_db

                    app = FastAPI()

                    @app.get("/users")
                    def list_users(db: Session = Depends(get_db)):
                        return db.query(User).all()
                """,
            },
            note="a FastAPI dependency in another module creates the engine per request",
        ),
        Invalid(
            {
                "worker/__init__.py": "",
                "worker/db.py": """
                    from sqlmodel import create_engine

                    def connect(url):
                        return create_engine(url)  # ERROR
                """,
                "worker/tasks.py": """
                    from celery import shared_task
                    from worker.db import connect

                    def load(url):
                        with connect(url).begin() as conn:
                            conn.exec_driver_sql("SELECT 1")

                    @shared_task(bind=True, max_retries=3)
                    def nightly(self, url):
                        load(url)
                """,
            },
            note="a Celery task, two calls away, SQLModel's create_engine",
        ),
        Invalid(
            """
            from flask import Blueprint
            from sqlalchemy import create_engine, text

            bp = Blueprint("stats", __name__)

            @bp.route("/stats")
            def stats():
                engine = create_engine("mysql+pymysql://root@db/app")  # ERROR
                with engine.connect() as conn:
                    return {"n": conn.execute(text("SELECT COUNT(*) FROM orders")).scalar()}
            """,
            note="a Flask blueprint route",
        ),
    ]


def _has_cache_decorator(node: cst.CSTNode) -> bool:
    if not isinstance(node, cst.FunctionDef):
        return False
    for decorator in node.decorators:
        expr = decorator.decorator
        if isinstance(expr, cst.Call):
            expr = expr.func
        if _last(dotted_name(expr) or "") in _CACHE_DECORATORS:
            return True
    return False


class _StoredLater(cst.CSTVisitor):
    """Finds `x = engine` / `cache[k] = engine` / `self.engine = engine` for a given local name."""

    def __init__(self, name: str, global_names: set) -> None:
        self.name = name
        self.global_names = global_names
        self.found = False

    def visit_Assign(self, node: cst.Assign) -> None:
        if isinstance(node.value, cst.Name) and node.value.value == self.name:
            for target in node.targets:
                t = target.target
                if isinstance(t, (cst.Attribute, cst.Subscript)) or (isinstance(t, cst.Name) and t.value in self.global_names):
                    self.found = True

    def visit_Call(self, node: cst.Call) -> None:
        # _engines.setdefault(key, engine) / registry.append(engine)
        if isinstance(node.func, cst.Attribute) and node.func.attr.value in ("setdefault", "append", "add", "update", "register"):
            if any(isinstance(a.value, cst.Name) and a.value.value == self.name for a in node.args):
                self.found = True


def _stored_later(function: cst.CSTNode, name: str, global_names: set) -> bool:
    visitor = _StoredLater(name, global_names)
    function.visit(visitor)
    return visitor.found
