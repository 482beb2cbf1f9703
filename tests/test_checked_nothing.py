"""A scan that checked nothing is not a success (issue 16, item 10)."""

from __future__ import annotations

from cli_support import run_doctor


def test_an_empty_rule_selection_is_a_usage_error(tmp_path):
    (tmp_path / "app.py").write_text("import sqlalchemy\n")
    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    proc = run_doctor(["scan", ".", "--select", ""], cwd=tmp_path)
    assert proc.returncode == 2
    assert "no rule is selected" in proc.stderr and "Traceback" not in proc.stderr
    assert "No problems found" not in proc.stdout


def test_excluding_every_file_is_no_success(tmp_path):
    (tmp_path / "app.py").write_text("import sqlalchemy\n")
    (tmp_path / "pyproject.toml").write_text('[tool.otel-sqla-doctor]\nroot = true\nextend-exclude = ["*"]\n')
    proc = run_doctor(["scan", "."], cwd=tmp_path)
    assert proc.returncode == 1
    assert "no Python files were scanned" in proc.stderr
    assert run_doctor(["scan", ".", "--exit-zero"], cwd=tmp_path).returncode == 0
