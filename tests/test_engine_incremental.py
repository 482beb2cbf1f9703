"""One changed file in a warm project (the pre-commit case): the last decided findings are reused
only when the change alters nothing the decision reads, and the findings always equal a scan
from scratch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from otel_sqla_doctor.api import load_config, scan_paths
from otel_sqla_doctor.static import decide

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    target = tmp_path / "tree"
    shutil.copytree(REPO / "sample_projects" / "orders_api", target)
    (target / "pyproject.toml").write_text('[tool.otel-sqla-doctor]\nroot = true\nselect = ["ALL"]\n')
    return target


def _scan(root: Path, *, use_cache: bool = True, report_only=None):
    result = scan_paths([root], config=load_config([root]), cwd=root, jobs=1, use_cache=use_cache, report_only=report_only)
    return [f.to_dict() for f in result.findings], [e.to_dict() for e in result.errors]


def _count_decisions(monkeypatch) -> list:
    calls: list = []
    original = decide.Judge.judge

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(decide.Judge, "judge", counting)
    return calls


def _a_wired_file(root: Path) -> Path:
    return next(p for p in sorted(root.rglob("*.py")) if b"sqlalchemy" in p.read_bytes() and b"async def" in p.read_bytes())


def test_a_comment_reuses_the_decision_and_changes_no_finding(tree, monkeypatch):
    first = _scan(tree)
    assert first[0], "the sample project should have findings"
    changed = _a_wired_file(tree)
    changed.write_bytes(changed.read_bytes() + b"\n# a comment\n")
    calls = _count_decisions(monkeypatch)
    assert _scan(tree) == first
    assert calls == []  # reused, not decided again
    relative = changed.relative_to(tree).as_posix()
    assert _scan(tree, report_only=[relative]) == _scan(tree, use_cache=False, report_only=[relative])
    assert _scan(tree, use_cache=False) == first


def test_a_change_of_facts_decides_again(tree, monkeypatch):
    _scan(tree)
    changed = _a_wired_file(tree)
    changed.write_bytes(b"import os\n\n" + changed.read_bytes())  # every line moves: new facts
    calls = _count_decisions(monkeypatch)
    warm = _scan(tree)
    assert calls == [1]
    assert warm == _scan(tree, use_cache=False)


def test_a_file_that_starts_naming_the_stack_decides_again(tree, monkeypatch):
    _scan(tree)
    plain = tree / "app" / "plain_helper.py"
    plain.write_text("def helper():\n    return 1\n")
    _scan(tree)  # a new file: decided again, then recorded
    plain.write_text("from sqlalchemy.ext.asyncio import create_async_engine\n\nengine = create_async_engine('sqlite+aiosqlite://')\n")
    calls = _count_decisions(monkeypatch)
    warm = _scan(tree)
    assert calls == [1]
    assert warm == _scan(tree, use_cache=False)


def test_a_new_project_file_decides_again(tree, monkeypatch):
    _scan(tree)
    (tree / "requirements.txt").write_text("opentelemetry-instrumentation-sqlalchemy\n")
    calls = _count_decisions(monkeypatch)
    warm = _scan(tree)
    assert calls == [1]
    assert warm == _scan(tree, use_cache=False)
