"""Turns every rule's VALID/INVALID examples into tests (as Fixit's testing harness does).

Each example is written to a temporary project and scanned by the real scanner with only that
rule selected, so examples exercise discovery, the index and cross-module resolution too.
"""

from __future__ import annotations

import re
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from otel_sqla_doctor.static.rule import Invalid, Rule, Valid

MARKER = re.compile(r"#\s*ERROR\b")


@dataclass
class ExampleCase:
    rule: type[Rule]
    example: Valid | Invalid
    index: int

    @property
    def id(self) -> str:
        kind = "VALID" if isinstance(self.example, Valid) else "INVALID"
        return f"{self.rule.CODE}-{kind}-{self.index}"


def cases(rules) -> Iterator[ExampleCase]:
    for rule in rules:
        for i, example in enumerate(rule.VALID):
            yield ExampleCase(rule, example, i)
        for i, example in enumerate(rule.INVALID):
            yield ExampleCase(rule, example, i)


def _files(source) -> dict[str, str]:
    if isinstance(source, str):
        return {"example.py": textwrap.dedent(source).lstrip("\n")}
    return {path: textwrap.dedent(code).lstrip("\n") for path, code in source.items()}


def write_project(directory: Path, source) -> dict[str, str]:
    files = _files(source)
    for relative, code in files.items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code, encoding="utf-8")
    if "pyproject.toml" not in files:
        (directory / "pyproject.toml").write_text('[tool.otel-sqla-doctor]\nroot = true\n', encoding="utf-8")
    return files


def expected_lines(files: dict[str, str]) -> set[tuple[str, int]]:
    found = set()
    for relative, code in files.items():
        name = relative.rsplit("/", 1)[-1]
        launcher_file = name.startswith(("Dockerfile", "Procfile", "Makefile")) or name.endswith((".yaml", ".yml", ".sh"))
        if not name.endswith((".py", ".txt", ".toml", ".lock")) and not launcher_file:
            continue
        for number, line in enumerate(code.splitlines(), start=1):
            if MARKER.search(line):
                found.add((relative, number))
    return found


def run_case(case: ExampleCase) -> None:
    """Raise AssertionError when the rule disagrees with its example."""
    from otel_sqla_doctor.config import Config
    from otel_sqla_doctor.static.engine import Scanner

    example = case.example
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = write_project(root, example.code)
        config = Config(select=(case.rule.CODE,), root=root, options={case.rule.CODE: dict(example.options)} if example.options else {})
        scanner = Scanner(config, use_cache=False, jobs=1, cwd=root)
        result = scanner.scan([root])
        assert not result.errors, f"{case.id}: scan errors {result.errors}"
        got = {(f.path, f.line) for f in result.findings if f.code == case.rule.CODE}
        if isinstance(example, Valid):
            assert not got, f"{case.id}: expected no findings, got {sorted(got)}: {[f.message for f in result.findings]}"
            return
        want = expected_lines(files)
        assert want, f"{case.id}: an INVALID example must mark its lines with `# ERROR`"
        assert got == want, f"{case.id}: expected findings at {sorted(want)}, got {sorted(got)}"
        if example.expected_fix is not None:
            from otel_sqla_doctor.static.fixes import plan_fixes

            outcome = plan_fixes(result.findings, root, unsafe=example.unsafe_fixes)
            expected = _files(example.expected_fix) if isinstance(example.expected_fix, dict) else {next(iter(files)): textwrap.dedent(example.expected_fix).lstrip("\n")}
            for relative, code in expected.items():
                actual = outcome.changed.get(relative, files[relative])
                assert actual == code, f"{case.id}: fix of {relative} gave:\n{actual}\nexpected:\n{code}"
