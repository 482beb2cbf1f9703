"""Hostile trees (issue 8): every odd file gives a finding or a per-file error, never a traceback,
the scan goes on, and nothing is written."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from cli_support import run_doctor

BAD_WIRING = (
    "from sqlalchemy.ext.asyncio import create_async_engine\n"
    "from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor\n"
    "engine = create_async_engine('sqlite+aiosqlite://')\n"
    "SQLAlchemyInstrumentor().instrument(engine=engine)\n"
)


def _snapshot(root: Path) -> dict:
    state = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            state[str(path)] = ("link", os.readlink(path))
        elif path.is_file():
            try:
                state[str(path)] = ("file", path.read_bytes(), path.stat().st_mode)
            except OSError:
                state[str(path)] = ("unreadable",)
    return state


def _scan(root: Path, *args: str):
    result = run_doctor(["scan", ".", "--format", "json", "--no-cache", "--select", "OSD101", *args], cwd=root)
    assert "Traceback" not in result.stderr, result.stderr
    data = json.loads(result.stdout)
    return result, {f["path"] for f in data["findings"]}, {e["path"]: e["message"] for e in data["errors"]}


def test_hostile_tree(tmp_path):
    root = tmp_path / "hostile"
    root.mkdir()
    (root / "good.py").write_text(BAD_WIRING)  # the finding that must survive everything else
    files = {
        "syntax_error.py": b"import sqlalchemy\ndef f(:\n",
        "latin1_no_cookie.py": b"import sqlalchemy\ns = '\xe9'\n",
        "latin1_cookie.py": b"# -*- coding: latin-1 -*-\n" + BAD_WIRING.encode() + b"s = '\xe9'\n",
        "bom.py": b"\xef\xbb\xbf" + BAD_WIRING.encode(),
        "nul.py": b"import sqlalchemy\x00\n",
        "crlf.py": BAD_WIRING.replace("\n", "\r\n").encode(),
        "empty.py": b"",
        "deep.py": b"import sqlalchemy\nx = " + b"(" * 200 + b"1" + b")" * 200 + b"\n",
        "py312.py": b"import sqlalchemy\ntype Alias = list[int]\ndef first[T](xs: list[T]) -> T:\n    match xs:\n        case [x, *_]:\n            return x\n    raise ValueError\n",
        "huge.py": b"import sqlalchemy\n" + b"x = 1\n" * 900_000,
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    (root / "dir_named.py").mkdir()
    (root / "dir_named.py" / "inner.py").write_text(BAD_WIRING)
    (root / "loop").mkdir()
    (root / "loop" / "self").symlink_to(root / "loop")
    (root / "dangling.py").symlink_to(root / "does-not-exist.py")
    unreadable = root / "unreadable.py"
    unreadable.write_text(BAD_WIRING)
    unreadable.chmod(0)
    before = _snapshot(root)

    result, findings, errors = _scan(root)

    assert result.returncode == 1
    for ok in ("good.py", "latin1_cookie.py", "bom.py", "crlf.py", "dir_named.py/inner.py"):
        assert ok in findings, (ok, findings, errors)
    assert errors["syntax_error.py"].startswith("syntax error at line 2")
    assert "cannot decode" in errors["latin1_no_cookie.py"]
    assert "NUL" in errors["nul.py"]
    assert "over the" in errors["huge.py"]
    assert errors["dangling.py"] == "dangling symbolic link"
    if os.geteuid() != 0:  # root reads anything
        assert "cannot read" in errors["unreadable.py"]
    for fine in ("empty.py", "deep.py"):
        assert fine not in errors, errors[fine]
    if sys.version_info >= (3, 12):
        assert "py312.py" not in errors
    else:  # LibCST parses it; no crash either way
        assert "py312.py" not in findings
    assert _snapshot(root) == before, "a scan without --fix must not write anything"
    assert not (root / ".otel_sqla_doctor_cache").exists()
    unreadable.chmod(0o644)


@pytest.mark.parametrize("name,data", [("bom.py", b"\xef\xbb\xbf"), ("crlf.py", None), ("latin1.py", b"# -*- coding: latin-1 -*-\n")])
def test_fix_preserves_bom_line_endings_encoding_and_mode(tmp_path, name, data):
    root = tmp_path / "p"
    root.mkdir()
    text = BAD_WIRING + "s = 'caf\xe9'\n"
    if name == "crlf.py":
        raw = text.replace("\n", "\r\n").encode()
    elif name == "latin1.py":
        raw = data + text.encode("latin-1")
    else:
        raw = data + text.encode()
    target = root / name
    target.write_bytes(raw)
    target.chmod(0o640)
    result = run_doctor(["scan", ".", "--select", "OSD101", "--fix", "--no-cache"], cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    fixed = target.read_bytes()
    assert fixed == raw.replace(b"instrument(engine=engine)", b"instrument(engine=engine.sync_engine)")
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)


def test_fix_never_writes_through_a_symlink_leaving_the_scanned_tree(tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text(BAD_WIRING)
    root = tmp_path / "p"
    root.mkdir()
    (root / "link.py").symlink_to(outside)
    result = run_doctor(["scan", ".", "--select", "OSD101", "--fix", "--no-cache"], cwd=root)
    assert outside.read_text() == BAD_WIRING
    assert "outside the scanned paths" in result.stderr
