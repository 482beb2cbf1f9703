"""`doctor probe --engine/--setup`: the user's own engine, wired by the user's own setup.

Every run is a fresh interpreter: the setups call the global instrument() and
set_tracer_provider(), which can happen once per process, exactly as in a service.
"""

from __future__ import annotations

import json

import pytest

from probe_helpers import PROBE_APPS, clean_env, doctor

pytestmark = pytest.mark.live

APPS = sorted(p.name for p in PROBE_APPS.iterdir() if (p / "expected.json").is_file())


def _probe_app(app: str, *extra: str, env: dict | None = None):
    expected = json.loads((PROBE_APPS / app / "expected.json").read_text())
    run = doctor(
        "--engine", expected["engine"], "--setup", expected["setup"], "--app-dir", str(PROBE_APPS / app),
        "--format", "json", *extra, env=env,
    )
    return run, expected


@pytest.mark.parametrize("app", APPS)
def test_sample_app_gets_the_expected_verdicts(app):
    run, expected = _probe_app(app)

    report = run.json()  # stdout is only the report, even when the app prints spans
    assert report["target"] == expected["engine"]
    for code, status in expected["status"].items():
        assert run.statuses()[code] == status, run.check(code)
    for code, fragment in expected["detail_contains"].items():
        assert fragment in run.check(code)["detail"]
    assert run.exit_code == expected["exit_code"], run.stderr
    assert "Traceback" not in run.stderr


def test_wrongly_wired_app_names_the_cause_and_the_fix_in_text():
    run = doctor(
        "--engine", "shop.db:engine", "--setup", "shop.telemetry:setup", "--app-dir", str(PROBE_APPS / "async_engine_app")
    )

    line = next(line for line in run.stdout.splitlines() if "OSD503" in line)
    assert line.startswith("[✗] OSD503 query-span-emitted: no query span: ")
    assert "OSD101 async-engine-passed-to-instrumentor" in line
    assert "fix: pass engine=engine.sync_engine" in run.stdout


def test_good_app_on_postgres_runs_every_check_through_the_users_engine(pg_dsn):
    run, _ = _probe_app("good_app", env=clean_env(SHOP_DATABASE_URL=pg_dsn))

    statuses = run.statuses()
    assert statuses["OSD501"] == statuses["OSD503"] == statuses["OSD504"] == statuses["OSD507"] == "pass"
    assert "current_query()" in run.check("OSD506")["detail"]
    assert statuses["OSD508"] == "warn"  # the user's commenter costs one PREPARE per execution
    assert "(engine postgresql+asyncpg://postgres@127.0.0.1" in run.check("OSD501")["detail"]


def test_good_app_on_mariadb_reads_the_processlist(mysql_dsn):
    run, _ = _probe_app("good_app", env=clean_env(SHOP_DATABASE_URL=mysql_dsn))

    assert run.check("OSD506")["status"] == "pass"
    assert "information_schema.processlist" in run.check("OSD506")["detail"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "no_such_package.db:engine"], "no module named 'no_such_package'"),
        (["--engine", "shop.db:missing", "--app-dir", str(PROBE_APPS / "good_app")], "shop.db has no attribute 'missing'"),
        (["--engine", "shop.db"], "must look like package.module:attribute"),
        (["--engine", "shop.db:DATABASE_URL", "--app-dir", str(PROBE_APPS / "good_app")], "is a str, not an AsyncEngine"),
        (["--engine", "shop.db:engine", "--setup", "shop.nope:setup", "--app-dir", str(PROBE_APPS / "good_app")], "no module named 'shop.nope'"),
        (["sqlite+aiosqlite://", "--engine", "shop.db:engine"], "either a DSN or --engine"),
    ],
)
def test_bad_references_are_usage_errors(args, message):
    run = doctor(*args)

    assert run.exit_code == 2
    assert run.stdout == ""
    assert run.stderr.startswith("doctor: error: ") and message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_a_sync_engine_is_reported_not_probed(tmp_path):
    (tmp_path / "legacy_db.py").write_text(
        "from sqlalchemy import create_engine\nengine = create_engine('sqlite://')\n"
    )

    run = doctor("--engine", "legacy_db:engine", "--app-dir", str(tmp_path), "--format", "json")

    assert run.check("OSD501")["status"] == "fail"
    assert "is a sync Engine" in run.check("OSD501")["detail"]
    assert run.exit_code == 1


def test_setup_that_raises_is_a_finding_not_a_crash(tmp_path):
    (tmp_path / "crashy.py").write_text(
        "from sqlalchemy.ext.asyncio import create_async_engine\n"
        "from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor\n"
        "engine = create_async_engine('sqlite+aiosqlite://')\n"
        "def setup():\n"
        "    SQLAlchemyInstrumentor().instrument(engine=engine)\n"
    )

    run = doctor("--engine", "crashy:engine", "--setup", "crashy:setup", "--app-dir", str(tmp_path), "--format", "json")

    detail = run.check("OSD503")["detail"]
    assert "NotImplementedError" in detail and "OSD101" in detail
    assert run.exit_code == 1


def test_the_cli_imports_nothing_that_would_change_the_users_import_order():
    # `--engine` must see the app's own import order: if the doctor imported
    # sqlalchemy.ext.asyncio (or the instrumentation) first, the #2149 double tracer would
    # vanish under the probe, and a global instrument() would behave differently.
    import subprocess
    import sys

    code = (
        "import sys, otel_sqla_doctor.cli, otel_sqla_doctor.commands.probe, otel_sqla_doctor.live; "
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'opentelemetry'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=clean_env()).stdout

    assert "sqlalchemy.ext.asyncio" not in loaded
    assert "opentelemetry.instrumentation" not in loaded
