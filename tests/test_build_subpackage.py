"""`build/` and `dist/` are skipped as artefact folders, but a folder of that name inside a package
is code (onyx keeps `onyx/server/features/build/` with its routes there): it is scanned."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cli_support import run_doctor

SYNC_IN_ASYNC = """\
from fastapi import APIRouter, Depends
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

SessionLocal = sessionmaker(create_engine("postgresql+psycopg://app@db/app"))
router = APIRouter()


def get_db():
    with SessionLocal() as db:
        yield db


@router.get("/usage")
async def usage(db: Session = Depends(get_db)):
    return db.execute(text("SELECT 1")).scalar()
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "svc"\n')
    package = tmp_path / "svc"
    (package / "features" / "build").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "features" / "__init__.py").write_text("")
    (package / "features" / "build" / "api.py").write_text(SYNC_IN_ASYNC)
    # An artefact folder at the top: a copy of the same code that must stay unscanned.
    (tmp_path / "build" / "lib" / "svc").mkdir(parents=True)
    (tmp_path / "build" / "lib" / "svc" / "api.py").write_text(SYNC_IN_ASYNC)
    return tmp_path


@pytest.mark.parametrize("git", [False, True], ids=["walk", "git"])
def test_build_subpackage_is_scanned_and_build_output_is_not(tmp_path, git):
    root = _project(tmp_path)
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    run = run_doctor(["scan", ".", "--format", "json", "--no-cache"], cwd=root)
    paths = {f["path"] for f in json.loads(run.stdout)["findings"] if f["code"] == "OSD401"}
    assert paths == {"svc/features/build/api.py"}, run.stdout


def test_namespace_folders_inside_a_package_keep_their_module_names(tmp_path):
    """`build/` and `build/db/` without `__init__.py` inside a package are namespace sub-packages:
    the route's import of `svc.features.build.db.queries` resolves, so the sync query the helper
    runs on the route's session is found (onyx's user_library routes have this shape)."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "svc"\n')
    (tmp_path / "svc" / "features" / "build" / "db").mkdir(parents=True)
    (tmp_path / "svc" / "features" / "build" / "routes").mkdir(parents=True)
    (tmp_path / "svc" / "__init__.py").write_text("")
    (tmp_path / "svc" / "features" / "__init__.py").write_text("")
    (tmp_path / "svc" / "db.py").write_text(
        "from sqlalchemy import create_engine\n"
        "from sqlalchemy.orm import sessionmaker\n\n"
        'SessionLocal = sessionmaker(create_engine("postgresql+psycopg://app@db/app"))\n\n\n'
        "def get_session():\n"
        "    with SessionLocal() as session:\n"
        "        yield session\n"
    )
    (tmp_path / "svc" / "features" / "build" / "db" / "queries.py").write_text(
        "from sqlalchemy import text\n"
        "from sqlalchemy.orm import Session\n\n\n"
        "def storage_bytes(db_session: Session) -> int:\n"
        '    return db_session.execute(text("SELECT 1")).scalar()\n'
    )
    (tmp_path / "svc" / "features" / "build" / "routes" / "api.py").write_text(
        "from fastapi import APIRouter, Depends\n"
        "from sqlalchemy.orm import Session\n\n"
        "from svc.db import get_session\n"
        "from svc.features.build.db.queries import storage_bytes\n\n"
        "router = APIRouter()\n\n\n"
        '@router.post("/upload")\n'
        "async def upload(db_session: Session = Depends(get_session)) -> int:\n"
        "    return storage_bytes(db_session)\n"
    )
    run = run_doctor(["scan", ".", "--format", "json", "--no-cache"], cwd=tmp_path)
    found = {(f["path"], f["line"]) for f in json.loads(run.stdout)["findings"] if f["code"] == "OSD401"}
    assert ("svc/features/build/routes/api.py", 12) in found, run.stdout
