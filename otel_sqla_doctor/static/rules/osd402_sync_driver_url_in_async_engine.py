from __future__ import annotations

from typing import Any, Optional

import libcst as cst

from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.known import canonical
from otel_sqla_doctor.static.patterns import keyword
from otel_sqla_doctor.static.rule import Invalid, Rule, Valid, check
from otel_sqla_doctor.static.summary import Summary

CREATE_ASYNC_ENGINE = "sqlalchemy.ext.asyncio.create_async_engine"

# dialect -> (drivers that are synchronous DBAPIs, the driver of a bare `dialect://`, async driver to swap in)
_DIALECTS: dict[str, tuple[frozenset, str, str]] = {
    "postgresql": (frozenset({"psycopg2", "pg8000", "psycopg2cffi", "pygresql"}), "psycopg2", "asyncpg"),
    "mysql": (frozenset({"mysqldb", "pymysql", "mysqlconnector", "cymysql"}), "mysqldb", "aiomysql"),
    "mariadb": (frozenset({"mysqldb", "pymysql", "mysqlconnector", "mariadbconnector"}), "mysqldb", "aiomysql"),
    "sqlite": (frozenset({"pysqlite", "pysqlcipher"}), "pysqlite", "aiosqlite"),
}

# Calls whose result is an environment value with a literal default (argument 1 or `default=`).
_ENV_GETTERS = frozenset({"os.getenv", "os.environ.get", "os.environ.setdefault", "decouple.config"})
_URL_BUILDERS = frozenset({"sqlalchemy.engine.URL.create", "sqlalchemy.URL.create", "sqlalchemy.engine.url.URL.create"})
_URL_PARSERS = frozenset({"sqlalchemy.engine.make_url", "sqlalchemy.make_url", "sqlalchemy.engine.url.make_url"})
_MAX_DEPTH = 16


def sync_driver(scheme: Optional[str]) -> Optional[tuple[str, str]]:
    """(loaded sync driver, async scheme to use instead) when `scheme` names a synchronous DBAPI."""
    if not scheme:
        return None
    dialect, _, driver = scheme.strip().lower().partition("+")
    entry = _DIALECTS.get(dialect)
    if entry is None:
        return None
    sync_drivers, default, replacement = entry
    driver = driver or default
    if driver not in sync_drivers:
        return None
    return driver, f"{dialect}+{replacement}"


def _scheme_of_text(text: Any, drivername: bool = False) -> Optional[str]:
    if not isinstance(text, str):
        return None
    if drivername:
        return text or None
    if "://" not in text:
        return None
    scheme = text.split("://", 1)[0]
    return scheme if scheme.replace("+", "").replace("_", "").isalnum() else None


def _symbol(index, qualname: str, seen: Optional[set] = None) -> Optional[Summary]:
    """The summary a project module binds `qualname` to: `app.config.DATABASE_URL`,
    `app.config.Settings.DATABASE_URL`, or `app.config.settings.DATABASE_URL` (an instance)."""
    # A settings attribute annotated without a value (`DATABASE_URL: Optional[str]`) leads from
    # the class back to itself: each name is followed once.
    seen = set() if seen is None else seen
    if qualname in seen:
        return None
    seen.add(qualname)
    parts = qualname.split(".")
    for i in range(len(parts) - 1, 0, -1):
        facts = index.module(".".join(parts[:i]))
        if facts is None:
            continue
        rest = ".".join(parts[i:])
        if rest in facts.symbols:
            return facts.symbols[rest]
        head, _, tail = rest.partition(".")
        if tail and "." not in tail and head in facts.symbols:
            owner = index.value(facts.symbols[head])
            if owner and owner[0] in ("obj", "class") and owner[1] != qualname:
                return _symbol(index, f"{owner[1]}.{tail}", seen)
        return None
    return None


def url_scheme(index, summary: Optional[Summary], depth: int = 0) -> Optional[str]:
    """The `dialect+driver` a URL expression carries, when it comes from literals (and defaults).

    Without an index, only what one file can tell; with one, through other modules and settings classes.
    """
    if not summary or depth > _MAX_DEPTH:
        return None
    tag = summary[0]
    if tag == "lit":
        return _scheme_of_text(summary[1])
    if tag == "fstr":
        parts = summary[1]
        if parts and parts[0][0] == "lit":
            return _scheme_of_text(parts[0][1])
        return None
    if tag == "binop":  # "postgresql://" + rest, "postgresql://%s@%s" % (...)
        return url_scheme(index, summary[2], depth + 1)
    if tag == "or":  # os.getenv("URL") or "sqlite://": the literal fallback is the default
        return url_scheme(index, summary[1], depth + 1) or url_scheme(index, summary[2], depth + 1)
    if tag == "call":
        return _call_scheme(index, summary, depth)
    if index is None:
        return None
    if tag == "ref":
        value = index.value(summary)
        if value and value[0] == "lit":
            return _scheme_of_text(value[1])
        symbol = _symbol(index, canonical(summary[1]))
        return url_scheme(index, symbol, depth + 1) if symbol is not None else None
    if tag == "attr":  # settings.DATABASE_URL, Settings.DATABASE_URL, get_settings().DATABASE_URL
        base = index.value(summary[1])
        if base and base[0] in ("obj", "class"):
            symbol = _symbol(index, f"{base[1]}.{summary[2]}")
            return url_scheme(index, symbol, depth + 1) if symbol is not None else None
    return None


def _call_scheme(index, summary: Summary, depth: int) -> Optional[str]:
    callee, args, kwargs = summary[1], summary[2], dict(summary[3])
    if callee and callee[0] == "attr" and callee[2] == "format":  # "postgresql://{}".format(...)
        return url_scheme(index, callee[1], depth + 1)
    name = canonical(callee[1]) if callee and callee[0] == "ref" else ""
    if not name and index is not None and callee and callee[0] != "unknown":
        name = index.qualname_of(callee) or ""
    if name in _ENV_GETTERS or name.endswith(".Field"):
        # os.getenv("URL", "postgresql://...") / pydantic Field("postgresql://...")
        default = kwargs.get("default")
        if default is None:
            position = 0 if name.endswith(".Field") else 1
            default = args[position] if len(args) > position else None
        return url_scheme(index, default, depth + 1)
    if callee and callee[0] == "call" and callee[1] and callee[1][0] == "ref" and canonical(callee[1][1]) == "starlette.config.Config":
        return url_scheme(index, kwargs.get("default"), depth + 1)  # config("DATABASE_URL", default=...)
    if name in _URL_BUILDERS:
        driver = kwargs.get("drivername") or (args[0] if args else None)
        if driver and driver[0] == "lit":
            return _scheme_of_text(driver[1], drivername=True)
        return None
    if name in _URL_PARSERS:
        return url_scheme(index, args[0] if args else None, depth + 1)
    if index is not None and callee and callee[0] == "ref":
        hit = index.function(canonical(callee[1]))
        if hit is not None and hit[1].returns:
            schemes = {url_scheme(index, r, depth + 1) for r in hit[1].returns}
            if len(schemes) == 1:
                return schemes.pop()
    return None


def has_sync_driver(index, summary: Summary) -> bool:
    """The project-wide test behind the requirement: the URL resolves to a synchronous driver."""
    return sync_driver(url_scheme(index, summary)) is not None


class SyncDriverUrlInAsyncEngine(Rule):
    """
    `create_async_engine()` given a URL whose driver is synchronous (`postgresql://`, `+psycopg2`,
    `mysql://`, `+pymysql`, `sqlite://`, ...).

    ## What it does
    Finds `create_async_engine(url)` calls where the URL, followed through module constants,
    settings classes (`settings.DATABASE_URL` with `DATABASE_URL: str = "postgresql://..."`),
    `os.getenv("X", "default")` / `os.environ.get` defaults, `URL.create(drivername=...)` and
    small helpers that return a URL, in this module or another one, names a synchronous DBAPI:
    the default driver of `postgresql://` (psycopg2), `mysql://` and `mariadb://` (mysqlclient),
    `sqlite://` (pysqlite), or an explicit `+psycopg2`, `+pg8000`, `+pymysql`, `+mysqldb`,
    `+mysqlconnector`, `+pysqlite`.

    ## Why is this bad?
    SQLAlchemy refuses it when the engine is created: `sqlalchemy.exc.InvalidRequestError: The
    asyncio extension requires an async driver to be used. The loaded 'psycopg2' is not async.`
    (or `No module named 'psycopg2'` when that driver is not even installed). When the URL is a
    settings default, the service starts fine wherever the environment overrides it (production)
    and fails wherever it does not: tests, a new developer's machine, a worker that reads another
    `.env`. And whichever instrumentation is set up never sees a query. `postgresql+psycopg://`
    (psycopg 3) is async-capable and is not reported.

    ## Example
    ```python
    class Settings(BaseSettings):
        DATABASE_URL: str = "postgresql://app@localhost/app"

    engine = create_async_engine(Settings().DATABASE_URL)
    ```

    ## Use instead
    ```python
    class Settings(BaseSettings):
        DATABASE_URL: str = "postgresql+asyncpg://app@localhost/app"

    engine = create_async_engine(Settings().DATABASE_URL)
    ```

    ## Fix safety
    The fix swaps the scheme in the literal for the matching async driver (`postgresql+asyncpg`,
    `mysql+aiomysql`, `mariadb+aiomysql`, `sqlite+aiosqlite`), only when that literal is in the
    file being fixed. It is unsafe: the async driver must be installed, and query parameters are
    driver-specific (psycopg2's `sslmode=` or `options=` are not asyncpg's `ssl=` or
    `server_settings`), as are `connect_args`.

    ## Known problems
    A URL read from the environment without a literal default, built by string operations other
    than a leading literal (`url.replace("postgresql://", "postgresql+asyncpg://")` is rightly
    left alone), or kept on an instance attribute is not followed. `str(x)` is looked through only
    when it wraps the argument directly. MSSQL and Oracle URLs are not checked.

    ## References
    - https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html#synopsis-core
    - https://docs.sqlalchemy.org/en/20/dialects/postgresql.html#module-sqlalchemy.dialects.postgresql.psycopg
    - tests/rules/test_osd402_live.py (the exact errors, per driver)
    """

    CODE = "OSD402"
    NAME = "sync-driver-url-in-async-engine"
    FAMILY = "asyncio"
    SEVERITY = Severity.ERROR
    MESSAGE = (
        "create_async_engine() given a URL with a synchronous driver: SQLAlchemy raises InvalidRequestError "
        "('The asyncio extension requires an async driver to be used') when the engine is created"
    )
    HINT = "use the async driver in the URL: postgresql+asyncpg://, mysql+aiomysql://, sqlite+aiosqlite://"
    # The URL words also get settings modules (which never mention SQLAlchemy) into the index.
    PREFILTER = (b"create_async_engine", b"postgresql", b"mysql", b"mariadb", b"sqlite")
    FIX = "unsafe"

    def visit_Call(self, node: cst.Call) -> None:
        if self.ctx.qualname(node.func) != CREATE_ASYNC_ENGINE:
            return
        url_arg = keyword(node, "url")
        if url_arg is None:
            url_arg = next((a for a in node.args if a.keyword is None and not a.star), None)
        if url_arg is None:
            return
        url_node = _unwrap_str(self.ctx, url_arg.value)
        summary = self.ctx.summarize(url_node)
        local = url_scheme(None, summary)
        requires = ()
        if local is None:
            requires = (check(summary, f"{__name__}:has_sync_driver"),)
        elif sync_driver(local) is None:
            return
        replacement, target = None, None
        found = _literal_node(self.ctx, url_node)
        if found is not None:
            target, is_drivername = found
            replacement = _swapped(target, is_drivername)
        self.report(
            node,
            requires=requires,
            replacement=replacement,
            replaces=target if replacement is not None else None,
            fix_description="Use the matching async driver in the URL",
        )

    VALID = [
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine("postgresql+asyncpg://app@db/app")
            psycopg3 = create_async_engine("postgresql+psycopg://app@db/app")
            lite = create_async_engine("sqlite+aiosqlite:///app.db")
            maria = create_async_engine("mysql+aiomysql://root@db/app")
            """,
            note="async drivers, including psycopg 3",
        ),
        Valid(
            """
            import os
            from sqlalchemy import create_engine
            from sqlalchemy.ext.asyncio import create_async_engine

            SYNC_URL = os.getenv("DATABASE_URL", "postgresql://app@db/app")
            sync_engine = create_engine(SYNC_URL)
            async_engine = create_async_engine(SYNC_URL.replace("postgresql://", "postgresql+asyncpg://"))
            """,
            note="the common rewrite of one settings URL for the async engine",
        ),
        Valid(
            """
            import os
            from sqlalchemy.ext.asyncio import create_async_engine

            DATABASE_URL = os.getenv("DATABASE_URL", "sqlite:///./app.db")
            if DATABASE_URL.startswith("sqlite://"):
                DATABASE_URL = DATABASE_URL.replace("sqlite://", "sqlite+aiosqlite://", 1)
            engine = create_async_engine(DATABASE_URL)
            """,
            note="a default rewritten before use",
        ),
        Valid(
            """
            import os
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine(os.environ["DATABASE_URL"])
            """,
            note="no literal to judge",
        ),
        Valid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine

            def create_engine_for(url: str):
                return create_async_engine(url, pool_pre_ping=True)

            engine = create_engine_for("sqlite+aiosqlite://")
            """,
            note="a parameter is not followed into callers",
        ),
        Valid(
            """
            from myproject.db import create_async_engine

            engine = create_async_engine("postgresql://app@db/app")
            """,
            note="someone else's create_async_engine",
        ),
    ]
    INVALID = [
        Invalid(
            """
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine("postgresql://app@db/app", echo=True)  # ERROR
            """,
            expected_fix="""
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine("postgresql+asyncpg://app@db/app", echo=True)  # ERROR
            """,
            unsafe_fixes=True,
        ),
        Invalid(
            """
            import os
            import sqlalchemy.ext.asyncio as sa_async

            DATABASE_URL = os.getenv("DATABASE_URL", "sqlite:///./app.db")
            engine = sa_async.create_async_engine(DATABASE_URL)  # ERROR
            """,
            expected_fix="""
            import os
            import sqlalchemy.ext.asyncio as sa_async

            DATABASE_URL = os.getenv("DATABASE_URL", "sqlite+aiosqlite:///./app.db")
            engine = sa_async.create_async_engine(DATABASE_URL)  # ERROR
            """,
            unsafe_fixes=True,
            note="aliased module, environment default in a constant: the fix edits the constant",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/config.py": """
                    from pydantic_settings import BaseSettings

                    class Settings(BaseSettings):
                        DATABASE_URL: str = "mysql+pymysql://root@localhost/app"
                        POOL_SIZE: int = 5

                    settings = Settings()
                """,
                "app/db.py": """
                    from sqlalchemy.ext.asyncio import create_async_engine as make_engine
                    from app.config import settings

                    engine = make_engine(str(settings.DATABASE_URL), pool_size=settings.POOL_SIZE)  # ERROR
                """,
            },
            note="across modules: a settings class default, aliased import, str()",
        ),
        Invalid(
            """
            from functools import lru_cache
            from sqlalchemy.ext.asyncio import create_async_engine

            class Settings:
                database_url: str = f"mysql://root@localhost/{'app'}"

            @lru_cache
            def get_settings() -> Settings:
                return Settings()

            engine = create_async_engine(url=get_settings().database_url)  # ERROR
            """,
            expected_fix="""
            from functools import lru_cache
            from sqlalchemy.ext.asyncio import create_async_engine

            class Settings:
                database_url: str = f"mysql+aiomysql://root@localhost/{'app'}"

            @lru_cache
            def get_settings() -> Settings:
                return Settings()

            engine = create_async_engine(url=get_settings().database_url)  # ERROR
            """,
            unsafe_fixes=True,
            note="a cached settings getter in the same module, an f-string",
        ),
        Invalid(
            """
            from sqlalchemy import URL
            from sqlalchemy.ext.asyncio import create_async_engine

            async def init_db(password: str):
                url = URL.create("postgresql+psycopg2", username="app", password=password, host="db")
                return create_async_engine(url)  # ERROR
            """,
            expected_fix="""
            from sqlalchemy import URL
            from sqlalchemy.ext.asyncio import create_async_engine

            async def init_db(password: str):
                url = URL.create("postgresql+asyncpg", username="app", password=password, host="db")
                return create_async_engine(url)  # ERROR
            """,
            unsafe_fixes=True,
            note="URL.create with a sync drivername",
        ),
        Invalid(
            {
                "service/__init__.py": "",
                "service/settings.py": """
                    import os

                    DATABASE_URL = os.environ.get("DATABASE_URL") or "postgresql+psycopg2://app@localhost/app"
                """,
                "service/database.py": """
                    from sqlalchemy.ext import asyncio as sa_asyncio
                    from service import settings

                    engine = sa_asyncio.create_async_engine(  # ERROR
                        settings.DATABASE_URL,
                        pool_pre_ping=True,
                    )
                """,
            },
            note="a module constant of another module with an `or` fallback",
        ),
    ]


def _unwrap_str(ctx, node: cst.BaseExpression) -> cst.BaseExpression:
    """`str(settings.DATABASE_URL)` -> `settings.DATABASE_URL` (pydantic DSN types)."""
    while (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Name)
        and node.func.value == "str"
        and ctx.lookup("str") is None
        and len(node.args) == 1
        and node.args[0].keyword is None
        and not node.args[0].star
    ):
        node = node.args[0].value
    return node


def _binding_value(ctx, name: str) -> Optional[cst.BaseExpression]:
    """The one value a name is bound to in the innermost scope that binds it (else None)."""
    index = len(ctx.scopes) - 1
    while index >= 0:
        scope = ctx.scopes[index]
        if scope.kind == "class" and index != len(ctx.scopes) - 1:
            index -= 1
            continue
        if name in scope.global_names:
            scope = ctx.module_scope
        if name in scope.bindings:
            values = [
                p
                for kind, p in scope.bindings[name]
                if kind == "value" and not (isinstance(p, cst.Name) and p.value == "None")
            ]
            if len(values) == 1 and all(kind == "value" for kind, _ in scope.bindings[name]):
                return values[0]
            return None
        index -= 1
    return None


def _class_attribute(ctx, class_qualname: str, attribute: str) -> Optional[cst.BaseExpression]:
    prefix = f"{ctx.module}."
    if not class_qualname.startswith(prefix) or "." in class_qualname[len(prefix):]:
        return None
    class_name = class_qualname[len(prefix):]
    for stmt in ctx.module_node.body:
        if isinstance(stmt, cst.ClassDef) and stmt.name.value == class_name:
            body = stmt.body.body if isinstance(stmt.body, cst.IndentedBlock) else ()
            for line in body:
                for small in getattr(line, "body", ()) if isinstance(line, cst.SimpleStatementLine) else ():
                    if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                        if small.target.value == attribute and small.value is not None:
                            return small.value
                    elif isinstance(small, cst.Assign) and len(small.targets) == 1:
                        target = small.targets[0].target
                        if isinstance(target, cst.Name) and target.value == attribute:
                            return small.value
    return None


def _literal_node(ctx, node: cst.BaseExpression, depth: int = 0) -> Optional[tuple[cst.BaseExpression, bool]]:
    """The string literal of this file that gives the URL its scheme, and whether it is a bare drivername."""
    if depth > _MAX_DEPTH:
        return None
    node = _unwrap_str(ctx, node)
    if isinstance(node, cst.SimpleString):
        return (node, False) if sync_driver(_scheme_of_text(node.evaluated_value)) else None
    if isinstance(node, cst.FormattedString):
        first = node.parts[0] if node.parts else None
        if isinstance(first, cst.FormattedStringText) and sync_driver(_scheme_of_text(first.value)):
            return node, False
        return None
    if isinstance(node, cst.Name):
        value = _binding_value(ctx, node.value)
        return _literal_node(ctx, value, depth + 1) if value is not None else None
    if isinstance(node, cst.BooleanOperation) and isinstance(node.operator, cst.Or):
        return _literal_node(ctx, node.left, depth + 1) or _literal_node(ctx, node.right, depth + 1)
    if isinstance(node, cst.BinaryOperation):
        return _literal_node(ctx, node.left, depth + 1)
    if isinstance(node, cst.Attribute):
        base = ctx.summarize(node.value)
        if base and base[0] == "call":
            base = base[1]
        if base and base[0] == "ref":
            value = _class_attribute(ctx, base[1], node.attr.value)
            if value is not None:
                return _literal_node(ctx, value, depth + 1)
        return _literal_node_through_getter(ctx, node, depth)
    if isinstance(node, cst.Call):
        if isinstance(node.func, cst.Attribute) and node.func.attr.value == "format":
            return _literal_node(ctx, node.func.value, depth + 1)
        name = ctx.qualname(node.func) or ""
        if name in _ENV_GETTERS or name.endswith(".Field"):
            default = keyword(node, "default")
            if default is None:
                positional = [a for a in node.args if a.keyword is None and not a.star]
                position = 0 if name.endswith(".Field") else 1
                default = positional[position] if len(positional) > position else None
            return _literal_node(ctx, default.value, depth + 1) if default is not None else None
        if name in _URL_BUILDERS:
            driver = keyword(node, "drivername")
            if driver is None:
                driver = next((a for a in node.args if a.keyword is None and not a.star), None)
            if driver is not None and isinstance(driver.value, cst.SimpleString):
                if sync_driver(_scheme_of_text(driver.value.evaluated_value, drivername=True)):
                    return driver.value, True
            return None
        if name in _URL_PARSERS and node.args:
            return _literal_node(ctx, node.args[0].value, depth + 1)
    return None


def _literal_node_through_getter(ctx, node: cst.Attribute, depth: int) -> Optional[tuple[cst.BaseExpression, bool]]:
    """`get_settings().DATABASE_URL` where `get_settings` of this module returns `Settings()`."""
    if not isinstance(node.value, cst.Call):
        return None
    name = ctx.qualname(node.value.func) or ""
    prefix = f"{ctx.module}."
    if not name.startswith(prefix):
        return None
    for stmt in ctx.module_node.body:
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == name[len(prefix):]:
            returned = [
                small.value
                for line in (stmt.body.body if isinstance(stmt.body, cst.IndentedBlock) else ())
                if isinstance(line, cst.SimpleStatementLine)
                for small in line.body
                if isinstance(small, cst.Return) and small.value is not None
            ]
            if len(returned) == 1 and isinstance(returned[0], cst.Call):
                cls = ctx.qualname(returned[0].func) or ""
                value = _class_attribute(ctx, cls, node.attr.value)
                if value is not None:
                    return _literal_node(ctx, value, depth + 1)
    return None


def _swapped(node: cst.BaseExpression, is_drivername: bool) -> Optional[cst.BaseExpression]:
    """The literal with its sync scheme replaced by the matching async one."""
    if isinstance(node, cst.SimpleString):
        text = node.evaluated_value
        scheme = _scheme_of_text(text, drivername=is_drivername)
        found = sync_driver(scheme)
        if found is None:
            return None
        old = scheme if is_drivername else f"{scheme}://"
        new = found[1] if is_drivername else f"{found[1]}://"
        if old not in node.value:
            return None
        return node.with_changes(value=node.value.replace(old, new, 1))
    if isinstance(node, cst.FormattedString):
        first = node.parts[0]
        scheme = _scheme_of_text(first.value)
        found = sync_driver(scheme)
        if found is None or not first.value.startswith(f"{scheme}://"):
            return None
        parts = (first.with_changes(value=f"{found[1]}://" + first.value[len(scheme) + 3 :]), *node.parts[1:])
        return node.with_changes(parts=parts)
    return None
