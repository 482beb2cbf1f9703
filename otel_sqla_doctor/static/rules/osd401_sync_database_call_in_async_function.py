from __future__ import annotations

from typing import Optional

import libcst as cst

from otel_sqla_doctor.static.paths import PathRole
from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.context import dotted_name
from otel_sqla_doctor.static.known import ANNOTATION_KINDS, canonical
from otel_sqla_doctor.static.rule import Invalid, Rule, Valid, check, kind_in
from otel_sqla_doctor.static.summary import Summary

# Calls that run what they are given off the event loop (a worker thread, or SQLAlchemy's greenlet).
OFFLOAD_CALLS = frozenset(
    {"to_thread", "run_in_executor", "run_sync", "run_in_threadpool", "sync_to_async", "run_sync_in_worker_thread", "submit"}
)

# Methods that talk to the database, by the kind of object they are called on.
BLOCKING_METHODS: dict[str, frozenset] = {
    "sync_connection": frozenset({"execute", "exec_driver_sql", "scalar", "scalars", "commit", "rollback"}),
    "sync_session": frozenset(
        {
            "execute", "exec", "scalar", "scalars", "query", "get", "get_one", "commit", "flush", "refresh",
            "merge", "rollback", "connection", "bulk_save_objects", "bulk_insert_mappings", "bulk_update_mappings",
        }
    ),
    "sync_engine": frozenset({"execute", "scalar", "raw_connection"}),  # not dispose(): shutdown code
}
BLOCKING_METHODS["sync_scoped_session"] = BLOCKING_METHODS["sync_session"]
# Opening one of these inside `async def` is reported once, where it is opened.
OPENED_KINDS = ("sync_session", "sync_connection")

# Callees that never open a session (a cheap filter: every other call is a candidate for the index).
_NEVER_DATABASE_ROOTS = frozenset(
    {
        "asyncio", "json", "logging", "os", "typing", "fastapi", "starlette", "pydantic", "httpx", "aiohttp",
        "datetime", "uuid", "time", "re", "math", "collections", "functools", "itertools", "dataclasses",
        "enum", "pathlib", "contextlib", "opentelemetry", "anyio",
    }
)


def _blocking_kinds(method: str) -> tuple[str, ...]:
    return tuple(kind for kind, methods in BLOCKING_METHODS.items() if method in methods)


_THIS = "otel_sqla_doctor.static.rules.osd401_sync_database_call_in_async_function"


def helper_queries_through(index, summary, where) -> bool:
    """Requirement: the project function called runs database methods on the argument at `where`."""
    qualname = index.qualname_of(summary) if summary and summary[0] != "ref" else canonical(summary[1]) if summary else None
    return bool(qualname) and index.uses_argument_for_database(qualname, where)


# Decorators that change how (or how often) a helper's body runs: cached, made async, run in a
# thread or queued as a task. A helper with one of these is not followed.
_UNFOLLOWED_DECORATOR_WORDS = ("cache", "async", "thread", "task", "executor", "background", "contextmanager", "property")


def helper_opens_session(index, summary, skip) -> bool:
    """Requirement: the project function called is a plain `def` that opens a synchronous Session
    or Connection of its own and works with it (or calls a plain `def` that does, one call deeper).
    `skip`: the arguments of the call that are names; a helper that queries through one of them is
    the other report's business (a session passed in)."""
    qualname = index.qualname_of(summary)
    if not qualname or any(index.uses_argument_for_database(qualname, where) for where in skip):
        return False
    # `with get_db() as db:` / `SessionLocal()`: the call itself hands out a session (reported as opened).
    if index.kind_of(("call", summary, (), ())) in OPENED_KINDS:
        return False
    return _opens_session(index, qualname, 0)


def _followed_function(index, qualname: str):
    hit = index.function(qualname)
    if hit is None:
        return None
    function = hit[1]
    if function.is_async or function.yields:
        return None  # a coroutine (awaited elsewhere) or a generator (its body runs when iterated)
    for decorator in function.decorators:
        name = _decorator_name(decorator).rsplit(".", 1)[-1].lower()
        if any(word in name for word in _UNFOLLOWED_DECORATOR_WORDS):
            return None
    return function


def _decorator_name(summary) -> str:
    """`functools.lru_cache` for `@lru_cache`, `@lru_cache(maxsize=1)`; `task` for `@app.task()`."""
    if summary and summary[0] == "call":
        summary = summary[1]
    if summary and summary[0] == "ref":
        return summary[1]
    if summary and summary[0] == "attr":
        return summary[2]
    return ""


def _opens_session(index, qualname: str, depth: int) -> bool:
    cache = index.__dict__.setdefault("_osd401_opens", {})
    key = (qualname, depth)
    if key in cache:
        return cache[key]
    cache[key] = False  # recursion guard
    function = _followed_function(index, qualname)
    found = False
    if function is not None:
        for _, callee in function.calls:
            call = ("call", ("ref", callee), (), ())
            if index.kind_of(call) in OPENED_KINDS:
                found = True  # `with SessionLocal() as s:`, `engine.connect()`, `get_catalog_session()`
            else:
                base, _, method = callee.rpartition(".")
                kind = index.kind_of(("ref", base)) if base else None
                found = bool(kind) and method in BLOCKING_METHODS.get(kind, ())  # `engine.execute()` on a global
            if not found and depth < 1 and callee != qualname:
                found = _opens_session(index, callee, depth + 1)
            if found:
                break
    cache[key] = found
    return found


_STARTUP_EVENTS = ("startup", "shutdown")


def _runs_at_startup(node: cst.FunctionDef) -> bool:
    """An ASGI lifespan (`@asynccontextmanager async def lifespan(app)`) or a start-up/shutdown
    hook (`@app.on_event("startup")`, `@app.on_startup`): it runs once, before requests come in."""
    for decorator in node.decorators:
        expression = decorator.decorator
        name = dotted_name(expression.func if isinstance(expression, cst.Call) else expression) or ""
        last = name.rsplit(".", 1)[-1]
        if last == "asynccontextmanager" and "lifespan" in node.name.value.lower():
            return True
        if last in ("on_startup", "on_shutdown", "before_server_start", "after_server_stop"):
            return True
        if last == "on_event" and isinstance(expression, cst.Call) and expression.args:
            first = expression.args[0].value
            if isinstance(first, cst.SimpleString) and first.evaluated_value in _STARTUP_EVENTS:
                return True
    return False


def _is_offload(node: cst.Call) -> bool:
    name = dotted_name(node.func) or ""
    return name.rsplit(".", 1)[-1] in OFFLOAD_CALLS


class SyncDatabaseCallInAsyncFunction(Rule):
    """
    A synchronous Engine, Connection or Session used inside `async def`.

    ## What it does
    Inside `async def`, finds the calls that run a synchronous SQLAlchemy (or SQLModel) database
    object on the event loop:
    - opening a sync `Session` or `Connection`: `Session(engine)`, `with Session(engine) as s:`,
      calling a `sessionmaker` / `scoped_session`, `engine.connect()`, `engine.begin()`, or a
      helper that returns or yields one;
    - the methods that talk to the database (`execute`, `query`, `scalars`, `get`, `commit`,
      `flush`, `refresh`, SQLModel's `exec`, ...) on a sync session, connection or engine that
      comes from elsewhere: a parameter annotated `Session`, a FastAPI dependency that yields one
      (`db: Session = Depends(get_db)`, `Annotated[Session, Depends(get_db)]` and aliases of it),
      or a module-level object, in this module or another one.

    Each offending call is reported once; the calls on a session opened in the same function are
    not reported again. Code in a function handed to `run_sync()`, `asyncio.to_thread`,
    `loop.run_in_executor`, `run_in_threadpool` or `anyio.to_thread.run_sync` (a nested `def` or a
    `lambda`) runs off the loop and is not reported, and neither is a sync `def` route (FastAPI and
    Starlette run those in a threadpool).

    ## Why is this bad?
    A sync driver blocks the thread while the database works, and inside `async def` that thread
    is the event loop: every other request, health check and timer waits. The telemetry does not
    show it: the query span has the same statement, duration and parent (the request span) as
    through an async engine. Measured on PostgreSQL (tests/rules/test_osd401_live.py): a
    `SELECT pg_sleep(0.3)` through a sync engine (psycopg2) in `async def` stalled a 5 ms ticker
    task for about 310 ms; through asyncpg the largest gap stayed around 10 ms.

    ## Example
    ```python
    @router.get("/users/{user_id}")
    async def read_user(user_id: int, db: Session = Depends(get_db)):
        return db.get(User, user_id)
    ```

    ## Use instead
    ```python
    @router.get("/users/{user_id}")
    async def read_user(user_id: int, db: AsyncSession = Depends(get_async_db)):
        return await db.get(User, user_id)
    ```
    or declare the route with `def`, so that FastAPI runs it in its threadpool.

    ## Known problems
    A sync Session handed to a helper of the project (`get_user(email, db)`) is followed through
    the helpers it is passed on to, three calls deep; a helper that opens its own session, a sync
    engine passed to a library (`metadata.create_all(engine)`, `pandas.read_sql(q, engine)`) and a
    session kept on `self` are not. Methods that do no I/O by themselves (`add`,
    `delete`, `expunge`) are not reported: the `commit()` or `flush()` that follows is.
    A call that is awaited (`await session.execute(q)`) is never reported, even on a parameter
    annotated `Session`: a sync Session's result cannot be awaited (TypeError), so the object
    must really be async and the annotation is what is wrong.

    ## References
    - reproduced by tests/rules/test_osd401_live.py in the otel-sqla-doctor repository (a 422 ms loop stall,
      identical spans)
    - https://fastapi.tiangolo.com/async/#path-operation-functions
    - https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html
    """

    CODE = "OSD401"
    REPORTS_IN = frozenset({PathRole.SERVICE})
    REPORTS_IN_WHY = 'A blocked event loop makes other requests wait; a test body, an example or a one-off script has no other requests.'
    NAME = "sync-database-call-in-async-function"
    FAMILY = "asyncio"
    SEVERITY = Severity.WARNING
    MESSAGE = (
        "synchronous database call inside `async def`: it blocks the event loop (every other request waits) "
        "while the spans look normal"
    )
    HINT = "use an AsyncEngine/AsyncSession and `await` it, declare the function with `def`, or run the call in `asyncio.to_thread`"
    PREFILTER = (b"async def",)
    FIX = None

    def __init__(self, ctx, options=None) -> None:
        super().__init__(ctx, options)
        self._offload_depth = 0
        self._offloaded_lambdas: list[bool] = []
        self._in_parameters = 0
        self._awaited: set[int] = set()
        self._startup: list[bool] = []  # per enclosing function: runs once at start-up or shutdown

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._startup.append(_runs_at_startup(node))

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._startup.pop()

    # -- where we are -------------------------------------------------------------------------
    def visit_Parameters(self, node: cst.Parameters) -> None:
        self._in_parameters += 1

    def leave_Parameters(self, node: cst.Parameters) -> None:
        self._in_parameters -= 1

    def visit_Await(self, node: cst.Await) -> None:
        # `await x.execute(...)`: the result is awaitable, so x is async whatever its annotation
        # says (awaiting a sync Session's result raises TypeError; see the live test).
        self._awaited.add(id(node.expression))

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._offloaded_lambdas.append(self._offload_depth > 0)

    def leave_Lambda(self, node: cst.Lambda) -> None:
        self._offloaded_lambdas.pop()

    def leave_Call(self, node: cst.Call) -> None:
        if _is_offload(node):
            self._offload_depth -= 1

    # -- the check ----------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        offload = _is_offload(node)
        if offload:
            self._offload_depth += 1
        if offload or not self.ctx.in_async_function or self._in_parameters or any(self._offloaded_lambdas):
            return
        if any(self._startup):
            return  # before the server accepts requests (or after it stopped): nothing else waits
        if id(node) in self._awaited:
            return
        func = node.func
        self._calls_helper_that_opens(node)
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            kinds = _blocking_kinds(method)
            receiver = func.value
            if kinds and not self._opened_here(receiver):
                if method == "query" and self._offload_depth:
                    return  # to_thread(db.query(User).all): only building the query runs here
                self.report(
                    node,
                    message=(
                        f"`.{method}()` on a synchronous Session/Connection/Engine inside `async def`: it blocks "
                        "the event loop (every other request waits) while the spans look normal"
                    ),
                    requires=(kind_in(self._receiver_summary(receiver), *kinds),),
                )
                return
            if method not in ("connect", "begin"):
                return
        else:
            self._passes_session_to_helper(node)
            if not self._may_open(func):
                return
        self.report(
            node,
            message=(
                "synchronous Session/Connection opened inside `async def`: every query through it blocks the event "
                "loop (every other request waits) while the spans look normal"
            ),
            requires=(kind_in(self.ctx.summarize(node), *OPENED_KINDS),),
        )

    def _passes_session_to_helper(self, node: cst.Call) -> bool:
        """`get_user_by_email(email, db_session)` in `async def`, where the helper (a plain `def`
        of the project) queries through the sync Session it is given: the loop blocks there."""
        callee = self.ctx.summarize(node.func)
        if not callee or callee[0] != "ref" or canonical(callee[1]).split(".", 1)[0] in _NEVER_DATABASE_ROOTS:
            return False
        reported = False
        for position, arg in enumerate(node.args):
            if arg.star or not isinstance(arg.value, cst.Name) or self._opened_here(arg.value):
                continue
            where = arg.keyword.value if arg.keyword is not None else position
            self.report(
                node,
                message=(
                    f"`{self.ctx.module_node.code_for_node(node.func)}()` runs queries through the synchronous "
                    f"Session `{arg.value.value}` inside `async def`: it blocks the event loop (every other request "
                    "waits) while the spans look normal"
                ),
                requires=(
                    kind_in(self._receiver_summary(arg.value), *BLOCKING_METHODS),
                    check(callee, f"{_THIS}:helper_queries_through", where),
                ),
            )
            reported = True  # one candidate per argument: the index keeps those that are sync Sessions
        return reported

    def _calls_helper_that_opens(self, node: cst.Call) -> None:
        """`user_owns_a_tenant(email)` in `async def`, where the helper (a plain `def` of the
        project) opens a synchronous Session of its own and queries: the loop blocks there."""
        callee = self.ctx.summarize(node.func)
        if not callee or callee[0] != "ref" or canonical(callee[1]).split(".", 1)[0] in _NEVER_DATABASE_ROOTS:
            return
        skip = [
            arg.keyword.value if arg.keyword is not None else position
            for position, arg in enumerate(node.args)
            if not arg.star and isinstance(arg.value, cst.Name)
        ]
        self.report(
            node,
            message=(
                f"`{self.ctx.module_node.code_for_node(node.func)}()` opens a synchronous Session/Connection and "
                "queries inside `async def`: it blocks the event loop (every other request waits) while the spans "
                "look normal"
            ),
            requires=(check(callee, f"{_THIS}:helper_opens_session", skip),),
        )

    def _may_open(self, func: cst.BaseExpression) -> bool:
        summary = self.ctx.summarize(func)
        if not summary or summary[0] not in ("ref", "call", "attr"):
            return False
        if summary[0] == "ref":
            return canonical(summary[1]).split(".", 1)[0] not in _NEVER_DATABASE_ROOTS
        return True

    def _opened_here(self, receiver: cst.BaseExpression) -> bool:
        """`Session(engine).execute()`, or a local of this function bound to a call (reported there)."""
        if isinstance(receiver, cst.Await):
            receiver = receiver.expression
        if isinstance(receiver, cst.Call):
            return True
        if not isinstance(receiver, cst.Name):
            return False
        scope = self.ctx.function
        for kind, payload in scope.bindings.get(receiver.value, ()) if scope else ():
            if isinstance(payload, cst.Await):
                payload = payload.expression
            if kind == "value" and isinstance(payload, cst.Call):
                return True
        return False

    def _receiver_summary(self, receiver: cst.BaseExpression) -> Optional[Summary]:
        """A parameter annotated with a known class is that class, whatever its `Depends()` says."""
        scope = self.ctx.function
        if isinstance(receiver, cst.Name) and scope is not None:
            bindings = scope.bindings.get(receiver.value, ())
            if len(bindings) == 1 and bindings[0][0] == "param":
                param = bindings[0][1]
                if param.annotation is not None:
                    position = self.ctx.scopes.index(scope)
                    declared = param.annotation.annotation
                    if isinstance(declared, cst.Subscript) and (dotted_name(declared.value) or "").endswith("Annotated"):
                        first = declared.slice[0].slice if declared.slice else None
                        declared = first.value if isinstance(first, cst.Index) else declared
                    annotation = self.ctx.summarize_annotation(declared, max(position - 1, 0))
                    if annotation and annotation[0] == "ref" and canonical(annotation[1]) in ANNOTATION_KINDS:
                        return ("instance", annotation)
        return self.ctx.summarize(receiver)

    VALID = [
        Valid(
            """
            from contextlib import asynccontextmanager
            from fastapi import FastAPI
            from sqlalchemy import create_engine, text
            from sqlalchemy.orm import Session

            engine = create_engine("postgresql+psycopg2://app@db/app")

            @asynccontextmanager
            async def lifespan(app: FastAPI):
                with Session(engine) as session:
                    session.execute(text("select 1"))
                yield

            app = FastAPI(lifespan=lifespan)

            @app.on_event("startup")
            async def warm_up():
                with engine.connect() as conn:
                    conn.execute(text("select 1"))
            """,
            note="start-up work in a lifespan or a startup hook runs before requests come in: nothing waits",
        ),
        Valid(
            """
            from fastapi import APIRouter, Depends
            from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

            engine = create_async_engine("postgresql+asyncpg://app@db/app")
            SessionLocal = async_sessionmaker(engine, expire_on_commit=False)
            router = APIRouter()

            async def get_db():
                async with SessionLocal() as session:
                    yield session

            @router.get("/users/{user_id}")
            async def read_user(user_id: int, db: AsyncSession = Depends(get_db)):
                user = await db.get(User, user_id)
                await db.commit()
                return user
            """,
            note="async session all the way",
        ),
        Valid(
            """
            from fastapi import APIRouter, Depends
            from sqlalchemy.orm import Session, sessionmaker
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@db/app")
            SessionLocal = sessionmaker(bind=engine)
            router = APIRouter()

            def get_db():
                db = SessionLocal()
                try:
                    yield db
                finally:
                    db.close()

            @router.get("/users/{user_id}")
            def read_user(user_id: int, db: Session = Depends(get_db)):
                return db.get(User, user_id)
            """,
            note="a sync route: FastAPI runs it in its threadpool",
        ),
        Valid(
            """
            import asyncio
            from sqlalchemy import select, text
            from sqlalchemy.orm import Session
            from sqlalchemy.ext.asyncio import AsyncSession
            from starlette.concurrency import run_in_threadpool

            async def report(engine, session: AsyncSession, db: Session):
                def build(sync_session):
                    return sync_session.execute(text("SELECT 1")).scalar()

                await session.run_sync(build)
                rows = await asyncio.to_thread(lambda: db.execute(select(User)).all())
                count = await run_in_threadpool(db.scalar, text("SELECT count(*) FROM users"))
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, lambda: db.query(User).count())
                await asyncio.to_thread(db.query(User).all)
                return rows, count
            """,
            note="work handed to run_sync, to_thread, run_in_threadpool and run_in_executor",
        ),
        Valid(
            """
            import requests
            from aiohttp import ClientSession

            async def fetch(url: str, cache: dict):
                async with ClientSession() as session:
                    async with session.get(url) as response:
                        body = await response.text()
                legacy = requests.Session()
                cache.get(url)
                return body, legacy
            """,
            note="other things called session, get and execute",
        ),
        Valid(
            """
            from sqlalchemy.orm import sessionmaker
            from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

            engine = create_async_engine("sqlite+aiosqlite://")
            Session = sessionmaker(engine, class_=AsyncSession)

            async def count_users():
                async with Session() as session:
                    return await session.scalar(text("SELECT count(*) FROM users"))
            """,
            note="sessionmaker(class_=AsyncSession) makes async sessions",
        ),
        Valid(
            """
            import sqlalchemy as sa

            async def read_history(session: sa.orm.Session, query):
                result = await session.execute(query)
                connection = await session.connection()
                if connection.invalidated:
                    await session.rollback()
                return result.mappings()
            """,
            note="an awaited call is async whatever the annotation says (prefect annotates AsyncSessions as Session)",
        ),
        Valid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from contextlib import contextmanager
                    from functools import lru_cache
                    from sqlalchemy import create_engine, select
                    from sqlalchemy.orm import Session, sessionmaker
                    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

                    SessionLocal = sessionmaker(create_engine("postgresql+psycopg2://app@db/app"))
                    AsyncSessionLocal = async_sessionmaker(create_async_engine("postgresql+asyncpg://app@db/app"))

                    def normalise(email: str) -> str:
                        return email.strip().lower()

                    def count_async_users():
                        return AsyncSessionLocal()

                    @lru_cache(maxsize=1)
                    def load_settings():
                        with SessionLocal() as session:
                            return session.execute(select(Setting)).scalars().all()

                    def sync_report():
                        with SessionLocal() as session:
                            return session.execute(select(User)).all()
                """,
                "app/api.py": """
                    import asyncio
                    from app.db import count_async_users, load_settings, normalise, sync_report

                    async def signup(email: str):
                        email = normalise(email)
                        session = count_async_users()
                        settings = load_settings()
                        rows = await asyncio.to_thread(sync_report)
                        return email, settings, rows
                """,
            },
            note="helpers that open no sync session, one cached once per process, one run in a thread",
        ),
    ]
    INVALID = [
        Invalid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from contextlib import contextmanager
                    from sqlalchemy import create_engine, select
                    from sqlalchemy.orm import Session

                    engine = create_engine("postgresql+psycopg2://app@db/app")

                    @contextmanager
                    def get_catalog_session():
                        with Session(engine) as session:
                            yield session

                    def user_owns_a_tenant(email: str) -> bool:
                        with get_catalog_session() as session:
                            return session.execute(select(Tenant).where(Tenant.email == email)).first() is not None

                    def check_signup(email: str) -> None:
                        if user_owns_a_tenant(email.lower()):
                            raise ValueError(email)
                """,
                "app/provisioning.py": """
                    from app import db

                    async def provision_tenant(tenant_id: str, email: str) -> None:
                        if db.user_owns_a_tenant(email):  # ERROR
                            raise ValueError(email)
                        db.check_signup(email)  # ERROR
                """,
            },
            note="a sync helper that opens its own session (or calls one that does) called from a coroutine",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/crud.py": """
                    from sqlalchemy.orm import Session

                    def get_user_by_email(email: str, db_session: Session):
                        return db_session.query(object).filter_by(email=email).first()

                    def by_email_twice(db: Session, email: str):
                        return get_user_by_email(email, db)

                    def normalise(db: Session, email: str) -> str:
                        return email.lower()
                """,
                "app/api.py": """
                    import asyncio
                    from fastapi import APIRouter, Depends
                    from sqlalchemy import create_engine
                    from sqlalchemy.orm import Session, sessionmaker

                    from app.crud import by_email_twice, get_user_by_email, normalise

                    SessionLocal = sessionmaker(create_engine("postgresql+psycopg2://app@db/app"))
                    router = APIRouter()

                    def get_session():
                        with SessionLocal() as session:
                            yield session

                    @router.post("/reset")
                    async def reset(email: str, db_session: Session = Depends(get_session)):
                        user = get_user_by_email(email, db_session)  # ERROR
                        again = by_email_twice(db_session, email)  # ERROR
                        clean = normalise(db_session, email)
                        offloaded = await asyncio.to_thread(get_user_by_email, email, db_session)
                        return user
                """,
            },
            note="a sync Session handed to helpers that query with it, one or two calls deep",
        ),
        Invalid(
            """
            from fastapi import APIRouter, Depends
            from sqlalchemy import create_engine, select
            from sqlalchemy.orm import Session, sessionmaker

            engine = create_engine("postgresql://app@db/app")
            SessionLocal = sessionmaker(autocommit=False, autoflush=False, bind=engine)
            router = APIRouter()

            def get_db():
                db = SessionLocal()
                try:
                    yield db
                finally:
                    db.close()

            @router.post("/users")
            async def create_user(name: str, db: Session = Depends(get_db)):
                user = User(name=name)
                db.add(user)
                db.commit()  # ERROR
                db.refresh(user)  # ERROR
                return db.query(User).filter(User.name == name).all()  # ERROR
            """,
            note="the FastAPI tutorial's sync session in an async route; one report per call",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from sqlmodel import Session, create_engine

                    engine = create_engine("sqlite:///database.db")

                    def get_session():
                        with Session(engine) as session:
                            yield session
                """,
                "app/deps.py": """
                    from typing import Annotated
                    from fastapi import Depends
                    from sqlmodel import Session
                    from app.db import get_session

                    SessionDep = Annotated[Session, Depends(get_session)]
                """,
                "app/routes.py": """
                    from fastapi import APIRouter
                    from sqlmodel import select
                    from app.deps import SessionDep

                    router = APIRouter()

                    @router.get("/heroes")
                    async def read_heroes(session: SessionDep, offset: int = 0):
                        return session.exec(select(Hero).offset(offset)).all()  # ERROR
                """,
            },
            note="SQLModel, an Annotated dependency alias in another module",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/database.py": """
                    import sqlalchemy as sa
                    from sqlalchemy import orm

                    engine = sa.create_engine("mysql+pymysql://root@db/app", pool_pre_ping=True)
                    Factory = orm.sessionmaker(bind=engine)
                """,
                "app/jobs.py": """
                    from sqlalchemy import text
                    from app.database import Factory as make_session, engine as sync_engine

                    async def nightly_cleanup():
                        with make_session() as session:  # ERROR
                            session.execute(text("DELETE FROM events WHERE created < now() - interval 30 day"))
                            session.commit()
                        with sync_engine.begin() as conn:  # ERROR
                            conn.execute(text("OPTIMIZE TABLE events"))
                """,
            },
            note="aliased imports from another module; reported where the session is opened",
        ),
        Invalid(
            """
            from typing import Annotated
            from fastapi import Depends, FastAPI
            from sqlalchemy.orm import Session
            from app.db import get_db

            app = FastAPI()

            @app.get("/health/db")
            async def db_health(db: Annotated[Session, Depends(get_db)]):
                db.execute(text("SELECT 1"))  # ERROR
                return {"ok": True}
            """,
            note="the annotation says Session even though get_db is not in the project",
        ),
        Invalid(
            """
            import asyncio
            from sqlalchemy import create_engine, text

            engine = create_engine("postgresql://app@db/app")

            async def handler(request):
                rows = await asyncio.to_thread(lambda: 1)
                with engine.connect() as conn:  # ERROR
                    rows = conn.execute(text("SELECT pg_sleep(0.3)")).all()
                return rows
            """,
            note="engine.connect() on the loop, after an unrelated to_thread",
        ),
    ]
