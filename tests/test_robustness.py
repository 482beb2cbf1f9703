"""Issue 8: a bug in one rule is a per-file error, concurrent scans keep the cache sound, and
generated or mutated programs never crash the scan or make --fix produce broken code."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import libcst as cst
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cli_support import REPO, run_doctor
from otel_sqla_doctor.config import Config
from otel_sqla_doctor.static import analysis, engine
from otel_sqla_doctor.static.rule import Rule
from otel_sqla_doctor.static.rules import all_rules

SAMPLES = REPO / "sample_projects"


class _Exploding(Rule):
    """A rule with a bug."""

    CODE = "OSD999"
    NAME = "exploding"
    PREFILTER = (b"import",)

    def visit_Call(self, node):
        raise ZeroDivisionError("boom")


def test_a_crashing_rule_becomes_a_per_file_error_naming_it(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("import sqlalchemy\nprint(1)\n")
    (tmp_path / "b.py").write_text("x = 1\n")
    monkeypatch.setattr(analysis, "_rule_classes", lambda codes: [_Exploding])
    scanner = engine.Scanner(Config(select=("OSD101",), root=tmp_path), use_cache=False, jobs=1, cwd=tmp_path)
    scanner.codes = ("OSD999",)
    result = scanner.scan([tmp_path])
    (error,) = result.errors
    assert error.path == "a.py"
    assert "internal error in rule OSD999: ZeroDivisionError: boom (please report this)" == error.message
    assert result.files_scanned == 2


def test_two_scans_at_once_leave_a_sound_cache(tmp_path):
    project = tmp_path / "p"
    shutil.copytree(SAMPLES / "inventory_service", project)
    expected = run_doctor(["scan", ".", "--format", "json", "--no-cache"], cwd=project).stdout
    procs = [
        subprocess.Popen([sys.executable, "-m", "otel_sqla_doctor", "scan", ".", "--format", "json"], cwd=project,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for out, err in outputs:
        assert json.loads(out)["findings"] == json.loads(expected)["findings"], err
        assert "discarded" not in err
    for cache_file in (project / ".otel_sqla_doctor_cache").glob("*.json"):
        json.loads(cache_file.read_text())  # whole, never torn
    assert json.loads(run_doctor(["scan", ".", "--format", "json"], cwd=project).stdout)["findings"] == json.loads(expected)["findings"]


def _mutations(source: str, seed: int) -> list[str]:
    """Line-level mutations of a real file: drop, duplicate, swap, indent and truncate lines."""
    rng = random.Random(seed)
    lines = source.splitlines(keepends=True)
    out = []
    for _ in range(16):
        copy = list(lines)
        op = rng.choice(["drop", "dup", "swap", "indent", "truncate", "join"])
        if not copy:
            break
        i = rng.randrange(len(copy))
        if op == "drop":
            del copy[i]
        elif op == "dup":
            copy.insert(i, copy[i])
        elif op == "swap" and len(copy) > 1:
            j = rng.randrange(len(copy))
            copy[i], copy[j] = copy[j], copy[i]
        elif op == "indent":
            copy[i] = "    " + copy[i]
        elif op == "truncate":
            copy[i] = copy[i][: len(copy[i]) // 2] + "\n"
        else:
            copy[i] = copy[i].rstrip("\n") + " " + (copy[i + 1] if i + 1 < len(copy) else "\n")
        out.append("".join(copy))
    return out


def _fix_round_trip(root: Path) -> tuple[int, int]:
    """Scan with every rule, --fix --unsafe-fixes twice: no crash, parseable, idempotent."""
    first = run_doctor(["scan", ".", "--select", "ALL", "--fix", "--unsafe-fixes", "--no-cache", "--format", "json"], cwd=root)
    assert "Traceback" not in first.stderr and first.returncode in (0, 1), first.stderr
    data = json.loads(first.stdout)
    assert not [e for e in data["errors"] if "internal error" in e["message"]], data["errors"]
    snapshot = {p: p.read_text() for p in root.rglob("*.py")}
    for path, text in snapshot.items():
        if path.name.startswith("mutant_") and "syntax error" in json.dumps(data["errors"]):
            continue
        try:
            cst.parse_module(text)
        except cst.ParserSyntaxError:
            assert any(e["path"].endswith(path.name) for e in data["errors"]), f"--fix broke {path}"
    second = run_doctor(["scan", ".", "--select", "ALL", "--fix", "--unsafe-fixes", "--no-cache"], cwd=root)
    assert "Traceback" not in second.stderr
    assert {p: p.read_text() for p in root.rglob("*.py")} == snapshot, "a second --fix changed something"
    return len(snapshot), len(data["findings"])


def test_mutated_sample_projects_never_crash_and_fixes_round_trip(tmp_path):
    files = 0
    for project in ("orders_api", "billing_worker", "inventory_service"):
        root = tmp_path / project
        shutil.copytree(SAMPLES / project, root)
        sources = sorted(root.rglob("*.py"))
        for n, path in enumerate(sources):
            for k, mutant in enumerate(_mutations(path.read_text(), seed=n)):
                (path.parent / f"mutant_{path.stem}_{k}.py").write_text(mutant)
        count, _ = _fix_round_trip(root)
        files += count
    assert files > 250, files


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("DOCTOR_FUZZ_EXAMPLES", "15")), deadline=None, derandomize=True, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
@given(st.data())
def test_generated_programs_never_crash_the_rules(data):
    import hypothesmith

    source = data.draw(hypothesmith.from_grammar())
    codes = tuple(r.CODE for r in all_rules())
    original = Rule.__dict__["applies_to"]  # the classmethod itself, not a method bound to Rule
    Rule.applies_to = classmethod(lambda cls, data: True)  # every rule on every generated file
    try:
        outcome = engine.analyze_source(source.encode(), "gen.py", "gen", False, codes, {})
    finally:
        Rule.applies_to = original
    assert "internal error" not in (outcome.get("error") or ""), outcome["error"]
