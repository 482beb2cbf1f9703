"""Issue 15, "Real start-up shapes": `doctor probe` starts an application the way it starts in
production (`--app` and its factory, a setup that takes the app, an import-only or file-path
setup, the ASGI lifespan) and resolves the engine only afterwards.

Every test runs the real CLI in a fresh process against real servers (PostgreSQL, MariaDB) or
in-memory SQLite, with the real OpenTelemetry SDK and Starlette, and asserts what a user sees:
the exit code, the report (text or JSON), or the one line on stderr.
"""

from __future__ import annotations

import shutil
import textwrap
import time
from pathlib import Path

import pytest

from probe_helpers import PROBE_APPS, Run, clean_env, doctor

pytestmark = pytest.mark.live

LIFESPAN_FACTORY = PROBE_APPS / "lifespan_factory_app"
SETUP_WITH_APP = PROBE_APPS / "setup_with_app"
IMPORT_TIME = PROBE_APPS / "import_time_app"

# The three shapes of issue 15, each probed with one command and no wrapper module.
SHAPES = {
    # (1) factory + an engine created and instrumented in the lifespan (`engine = None` at import);
    #     run from the project (src/ layout, no --app-dir).
    "lifespan-factory": (["--app", "inventory.main:create_app"], LIFESPAN_FACTORY, "inventory.db:engine"),
    # (2) a tracing setup that takes the app.
    "setup-takes-app": (
        ["--app", "shop.main:app", "--setup", "shop.telemetry:setup_telemetry", "--app-dir", str(SETUP_WITH_APP)],
        None,
        "app.state.engine",
    ),
    # (3) import-time wiring: importing app.main sets the provider and instruments the engine.
    "import-time": (["--app", "app.main:app", "--app-dir", str(IMPORT_TIME)], None, "app.db:engine"),
}


def _timed(*args: str, env: dict | None = None, cwd: Path | None = None) -> tuple[Run, float]:
    started = time.monotonic()
    run = doctor(*args, env=env, cwd=cwd)
    return run, time.monotonic() - started


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return root


def assert_one_line_error(run: Run, *fragments: str) -> str:
    lines = run.stderr.strip().splitlines()
    assert run.exit_code == 2, (run.exit_code, run.stdout[-2000:], run.stderr[-3000:])
    assert run.stdout == ""
    assert len(lines) == 1, run.stderr[-3000:]
    assert lines[0].startswith("doctor: error: "), lines[0]
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _modules(run: Run) -> dict[str, dict]:
    return {module["role"]: module for module in run.json()["startup"]["modules"]}


# --- the three shapes, one command each, on PostgreSQL and MariaDB ---------------------------------


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_shape_probes_with_one_command_on_postgres(shape, pg_dsn):
    args, cwd, engine = SHAPES[shape]
    run = doctor(*args, "--format", "json", env=clean_env(DATABASE_URL=pg_dsn), cwd=cwd)

    assert run.exit_code == 0, run.stderr[-3000:]
    report = run.json()
    assert report["target"] == engine
    statuses = run.statuses()
    assert statuses["OSD501"] == statuses["OSD503"] == statuses["OSD504"] == statuses["OSD507"] == "pass", statuses
    assert "PostgreSQL" in run.check("OSD501")["detail"] and "asyncpg" in run.check("OSD501")["detail"]
    assert statuses["OSD506"] == "warn" and "current_query()" in run.check("OSD506")["detail"]  # the app's commenter reached the server
    assert statuses["OSD508"] == "warn"  # ... and costs asyncpg's statement cache
    assert report["startup"]["lifespan"].startswith("startup complete in ")
    assert report["startup"]["lifespan"].endswith("; shutdown complete")
    assert _modules(run)["engine"]["reference"] == engine
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_shape_probes_with_one_command_on_mariadb(shape, mysql_dsn):
    args, cwd, engine = SHAPES[shape]
    # The import-time app goes through asyncmy, the others through aiomysql: both are real choices.
    dsn = mysql_dsn.replace("+aiomysql", "+asyncmy") if shape == "import-time" else mysql_dsn
    run = doctor(*args, "--format", "json", env=clean_env(DATABASE_URL=dsn), cwd=cwd)

    assert run.exit_code == 0, run.stderr[-3000:]
    assert run.json()["target"] == engine
    statuses = run.statuses()
    assert statuses["OSD501"] == statuses["OSD503"] == statuses["OSD504"] == statuses["OSD506"] == statuses["OSD507"] == "pass", statuses
    assert "MariaDB" in run.check("OSD501")["detail"]
    assert ("asyncmy" if shape == "import-time" else "aiomysql") in run.check("OSD501")["detail"]
    assert "information_schema.processlist" in run.check("OSD506")["detail"]


def test_the_text_report_says_how_the_app_was_started_and_where_each_module_came_from(pg_dsn):
    run = doctor("--app", "inventory.main:create_app", env=clean_env(DATABASE_URL=pg_dsn), cwd=LIFESPAN_FACTORY)

    assert run.exit_code == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[0] == "doctor probe inventory.db:engine"
    src = LIFESPAN_FACTORY / "src" / "inventory"
    assert f"app: inventory.main:create_app (made by create_app()) from {src / 'main.py'}" in lines
    engine_line = next(line for line in lines if line.startswith("engine: "))
    assert engine_line == (
        "engine: inventory.db:engine (found in the app after start-up: the only AsyncEngine it holds; also "
        f"inventory.db:SessionLocal) from {src / 'db.py'}"
    )
    lifespan_line = next(line for line in lines if line.startswith("lifespan: "))
    assert lines.index(lifespan_line) < lines.index(engine_line)  # in start-up order
    assert lifespan_line.endswith("; shutdown complete")


def test_the_engine_as_a_path_into_the_started_app():
    run = doctor(
        "--app", "shop.main:app", "--setup", "shop.telemetry:setup_telemetry", "--engine", "app.state.engine",
        "--app-dir", str(SETUP_WITH_APP), "--format", "json",
    )

    assert run.exit_code == 0, run.stderr[-3000:]
    assert run.json()["target"] == "app.state.engine"
    assert _modules(run)["engine"]["how"] == "after start-up"
    assert _modules(run)["setup"]["how"] == "setup_telemetry(app) called with the --app object"
    assert run.check("OSD503")["status"] == "pass"


def test_a_path_into_the_app_that_does_not_exist_names_what_is_there():
    run = doctor(
        "--app", "shop.main:app", "--setup", "shop.telemetry:setup_telemetry", "--engine", "app.state.db",
        "--app-dir", str(SETUP_WITH_APP),
    )

    assert_one_line_error(run, "--engine app.state.db: app.state has no 'db' after start-up (it has: engine, service_name, tracer_provider)")


# --- the lifespan ---------------------------------------------------------------------------------


def test_a_lifespan_startup_failure_is_one_line_with_the_users_frame():
    env = clean_env()
    env.pop("DATABASE_URL", None)
    run = doctor("--app", "inventory.main:create_app", env=env, cwd=LIFESPAN_FACTORY)

    assert_one_line_error(
        run,
        "--app inventory.main:create_app: the app's lifespan startup failed: KeyError: 'DATABASE_URL' "
        "(src/inventory/db.py:15 in init_engine)",
    )


def test_a_lifespan_that_hangs_is_bounded_by_the_timeout(tmp_path):
    _write(tmp_path, {"svc.py": """\
        import asyncio
        from contextlib import asynccontextmanager

        from starlette.applications import Starlette


        @asynccontextmanager
        async def lifespan(app):
            await asyncio.Event().wait()  # waits for a service that never comes up
            yield


        app = Starlette(lifespan=lifespan)
        """})
    run, elapsed = _timed("--app", "svc:app", "--timeout", "2", "--app-dir", str(tmp_path))

    line = assert_one_line_error(run, "--app svc:app: running its lifespan startup did not finish within --timeout 2s")
    assert "(it was at svc.py:9 in lifespan, awaiting)" in line
    assert elapsed < 2 + 6, elapsed  # no probe run outlasts --timeout by more than a few seconds


def test_a_lifespan_shutdown_that_hangs_does_not_cost_the_report(tmp_path):
    _write(tmp_path, {"svc.py": """\
        import asyncio
        from contextlib import asynccontextmanager

        from opentelemetry import trace
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from sqlalchemy.ext.asyncio import create_async_engine
        from starlette.applications import Starlette


        @asynccontextmanager
        async def lifespan(app):
            trace.set_tracer_provider(TracerProvider())
            app.state.engine = create_async_engine("sqlite+aiosqlite://")
            SQLAlchemyInstrumentor().instrument(engine=app.state.engine.sync_engine)
            yield
            await asyncio.Event().wait()  # a shutdown hook that never returns


        app = Starlette(lifespan=lifespan)
        """})
    run, elapsed = _timed("--app", "svc:app", "--timeout", "2", "--app-dir", str(tmp_path), "--format", "json")

    assert run.exit_code == 0, run.stderr[-3000:]
    startup = run.json()["startup"]
    assert startup["lifespan"].endswith("; shutdown did not finish within --timeout 2s; it was abandoned")
    assert startup["warnings"] == ["the app's lifespan shutdown did not finish within --timeout 2s; it was abandoned"]
    assert elapsed < 2 + 8, elapsed


def test_a_lifespan_shutdown_that_blocks_the_thread_is_stopped_too(tmp_path):
    _write(tmp_path, {"svc.py": """\
        import time
        from contextlib import asynccontextmanager

        from sqlalchemy.ext.asyncio import create_async_engine
        from starlette.applications import Starlette


        @asynccontextmanager
        async def lifespan(app):
            app.state.engine = create_async_engine("sqlite+aiosqlite://")
            yield
            time.sleep(3600)  # a synchronous flush to a service that never answers


        app = Starlette(lifespan=lifespan)
        """})
    run, elapsed = _timed("--app", "svc:app", "--timeout", "2", "--app-dir", str(tmp_path))

    assert_one_line_error(
        run, "--app svc:app: running its lifespan shutdown did not finish within --timeout 2s (it was at svc.py:12 in lifespan)",
    )
    assert elapsed < 2 + 8, elapsed


def test_an_app_without_lifespan_support_is_probed_all_the_same(tmp_path):
    # A bare ASGI function that only serves HTTP: as uvicorn's `--lifespan auto`, not an error.
    _write(tmp_path, {"bare.py": """\
        from opentelemetry import trace
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from sqlalchemy.ext.asyncio import create_async_engine

        trace.set_tracer_provider(TracerProvider())
        engine = create_async_engine("sqlite+aiosqlite://")
        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)


        async def app(scope, receive, send):
            assert scope["type"] == "http"
        """})
    run = doctor("--app", "bare:app", "--app-dir", str(tmp_path), "--format", "json")

    assert run.exit_code == 0, run.stderr[-3000:]
    assert run.json()["startup"]["lifespan"].startswith(
        "the app does not support the ASGI lifespan protocol (it raised AssertionError (bare.py:12 in app)); nothing was started"
    )
    assert run.check("OSD503")["status"] == "pass"


# --- which engine ---------------------------------------------------------------------------------


def test_an_engine_that_is_none_at_import_says_so_and_suggests_app():
    run = doctor("--engine", "inventory.db:engine", cwd=LIFESPAN_FACTORY)

    assert_one_line_error(
        run, "--engine inventory.db:engine is None after the setup ran", "it is None at import",
        "pass --app module:app so that the probe starts the app (and runs its lifespan) first",
    )


def test_without_the_lifespan_the_lazy_engine_is_still_none_and_the_message_says_why():
    run = doctor("--app", "inventory.main:create_app", "--no-lifespan", cwd=LIFESPAN_FACTORY)

    assert_one_line_error(
        run, "--app inventory.main:create_app: no AsyncEngine found in the app; inventory.db:engine is None at import, "
        "and the lifespan was not run (--no-lifespan)",
    )


def test_several_engines_are_one_line_listing_the_candidates(tmp_path, pg_dsn):
    _write(tmp_path, {"two.py": f"""\
        from sqlalchemy.ext.asyncio import create_async_engine
        from starlette.applications import Starlette

        primary = create_async_engine({pg_dsn!r})
        replica = create_async_engine("sqlite+aiosqlite://")
        app = Starlette()
        app.state.engine = primary
        """})
    run = doctor("--app", "two:app", "--app-dir", str(tmp_path))

    assert_one_line_error(
        run, "--app two:app holds 2 AsyncEngines after start-up: app.state.engine (postgresql+asyncpg://postgres@127.0.0.1",
        "two:replica (sqlite+aiosqlite://)", "choose one with --engine NAME",
    )


def test_an_async_factory_is_awaited_and_an_engine_in_the_lifespan_state_is_found(tmp_path):
    _write(tmp_path, {"svc.py": """\
        from contextlib import asynccontextmanager

        from opentelemetry import trace
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
        from starlette.applications import Starlette


        @asynccontextmanager
        async def lifespan(app):
            engine = create_async_engine("sqlite+aiosqlite://")
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
            yield {"sessions": async_sessionmaker(engine)}  # FastAPI/Starlette lifespan state
            await engine.dispose()


        async def make_app():
            trace.set_tracer_provider(TracerProvider())
            return Starlette(lifespan=lifespan)
        """})
    run = doctor("--app", "svc:make_app", "--app-dir", str(tmp_path), "--format", "json")

    assert run.exit_code == 0, run.stderr[-3000:]
    assert run.json()["target"] == "state.sessions"
    assert _modules(run)["app"]["how"] == "made by make_app()"
    assert run.check("OSD503")["status"] == "pass"


# --- the setup's forms ----------------------------------------------------------------------------

TRACING = """\
from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine("sqlite+aiosqlite://")
"""


def test_an_import_only_setup_module(tmp_path):
    _write(tmp_path, {
        "svc/__init__.py": "",
        "svc/db.py": TRACING,
        "svc/telemetry.py": "from opentelemetry import trace\nfrom opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor\nfrom svc.db import engine\n\n"
        "trace.set_tracer_provider(TracerProvider())\nSQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)\n",
    })
    run = doctor("--engine", "svc.db:engine", "--setup", "svc.telemetry", "--app-dir", str(tmp_path), "--format", "json")

    assert run.exit_code == 0, run.stderr[-3000:]
    setup = _modules(run)["setup"]
    assert setup["how"] == "imported only" and setup["file"] == str(tmp_path / "svc" / "telemetry.py")
    assert run.check("OSD503")["status"] == "pass"


@pytest.mark.parametrize("form", ["file-with-callable", "file-import-only"])
def test_a_setup_given_as_a_file_path(tmp_path, form):
    tracing = (
        "from opentelemetry import trace\nfrom opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor\n"
    )
    if form == "file-with-callable":
        tracing += "\n\ndef configure():\n    from db import engine\n    trace.set_tracer_provider(TracerProvider())\n" \
                   "    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)\n"
        setup = "ops/tracing.py:configure"
    else:
        tracing += "from db import engine\n\ntrace.set_tracer_provider(TracerProvider())\n" \
                   "SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)\n"
        setup = "ops/tracing.py"
    _write(tmp_path, {"db.py": TRACING, "ops/tracing.py": tracing})  # ops/ is not a package
    run = doctor("--engine", "db:engine", "--setup", setup, "--app-dir", str(tmp_path), "--format", "json", cwd=tmp_path)

    assert run.exit_code == 0, run.stderr[-3000:]
    entry = _modules(run)["setup"]
    assert entry["file"] == str(tmp_path / "ops" / "tracing.py")
    assert entry["how"] == ("configure() called" if form == "file-with-callable" else "imported only")
    assert run.check("OSD503")["status"] == "pass"


def test_a_setup_file_that_does_not_exist_is_a_usage_error(tmp_path):
    run = doctor("--engine", "db:engine", "--setup", "ops/nope.py:configure", "--app-dir", str(tmp_path), cwd=tmp_path)

    assert_one_line_error(run, "--setup ops/nope.py:configure: no such file ops/nope.py")


def test_a_setup_that_takes_the_app_needs_app(tmp_path):
    run = doctor("--engine", "shop.db:engine", "--setup", "shop.telemetry:setup_telemetry", "--app-dir", str(SETUP_WITH_APP))

    assert_one_line_error(run, "--setup shop.telemetry:setup_telemetry takes the app (app); give --app module:app too")


def test_a_sync_setup_runs_where_no_event_loop_is_running(tmp_path):
    # Issue 15: the app's helper looks for a running loop and, finding one, hands the work to it
    # and waits; run inside the probe's loop (where the app's lifespan task lives) it hung forever.
    _write(tmp_path, {"svc.py": TRACING + textwrap.dedent("""\
        import asyncio
        import pathlib
        import threading

        from starlette.applications import Starlette

        app = Starlette()
        SEEN = pathlib.Path(__file__).with_name("seen.txt")


        async def _instrument():
            trace.set_tracer_provider(TracerProvider())
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)


        def setup_telemetry(app):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                SEEN.write_text("no running loop")
                asyncio.run(_instrument())
                return
            SEEN.write_text("a running loop: the background-thread path")
            done = threading.Event()
            loop.call_soon_threadsafe(lambda: done.set())
            done.wait()  # never set while this very thread runs the loop
        """)})
    run, elapsed = _timed("--app", "svc:app", "--setup", "svc:setup_telemetry", "--timeout", "3", "--app-dir", str(tmp_path), "--format", "json")

    assert run.exit_code == 0, run.stderr[-3000:]
    assert (tmp_path / "seen.txt").read_text() == "no running loop"
    assert run.check("OSD503")["status"] == run.check("OSD504")["status"] == "pass"
    assert elapsed < 20, elapsed


# --- where the modules come from ------------------------------------------------------------------


def _src_project(root: Path) -> Path:
    project = root / "proj"
    (project / "src").mkdir(parents=True)
    shutil.copytree(SETUP_WITH_APP / "shop", project / "src" / "shop")
    (project / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "0"\n')
    return project


def test_a_src_layout_is_put_on_the_path_without_app_dir(tmp_path):
    project = _src_project(tmp_path)
    run = doctor("--app", "shop.main:app", "--setup", "shop.telemetry:setup_telemetry", "--format", "json", cwd=project)

    assert run.exit_code == 0, run.stderr[-3000:]
    assert _modules(run)["app"]["file"] == str(project / "src" / "shop" / "main.py")
    assert run.json()["startup"]["warnings"] == []


def test_a_site_packages_copy_of_the_project_is_named_and_warned_about(tmp_path):
    # `pip install .` put a copy of the project in site-packages; --app-dir names the project root
    # (not its src/), so `shop` is imported from the installed copy.
    project = _src_project(tmp_path)
    site = tmp_path / "venv" / "lib" / "python3" / "site-packages"
    shutil.copytree(SETUP_WITH_APP / "shop", site / "shop")
    env = clean_env(PYTHONPATH=str(site))
    run = doctor(
        "--app", "shop.main:app", "--setup", "shop.telemetry:setup_telemetry", "--app-dir", str(project), "--format", "json",
        env=env, cwd=project,
    )

    assert run.exit_code == 0, run.stderr[-3000:]
    assert _modules(run)["app"]["file"] == str(site / "shop" / "main.py")
    warnings = run.json()["startup"]["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith(  # one per package, though app, setup and engine come from it
        f"app module shop.main was imported from {site / 'shop' / 'main.py'}, an installed copy in site-packages, "
        f"but the working tree has {project / 'src' / 'shop'}: the probe checked the installed copy; pass --app-dir {project / 'src'}"
    )
    text = doctor("--app", "shop.main:app", "--setup", "shop.telemetry:setup_telemetry", "--app-dir", str(project), env=env, cwd=project)
    assert any(line.startswith("warning: app module shop.main was imported from ") for line in text.stdout.splitlines())


def test_several_app_dirs_go_on_the_path(tmp_path):
    _write(tmp_path / "libs", {"common_db.py": TRACING + "\ntrace.set_tracer_provider(TracerProvider())\n"
                               "SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)\n"})
    _write(tmp_path / "service", {"api.py": "from starlette.applications import Starlette\nimport common_db\n\napp = Starlette()\n"})
    run = doctor("--app", "api:app", "--app-dir", str(tmp_path / "service"), "--app-dir", str(tmp_path / "libs"), "--format", "json")

    assert run.exit_code == 0, run.stderr[-3000:]
    assert run.json()["target"] == "common_db:engine"
    assert _modules(run)["engine"]["file"] == str(tmp_path / "libs" / "common_db.py")


# --- usage errors before anything starts ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lifespan", "--engine", "db:engine"], "--lifespan needs --app"),
        (["--engine", "app.state.engine"], "--engine app.state.engine is a path into the app; give --app module:app too"),
        (["--setup", "otel:setup"], "--setup only applies together with --engine or --app"),
        (["sqlite+aiosqlite://", "--app", "svc:app"], "give either a DSN or --app, not both"),
        (["--app", "svc"], "--app 'svc' must look like package.module:attribute"),
    ],
)
def test_startup_usage_errors_are_one_line(args, message):
    run = doctor(*args)

    assert_one_line_error(run, message)


def test_an_app_factory_that_raises_is_one_line_with_the_users_frame(tmp_path):
    _write(tmp_path, {"svc.py": "def create_app():\n    raise RuntimeError('SECRET_KEY is not set')\n"})
    run = doctor("--app", "svc:create_app", "--app-dir", str(tmp_path))

    assert_one_line_error(run, "--app svc:create_app: calling create_app() raised RuntimeError: SECRET_KEY is not set (svc.py:2 in create_app)")
