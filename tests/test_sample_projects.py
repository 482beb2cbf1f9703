"""`doctor scan sample_projects/<each>` reports exactly the findings written next to each project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_support import REPO, run_doctor

SAMPLES = sorted(p for p in (REPO / "sample_projects").iterdir() if (p / "expected_findings.json").exists())


@pytest.mark.parametrize("project", SAMPLES, ids=[p.name for p in SAMPLES])
def test_scan_reports_exactly_the_expected_findings(project: Path, tmp_path):
    result = run_doctor(["scan", str(project.relative_to(REPO)), "--format", "json", "--no-cache"], cwd=REPO)
    data = json.loads(result.stdout)
    got = sorted((f["path"].split(f"{project.name}/", 1)[1], f["line"], f["code"]) for f in data["findings"])
    expected = json.loads((project / "expected_findings.json").read_text())
    want = sorted((e["path"], e["line"], e["code"]) for e in expected["findings"])
    assert data["errors"] == []
    assert got == want
    assert result.returncode == (1 if want else 0)


def test_there_are_three_broken_samples_and_a_clean_one():
    names = {p.name: json.loads((p / "expected_findings.json").read_text())["findings"] for p in SAMPLES}
    assert names.get("clean_service") == []
    assert sum(1 for findings in names.values() if findings) >= 3


@pytest.mark.parametrize("project", SAMPLES, ids=[p.name for p in SAMPLES])
def test_diff_shows_fixes_and_fix_leaves_only_findings_without_a_safe_fix(project: Path, tmp_path):
    import re
    import shutil

    copy = tmp_path / project.name
    shutil.copytree(project, copy)
    before = json.loads(run_doctor(["scan", ".", "--format", "json", "--no-cache"], cwd=copy).stdout)["findings"]
    sources = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    diff = run_doctor(["scan", ".", "--diff", "--unsafe-fixes", "--no-cache"], cwd=copy)
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == sources, "--diff must write nothing"
    if any(f["fix"] for f in before):
        assert diff.stdout.startswith("--- a/"), diff.stdout
    else:
        assert diff.stdout == ""
    fixed = run_doctor(["scan", ".", "--fix", "--no-cache"], cwd=copy)
    match = re.search(r"Fixed (\d+) problems? in", fixed.stdout)
    count = int(match.group(1)) if match else 0
    after = json.loads(run_doctor(["scan", ".", "--format", "json", "--no-cache"], cwd=copy).stdout)["findings"]
    assert len(after) == len(before) - count
    assert run_doctor(["scan", ".", "--diff", "--no-cache"], cwd=copy).stdout == "", "a safe fix was left behind"
    if project.name == "orders_api":
        assert count == 1 and "OSD101" not in {f["code"] for f in after}
