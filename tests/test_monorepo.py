"""A repository of several programs: each project gets its own index (issue 13, monorepos).

Two services that each have an `app` (or `shop`) package were merged into one index, where one
shadowed the other and findings vanished; a file list from two services lost one of them."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

from cli_support import REPO, run_doctor

PROBE_APPS = REPO / "sample_projects" / "probe_apps"


def _findings(report: dict) -> set[tuple[str, str]]:
    return {(f["path"], f["code"]) for f in report["findings"]}


def test_same_package_name_in_several_apps_gives_each_app_its_findings(tmp_path):
    root = tmp_path / "apps"
    shutil.copytree(PROBE_APPS, root)
    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    together = json.loads(run_doctor(["scan", "apps", "-f", "json", "--no-cache"], cwd=tmp_path).stdout)
    alone = set()
    for app in sorted(p.name for p in root.iterdir() if p.is_dir()):
        report = json.loads(run_doctor(["scan", f"apps/{app}", "-f", "json", "--no-cache"], cwd=tmp_path).stdout)
        alone |= _findings(report)
    assert _findings(together) == alone
    assert {code for _, code in alone} >= {"OSD101", "OSD102", "OSD106", "OSD202"}


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_services_with_their_own_pyproject_are_judged_apart_and_share_a_library(tmp_path):
    _write(tmp_path, {
        "pyproject.toml": "[tool.otel-sqla-doctor]\nroot = true\n",
        # A shared library both services import: its engine is an AsyncEngine in each of them.
        "libs/dbkit/pyproject.toml": "[project]\nname = 'dbkit'\n",
        "libs/dbkit/dbkit/__init__.py": "",
        "libs/dbkit/dbkit/engine.py": """\
            from sqlalchemy.ext.asyncio import create_async_engine
            engine = create_async_engine("postgresql+asyncpg://app@db/app")
        """,
        # Service A passes the library's AsyncEngine to the instrumentor: OSD101.
        "services/a/pyproject.toml": "[project]\nname = 'a'\n",
        "services/a/app/__init__.py": "",
        "services/a/app/telemetry.py": """\
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
            from dbkit.engine import engine
            SQLAlchemyInstrumentor().instrument(engine=engine)
        """,
        # Service B has an `app` package too, and does it right.
        "services/b/pyproject.toml": "[project]\nname = 'b'\n",
        "services/b/app/__init__.py": "",
        "services/b/app/telemetry.py": """\
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
            from dbkit.engine import engine
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
        """,
    })
    report = json.loads(run_doctor(["scan", ".", "-f", "json", "--no-cache", "--select", "OSD101"], cwd=tmp_path).stdout)
    assert _findings(report) == {("services/a/app/telemetry.py", "OSD101")}


def test_a_package_name_of_one_service_does_not_resolve_into_another(tmp_path):
    _write(tmp_path, {
        "pyproject.toml": "[tool.otel-sqla-doctor]\nroot = true\n",
        "services/a/requirements.txt": "sqlalchemy[asyncio]\n",
        "services/a/app/__init__.py": "",
        "services/a/app/db.py": """\
            from sqlalchemy.ext.asyncio import create_async_engine
            engine = create_async_engine("postgresql+asyncpg://app@db/app")
        """,
        "services/a/app/telemetry.py": """\
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
            from app.db import engine
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
        """,
        # Service B's `app.db` holds a *sync* engine: passing it directly is right.
        "services/b/requirements.txt": "sqlalchemy\n",
        "services/b/app/__init__.py": "",
        "services/b/app/db.py": """\
            from sqlalchemy import create_engine
            engine = create_engine("postgresql+psycopg2://app@db/app")
        """,
        "services/b/app/telemetry.py": """\
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
            from app.db import engine
            SQLAlchemyInstrumentor().instrument(engine=engine)
        """,
    })
    report = json.loads(run_doctor(["scan", ".", "-f", "json", "--no-cache", "--select", "OSD101"], cwd=tmp_path).stdout)
    assert report["findings"] == [], report["findings"]


def test_files_of_two_projects_given_at_once_are_each_scanned_with_their_project(tmp_path):
    # pre-commit passes the changed files of every service in one call.
    bad = """\
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from app.db import engine
        SQLAlchemyInstrumentor().instrument(engine=engine)
    """
    db = """\
        from sqlalchemy.ext.asyncio import create_async_engine
        engine = create_async_engine("postgresql+asyncpg://app@db/app")
    """
    files = {}
    for service in ("svc_a", "svc_b"):
        files.update({
            f"{service}/pyproject.toml": "[project]\nname = 'x'\n",
            f"{service}/app/__init__.py": "",
            f"{service}/app/db.py": db,
            f"{service}/app/telemetry.py": bad,
        })
    _write(tmp_path, files)
    proc = run_doctor(["scan", "svc_a/app/telemetry.py", "svc_b/app/telemetry.py", "-f", "json", "--no-cache", "--select", "OSD101"], cwd=tmp_path)
    assert _findings(json.loads(proc.stdout)) == {("svc_a/app/telemetry.py", "OSD101"), ("svc_b/app/telemetry.py", "OSD101")}
    # Without any project marker, each file is scanned with its own directory.
    for service in ("svc_a", "svc_b"):
        (tmp_path / service / "pyproject.toml").unlink()
    proc = run_doctor(["scan", "svc_a/app/telemetry.py", "svc_b/app/telemetry.py", "-f", "json", "--no-cache", "--select", "OSD101"], cwd=tmp_path)
    assert _findings(json.loads(proc.stdout)) == {("svc_a/app/telemetry.py", "OSD101"), ("svc_b/app/telemetry.py", "OSD101")}


def test_a_module_is_judged_with_its_own_projects_dependency_files(tmp_path):
    # gringotts-vault-api: the service pins instrumentation-asyncpg 0.33b0 (which does not trace
    # SQLAlchemy's prepared statements, so nothing is duplicated); the repository's root scripts
    # import the service's modules, but the root has no such pin.
    _write(tmp_path, {
        "pyproject.toml": "[tool.otel-sqla-doctor]\nroot = true\n",
        "seed.py": "from svc.main import app\n",
        "svc/requirements.txt": "sqlalchemy[asyncio]==1.4.35\nopentelemetry-instrumentation-asyncpg==0.33b0\nopentelemetry-instrumentation-sqlalchemy==0.33b0\n",
        "svc/__init__.py": "",
        "svc/main.py": """\
            from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
            from sqlalchemy.ext.asyncio import create_async_engine
            engine = create_async_engine("postgresql+asyncpg://app@db/app")
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
            AsyncPGInstrumentor().instrument()
            app = object()
        """,
    })
    report = json.loads(run_doctor(["scan", ".", "-f", "json", "--no-cache", "--select", "OSD105"], cwd=tmp_path).stdout)
    assert report["findings"] == []
    (tmp_path / "svc" / "requirements.txt").write_text("sqlalchemy[asyncio]==2.0.44\nopentelemetry-instrumentation-asyncpg==0.66b1\n")
    report = json.loads(run_doctor(["scan", ".", "-f", "json", "--no-cache", "--select", "OSD105"], cwd=tmp_path).stdout)
    assert _findings(report) == {("svc/main.py", "OSD105")}
