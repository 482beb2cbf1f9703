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
