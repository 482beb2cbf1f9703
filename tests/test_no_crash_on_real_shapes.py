"""Shapes of real repositories that killed the whole scan (issue 11, part 2).

Each test writes a minimal reproduction beside one file with a real finding (an AsyncEngine passed
to the instrumentor): the scan must end, report that finding, and turn whatever went wrong into
an error entry for one file or rule, never a dead scan with exit 2.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import libcst as cst
import pytest

from cli_support import run_doctor
from otel_sqla_doctor.config import Config
from otel_sqla_doctor.static import engine
from otel_sqla_doctor.static.rules import all_rules

WIRING = """\
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine("postgresql+asyncpg://app@db/app")
SQLAlchemyInstrumentor().instrument(engine=engine)
"""


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n[tool.otel-sqla-doctor]\nroot = true\n")
    (tmp_path / "wiring.py").write_text(WIRING)
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def _scan(root: Path, *extra: str) -> tuple[int, dict]:
    proc = run_doctor(["scan", ".", "--format", "json", "--no-cache", *extra], cwd=root)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _codes(report: dict) -> set[tuple[str, str]]:
    return {(f["path"], f["code"]) for f in report["findings"]}


def test_settings_attribute_annotated_without_a_value_terminates(tmp_path):
    # pydantic settings: `DATABASE_URL: Optional[str]` has no value, so resolving
    # `settings.DATABASE_URL` led from the class back to itself until RecursionError.
    root = _project(tmp_path, {
        "app/__init__.py": "",
        "app/settings.py": """\
            from typing import Optional
            from pydantic_settings import BaseSettings

            class Settings(BaseSettings):
                DATABASE_URL: Optional[str]

            settings = Settings()
        """,
        "app/db.py": """\
            from sqlalchemy.ext.asyncio import create_async_engine
            from app.settings import settings

            engine = create_async_engine(settings.DATABASE_URL)
        """,
    })
    code, report = _scan(root)
    assert code == 1
    assert ("wiring.py", "OSD101") in _codes(report)
    assert report["errors"] == []


def test_aliases_and_reexports_in_a_cycle_terminate(tmp_path):
    root = _project(tmp_path, {
        "app/__init__.py": "from app.a import *\nfrom app.b import y as x\n",
        "app/a.py": "from app import x\ny = x\n",
        "app/b.py": "from app.a import y\n",
        "app/c.py": "from app.d import url as url\n",
        "app/d.py": "from app.c import url as url\n",
        "app/db.py": """\
            from sqlalchemy.ext.asyncio import create_async_engine
            from app import a, c

            first = create_async_engine(a.x)
            second = create_async_engine(c.url)
        """,
    })
    code, report = _scan(root)
    assert code == 1
    assert ("wiring.py", "OSD101") in _codes(report)
    assert report["errors"] == []


# Valid Python that LibCST 1.x cannot parse: its parser raises TypeError (LibCST issue #1061).
LIBCST_BREAKER = "import sqlalchemy\nvalue = () if 0 else(lambda:())\n"


def test_valid_python_libcst_cannot_parse_is_one_file_error(tmp_path):
    compile(LIBCST_BREAKER, "breaker.py", "exec")  # valid Python ...
    with pytest.raises(Exception) as raised:  # ... that LibCST's parser does not survive
        cst.parse_module(LIBCST_BREAKER)
    assert not isinstance(raised.value, cst.ParserSyntaxError)
    root = _project(tmp_path, {"breaker.py": LIBCST_BREAKER})
    for jobs in ("1", "2"):
        code, report = _scan(root, "--jobs", jobs)
        assert code == 1
        assert ("wiring.py", "OSD101") in _codes(report)
        (error,) = report["errors"]
        assert error["path"] == "breaker.py"
        assert error["message"].startswith("internal error in the LibCST parser: ")


def test_a_project_rule_that_fails_is_an_error_naming_it_and_the_others_still_report(tmp_path, monkeypatch):
    root = _project(tmp_path, {})
    broken = next(r for r in all_rules() if r.CODE == "OSD102")

    def explode(index, options):
        raise RecursionError("maximum recursion depth exceeded")
        yield  # pragma: no cover - a generator, as the real check is

    monkeypatch.setattr(broken, "check_project", staticmethod(explode))
    scanner = engine.Scanner(Config(root=root), use_cache=False, jobs=1, cwd=root)
    result = scanner.scan([root])
    assert {(f.path, f.code) for f in result.findings} >= {("wiring.py", "OSD101")}
    (error,) = result.errors
    assert error.path == "."
    assert error.message.startswith("internal error in rule OSD102 (project check): names resolve in a cycle")


def test_a_failing_requirement_is_an_error_for_its_file(tmp_path, monkeypatch):
    root = _project(tmp_path, {"other.py": WIRING})
    from otel_sqla_doctor.static import rule as rule_module

    calls = []

    def holds(self, index):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("bad summary")
        return original(self, index)

    original = rule_module.Requirement.holds
    monkeypatch.setattr(rule_module.Requirement, "holds", holds)
    scanner = engine.Scanner(Config(root=root), use_cache=False, jobs=1, cwd=root)
    result = scanner.scan([root])
    assert len([f for f in result.findings if f.code == "OSD101"]) == 1  # the other file's finding stays
    (error,) = result.errors
    assert "internal error in rule OSD101 (project index): ValueError: bad summary" in error.message


def test_an_expression_too_deep_for_libcst_is_one_file_error_not_a_dead_process(tmp_path):
    # LibCST's parser takes a minute over an 8,000-term sum and then dies with SIGSEGV, taking the
    # whole scan (every other file's findings) with it. Python itself refuses to compile it.
    deep = "import sqlalchemy\nvalue = " + " + ".join(["1"] * 8000) + "\n"
    with pytest.raises(RecursionError):
        compile(deep, "deep.py", "exec")
    root = _project(tmp_path, {"generated/deep.py": deep})
    code, report = _scan(root, "--jobs", "1")
    assert code == 1
    assert ("wiring.py", "OSD101") in _codes(report)
    (error,) = report["errors"]
    assert error["path"] == "generated/deep.py"
    assert "nests too deeply for Python itself to compile" in error["message"]


def test_a_malformed_dependency_table_is_no_internal_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\ndependencies = 5\n[project.optional-dependencies]\nx = 3\n[tool.otel-sqla-doctor]\nroot = true\n"
    )
    (tmp_path / "a.py").write_text(
        "from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor\nSQLAlchemyInstrumentor().instrument()\n"
    )
    code, report = _scan(tmp_path)
    assert not [e for e in report["errors"] if "internal error" in e["message"]], report["errors"]
    assert ("a.py", "OSD202") in _codes(report)
