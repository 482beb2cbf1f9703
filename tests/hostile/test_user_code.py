"""Issue 16, "The probe's user code" (and issue 15, "User code is bounded and isolated"): what
`--engine` and `--setup` name is the user's code, and it may raise, exit, spin, wait on an event
loop, block the loop, or linger at exit. The doctor always ends with a report or one clear line
that names the place in the user's code, and never outlasts --timeout by more than a few seconds.

Every test writes a small application into a temporary directory and runs the real CLI
(`python -m otel_sqla_doctor probe --engine ... --setup ... --app-dir ...`) in a fresh process;
the databases are real (in-memory SQLite, and PostgreSQL for OSD508).

Items:
6. An `--engine` factory that raises, an unbound `async_sessionmaker`: one line, exit 2.
7. `sys.exit(0)` in a setup or an engine module never ends the doctor with exit 0 and no report;
   a setup that raises is reported with its type, message and the user's file:line.
8. A setup that spins, sleeps, waits on an event loop or holds the interpreter in native code is
   stopped at --timeout; a sync setup runs where no event loop is running; a blocked event loop
   is stopped; what the app does at exit does not hold the doctor.
10. A check that had nothing to measure is not green (OSD508 with the commenter off).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ENGINE = "from sqlalchemy.ext.asyncio import create_async_engine\nengine = create_async_engine('sqlite+aiosqlite://')\n"
INSTRUMENTED = """\
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine('sqlite+aiosqlite://')


def instrument():
    trace.set_tracer_provider(TracerProvider())
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    env.update(NO_COLOR="1", PYTHONUNBUFFERED="1")
    return env


class Run:
    def __init__(self, proc: subprocess.CompletedProcess, elapsed: float) -> None:
        self.code, self.stdout, self.stderr, self.elapsed = proc.returncode, proc.stdout, proc.stderr, elapsed

    def check(self, code: str) -> dict:
        return next(c for c in json.loads(self.stdout)["checks"] if c["code"] == code)


def probe(app: Path, *args: str, files: dict[str, str], timeout: float = 120) -> Run:
    """Write the application's files into `app`, then `doctor probe ARGS --app-dir app`."""
    for name, source in files.items():
        (app / name).write_text(textwrap.dedent(source))
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "otel_sqla_doctor", "probe", *args, "--app-dir", str(app)],
        cwd=app, env=_env(), capture_output=True, text=True, timeout=timeout,
    )
    return Run(proc, time.monotonic() - started)


def assert_one_line_error(run: Run, *fragments: str) -> str:
    lines = run.stderr.strip().splitlines()
    assert run.code == 2, (run.code, run.stderr[-3000:])
    assert run.stdout == ""
    assert len(lines) == 1, run.stderr[-3000:]
    assert lines[0].startswith("doctor: error: "), lines[0]
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# --- 6. what --engine names ----------------------------------------------------------------------


def test_an_engine_factory_that_raises_is_one_line_with_the_users_frame(tmp_path):
    run = probe(tmp_path, "--engine", "db:get_engine", files={"db.py": """\
        def get_engine():
            raise RuntimeError("DATABASE_URL is not set")
        """})

    assert_one_line_error(run, "--engine db:get_engine: calling it raised RuntimeError: DATABASE_URL is not set (db.py:2 in get_engine)")


def test_an_async_engine_factory_that_raises_is_one_line_too(tmp_path):
    run = probe(tmp_path, "--engine", "db:get_engine", files={"db.py": """\
        async def get_engine():
            raise KeyError("db")
        """})

    assert_one_line_error(run, "calling it raised KeyError: 'db' (db.py:2 in get_engine)")


def test_an_unbound_async_sessionmaker_is_one_line(tmp_path):
    run = probe(tmp_path, "--engine", "db:Session", files={"db.py": ENGINE + "from sqlalchemy.ext.asyncio import async_sessionmaker\nSession = async_sessionmaker()\n"})

    assert_one_line_error(run, "--engine db:Session is an async_sessionmaker bound to no engine", "async_sessionmaker(engine)")


def test_a_bound_async_sessionmaker_is_probed(tmp_path):
    files = {"db.py": INSTRUMENTED + "from sqlalchemy.ext.asyncio import async_sessionmaker\nSession = async_sessionmaker(engine)\n"}
    run = probe(tmp_path, "--engine", "db:Session", "--setup", "db:instrument", "--format", "json", files=files)

    assert run.code == 0, run.stderr
    assert run.check("OSD503")["status"] == "pass"


def test_an_engine_that_is_still_none_says_so(tmp_path):
    run = probe(tmp_path, "--engine", "db:engine", files={"db.py": "engine = None\n"})

    assert_one_line_error(run, "--engine db:engine is None after the setup ran")


# --- 7. sys.exit() and exceptions of the user's code ---------------------------------------------


def test_an_engine_module_that_calls_sys_exit_never_ends_the_doctor_with_exit_0(tmp_path):
    run = probe(tmp_path, "--engine", "db:engine", files={"db.py": ENGINE + "import sys\nsys.exit(0)\n"})

    assert_one_line_error(run, "--engine db:engine: importing db raised SystemExit: sys.exit(0) (db.py:4 in <module>)")


def test_a_setup_that_calls_sys_exit_is_reported_not_obeyed(tmp_path):
    files = {"db.py": ENGINE, "otel.py": "import sys\n\n\ndef setup():\n    sys.exit(0)\n"}
    run = probe(tmp_path, "--engine", "db:engine", "--setup", "otel:setup", "--format", "json", files=files)

    assert run.code == 1, run.stderr
    detail = run.check("OSD503")["detail"]
    assert run.check("OSD503")["status"] == "fail"
    assert "your setup raised SystemExit: sys.exit(0) (otel.py:5 in setup)" in detail


def test_a_setup_that_raises_is_reported_with_its_exception_and_the_users_frame(tmp_path):
    files = {"db.py": ENGINE, "otel.py": """\
        import os


        def setup():
            endpoint = os.environ["COLLECTOR_URL"]
        """}
    run = probe(tmp_path, "--engine", "db:engine", "--setup", "otel:setup", files=files)

    assert run.code == 1, run.stderr
    line = next(line for line in run.stdout.splitlines() if "OSD503" in line)
    assert line.startswith("[✗] OSD503 query-span-emitted: no query span: your setup raised KeyError: 'COLLECTOR_URL' (otel.py:5 in setup)")
    assert "nothing instrumented this engine" not in run.stdout
    assert "Traceback" not in run.stderr


def test_a_setup_that_raises_after_instrumenting_is_not_green(tmp_path):
    files = {"db.py": INSTRUMENTED, "otel.py": "from db import instrument\n\n\ndef setup():\n    instrument()\n    raise ValueError('no metrics exporter')\n"}
    run = probe(tmp_path, "--engine", "db:engine", "--setup", "otel:setup", "--format", "json", files=files)

    assert run.code == 1, run.stderr
    osd503 = run.check("OSD503")
    assert osd503["status"] == "fail"
    assert "your setup raised ValueError: no metrics exporter (otel.py:6 in setup)" in osd503["detail"]


def test_os_exit_in_the_users_code_is_one_line_naming_the_step(tmp_path):
    files = {"db.py": ENGINE, "otel.py": "import os\n\n\ndef setup():\n    os._exit(0)\n"}
    run = probe(tmp_path, "--engine", "db:engine", "--setup", "otel:setup", files=files)

    assert_one_line_error(run, "--setup otel:setup: running setup()", "the process ended (exit code 0) before it finished")


# --- 8. bounded by --timeout ---------------------------------------------------------------------

HANGS = {
    "spins": ("def setup():\n    while True:\n        pass\n", "otel.py:2 in setup"),
    "sleeps": ("import time\n\n\ndef setup():\n    time.sleep(3600)\n", "otel.py:5 in setup"),
    "waits-on-a-loop": (
        "import asyncio\n\n\ndef setup():\n    loop = asyncio.new_event_loop()\n"
        "    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result()  # nobody runs that loop\n",
        "otel.py:6 in setup",
    ),
    "async-spins": ("async def setup():\n    while True:\n        pass\n", "otel.py:2 in setup"),
    "import-hangs": ("import time\ntime.sleep(3600)\n\n\ndef setup():\n    pass\n", "otel.py:2 in <module>"),
}


@pytest.mark.parametrize("kind", sorted(HANGS))
def test_user_code_that_never_finishes_is_stopped_at_the_timeout_with_its_place(tmp_path, kind):
    source, where = HANGS[kind]
    run = probe(tmp_path, "--engine", "db:engine", "--setup", "otel:setup", "--timeout", "2", files={"db.py": ENGINE, "otel.py": source})

    line = assert_one_line_error(run, "--setup otel:setup: ", "did not finish within --timeout 2s", f"(it was at {where})")
    assert "it was stopped" in line
    assert run.elapsed < 2 + 5, run.elapsed  # no probe run outlasts --timeout by more than a few seconds


def test_native_code_that_holds_the_interpreter_is_stopped_too(tmp_path):
    # A catastrophic regular expression never lets the probe's own watchdog thread run: the doctor
    # stops the process itself, a few seconds after the deadline.
    source = "import re\n\n\ndef setup():\n    re.match(r'(a+)+$', 'a' * 64 + 'b')\n"
    run = probe(tmp_path, "--engine", "db:engine", "--setup", "otel:setup", "--timeout", "2", files={"db.py": ENGINE, "otel.py": source})

    assert_one_line_error(run, "--setup otel:setup: running setup() did not finish within --timeout 2s; it was stopped")
    assert run.elapsed < 2 + 8, run.elapsed


def test_a_sync_setup_that_hands_work_to_a_running_loop_runs_where_no_loop_runs(tmp_path):
    # Issue 15: a helper that sees a running event loop schedules on it and waits; inside the
    # probe's own loop that waited forever. The setup now runs as under `python -m app`.
    files = {
        "db.py": INSTRUMENTED,
        "otel.py": """\
            import asyncio

            from db import instrument


            async def _instrument():
                await asyncio.sleep(0)
                instrument()


            def setup():
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # no loop: run it here
                    asyncio.run(_instrument())
                    return
                asyncio.run_coroutine_threadsafe(_instrument(), loop).result()
            """,
    }
    run = probe(tmp_path, "--engine", "db:engine", "--setup", "otel:setup", "--timeout", "3", "--format", "json", files=files, timeout=60)

    assert run.code == 0, run.stderr
    assert run.check("OSD503")["status"] == run.check("OSD504")["status"] == "pass"


def test_an_async_setup_runs_on_the_loop_the_probe_then_uses(tmp_path):
    # A warm-up query in an async setup leaves a pooled connection behind: it must belong to the
    # loop the probe runs on, or the probe's query would fail on it. (A guard: the setup now runs
    # outside the probe's loop, its awaitable on that same loop.)
    database = tmp_path / "app.db"
    files = {
        "db.py": INSTRUMENTED.replace("'sqlite+aiosqlite://'", f"'sqlite+aiosqlite:///{database}', pool_size=1, max_overflow=0"),
        "otel.py": """\
            from sqlalchemy import text

            from db import engine, instrument


            async def setup():
                instrument()
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            """,
    }
    run = probe(tmp_path, "--engine", "db:engine", "--setup", "otel:setup", "--format", "json", files=files)

    assert run.code == 0, run.stderr
    assert run.check("OSD501")["status"] == run.check("OSD503")["status"] == "pass"


def test_an_event_listener_that_blocks_the_loop_is_stopped(tmp_path):
    files = {"db.py": INSTRUMENTED + textwrap.dedent("""\
        import time

        from sqlalchemy import event


        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def audit(conn, cursor, statement, parameters, context, executemany):
            if "probe_value" in statement:
                time.sleep(3600)  # a synchronous call to a service that never answers
        """)}
    run = probe(tmp_path, "--engine", "db:engine", "--setup", "db:instrument", "--timeout", "2", files=files)

    assert_one_line_error(run, "--engine db:engine: the probe's session: the event loop was blocked for more than --timeout 2s", "(it was at db.py:20 in audit)")
    assert run.elapsed < 2 + 6, run.elapsed


def test_what_the_app_does_at_exit_does_not_hold_the_doctor(tmp_path):
    # An exporter retrying at exit, here an atexit hook that sleeps: the report is in, the doctor ends.
    files = {"db.py": INSTRUMENTED, "otel.py": "import atexit, time\n\nfrom db import instrument\n\n\ndef setup():\n    instrument()\n    atexit.register(time.sleep, 60)\n"}
    run = probe(tmp_path, "--engine", "db:engine", "--setup", "otel:setup", "--format", "json", files=files)

    assert run.code == 0, run.stderr
    assert run.check("OSD503")["status"] == "pass"
    assert run.elapsed < 15, run.elapsed


# --- 10. a check that measured nothing is not green --------------------------------------------------


@pytest.mark.live
@pytest.mark.parametrize("wiring", ["commenter-off", "not-instrumented"])
def test_osd508_skips_when_there_is_no_comment_to_measure(tmp_path, pg_dsn, wiring):
    instrument = {
        "commenter-off": "SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=False)",
        "not-instrumented": "pass",
    }[wiring]
    files = {"db.py": f"""\
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine({pg_dsn!r})


        def setup():
            trace.set_tracer_provider(TracerProvider())
            {instrument}
        """}
    run = probe(tmp_path, "--engine", "db:engine", "--setup", "db:setup", "--format", "json", files=files)

    assert run.check("OSD501")["status"] == "pass", run.stderr
    osd508 = run.check("OSD508")
    assert osd508["status"] == "skip", osd508
    assert "there is no comment to measure" in osd508["detail"]


@pytest.mark.live
def test_sslmode_on_the_users_asyncpg_engine_is_one_clear_line(tmp_path, pg_dsn):
    files = {"db.py": f"from sqlalchemy.ext.asyncio import create_async_engine\nengine = create_async_engine({pg_dsn + '?sslmode=disable'!r})\n"}
    run = probe(tmp_path, "--engine", "db:engine", "--format", "json", files=files)

    assert run.code == 1, run.stderr
    osd501 = run.check("OSD501")
    assert osd501["status"] == "fail"
    assert osd501["detail"] == "asyncpg does not take sslmode=disable (that is libpq's and psycopg's spelling)"
    assert "?ssl=disable" in osd501["remediation"]
    assert "Traceback" not in run.stderr
