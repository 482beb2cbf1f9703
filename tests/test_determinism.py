"""Results must not change with caching or parallelism (issue 6): cold, warm, one process, many."""

from __future__ import annotations

import shutil
from pathlib import Path

from otel_sqla_doctor.api import load_config, scan_paths
from otel_sqla_doctor.static import analysis

REPO = Path(__file__).resolve().parent.parent


def _tree(tmp_path: Path) -> Path:
    target = tmp_path / "tree"
    shutil.copytree(REPO / "sample_projects", target / "sample_projects")
    shutil.copytree(REPO / "tests" / "fixtures" / "broken_wiring", target / "broken_wiring")
    (target / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\nselect = [\"ALL\"]\n")
    return target


def _run(root: Path, **kwargs):
    result = scan_paths([root], config=load_config([root]), cwd=root, **kwargs)
    return [f.to_dict() for f in result.findings], [e.to_dict() for e in result.errors], result.files_scanned


def test_cold_warm_single_and_multi_process_agree(tmp_path, monkeypatch):
    root = _tree(tmp_path)
    cold_single = _run(root, use_cache=False, jobs=1)
    monkeypatch.setattr(analysis, "PARALLEL_THRESHOLD", 1)  # force the pool even for a small tree
    cold_multi = _run(root, use_cache=False, jobs=2)
    filling = _run(root, use_cache=True, jobs=2)
    assert (root / ".otel_sqla_doctor_cache" / ".gitignore").exists()
    warm = _run(root, use_cache=True, jobs=1)
    assert cold_single[0], "the tree has findings"
    assert cold_single == cold_multi == filling == warm


def test_corrupt_cache_is_discarded_with_a_notice(tmp_path, capsys):
    root = _tree(tmp_path)
    expected = _run(root, use_cache=True)
    for cache_file in (root / ".otel_sqla_doctor_cache").glob("*.json"):
        cache_file.write_text("{ this is not json")
    assert _run(root, use_cache=True) == expected
    assert "discarded an unreadable cache" in capsys.readouterr().err
    assert _run(root, use_cache=True) == expected


def test_cache_notices_a_changed_file(tmp_path):
    root = _tree(tmp_path)
    before = _run(root, use_cache=True)
    target = root / "broken_wiring" / "app" / "telemetry.py"
    target.write_text(target.read_text().replace("instrument(engine=engine)", "instrument(engine=engine.sync_engine)"))
    after = _run(root, use_cache=True)
    assert len(after[0]) < len(before[0])
    assert after == _run(root, use_cache=False)


def test_cache_written_by_other_rule_code_is_not_reused(tmp_path):
    """A pre-commit hook moved to another commit keeps the version number; its cache must not
    hand back the old rules' findings. Here a copy of the package gets a rule edited between two
    warm scans, and the second scan shows the edited rule's message."""
    import subprocess
    import sys

    package = tmp_path / "pkg"
    shutil.copytree(REPO / "otel_sqla_doctor", package / "otel_sqla_doctor", ignore=shutil.ignore_patterns("__pycache__"))
    root = tmp_path / "project"
    shutil.copytree(REPO / "tests" / "fixtures" / "broken_wiring", root)

    def scan() -> str:
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(package), "NO_COLOR": "1"}
        run = subprocess.run(
            [sys.executable, "-m", "otel_sqla_doctor", "scan", ".", "--select", "OSD101"],
            cwd=root, env=env, capture_output=True, text=True, timeout=120,
        )
        assert run.returncode == 1, run.stderr
        return run.stdout

    assert "OSD101" in scan()
    assert (root / ".otel_sqla_doctor_cache").is_dir()
    rule = package / "otel_sqla_doctor" / "static" / "rules" / "osd101_async_engine_passed_to_instrumentor.py"
    source = rule.read_text()
    message = 'MESSAGE = "'
    assert message in source or "MESSAGE = (" in source
    rule.write_text(source.replace("MESSAGE = ", 'MESSAGE = "EDITED RULE: " + ', 1))
    assert "EDITED RULE: " in scan()
