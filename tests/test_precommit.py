"""The pre-commit hooks, run by the real `pre-commit` tool against a temporary git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli_support import FIXTURES, REPO

pytestmark = pytest.mark.slow


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


def _pre_commit() -> list[str]:
    exe = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")
    return [exe]


@pytest.fixture(scope="module")
def user_repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("user-repo")
    shutil.copytree(FIXTURES / "broken_wiring", repo, dirs_exist_ok=True)
    (repo / "app" / "clean.py").write_text("from app.db import engine\n\nprint(engine)\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    return repo


def _try_repo(user_repo: Path, hook: str, *files: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*_pre_commit(), "try-repo", str(REPO), hook, "--files", *files],
        cwd=user_repo, capture_output=True, text=True, timeout=900,
    )


def test_hook_fails_on_a_bad_file_and_shows_the_finding(user_repo):
    result = _try_repo(user_repo, "otel-sqla-doctor", "app/telemetry.py")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "app/telemetry.py:8:52: OSD101" in output


def test_hook_passes_on_a_clean_file_even_though_other_files_are_bad(user_repo):
    result = _try_repo(user_repo, "otel-sqla-doctor", "app/clean.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_fix_hook_applies_the_safe_fix(user_repo, tmp_path):
    repo = tmp_path / "fix-repo"
    shutil.copytree(user_repo, repo)
    result = _try_repo(repo, "otel-sqla-doctor-fix", "app/telemetry.py")
    assert "instrument(engine=engine.sync_engine)" in (repo / "app" / "telemetry.py").read_text(), result.stdout + result.stderr
