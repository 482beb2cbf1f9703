"""A .py over the size cap: a per-file notice with a hint to exclude it, and the exit code flips
only when the file mentions the stack (SQLAlchemy, OpenTelemetry, a driver)."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import run_doctor

from otel_sqla_doctor.static import engine, selection

CLEAN = "import os\n\nVALUE = os.environ.get('X')\n"
FILLER = b"DATA = [\n" + b"    1234567890,\n" * ((engine.MAX_FILE_BYTES // 16) + 10) + b"]\n"


def _project(tmp_path: Path, big: bytes) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    (root / "app.py").write_text(CLEAN)
    (root / "generated_table.py").write_bytes(big)
    assert (root / "generated_table.py").stat().st_size > engine.MAX_FILE_BYTES
    return root


def test_big_file_without_the_stack_is_a_notice_not_a_failure(tmp_path):
    root = _project(tmp_path, b"# generated lookup table\n" + FILLER)
    result = run_doctor(["scan", ".", "--no-cache"], cwd=root)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    line = next(line for line in result.stdout.splitlines() if "generated_table.py" in line)
    assert "notice" in line and "over the" in line and "extend-exclude" in line, line
    assert "error" not in line, line
    assert "No problems found" in result.stdout and "1 skipped as too large" in result.stdout

    as_json = run_doctor(["scan", ".", "--no-cache", "--format", "json"], cwd=root)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["errors"] == []
    [notice] = data["notices"]
    assert notice["path"] == "generated_table.py" and "extend-exclude" in notice["message"]


def test_big_file_that_mentions_the_stack_fails_the_run(tmp_path):
    # Mentioned anywhere, in any case (here: at the very end, past the first chunk).
    root = _project(tmp_path, FILLER + b"# built for SQLAlchemy models\n")
    result = run_doctor(["scan", ".", "--no-cache", "--format", "json"], cwd=root)
    assert result.returncode == 1, (result.stdout, result.stderr)
    data = json.loads(result.stdout)
    [error] = data["errors"]
    assert error["path"] == "generated_table.py"
    assert "over the" in error["message"] and "sqlalchemy" in error["message"] and "extend-exclude" in error["message"]
    assert "notices" not in data


def test_mention_spanning_a_chunk_boundary_is_found(tmp_path):
    path = tmp_path / "big.py"
    path.write_bytes(b"x" * 10 + b"OpenTelemetry" + b"y" * 10)
    assert selection.mentions_stack(path, chunk=14) == "opentelemetry"
    path.write_bytes(b"z" * 100)
    assert selection.mentions_stack(path, chunk=7) is None


def test_excluded_big_file_says_nothing(tmp_path):
    root = _project(tmp_path, FILLER)
    (root / "pyproject.toml").write_text('[tool.otel-sqla-doctor]\nroot = true\nextend-exclude = ["generated_table.py"]\n')
    result = run_doctor(["scan", ".", "--no-cache"], cwd=root)
    assert result.returncode == 0, result.stdout
    assert "generated_table.py" not in result.stdout
