"""`doctor explain`, `doctor rules` and docs/ never cite documents users of the installed package cannot see."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from otel_sqla_doctor import docs as doctor_docs

INVISIBLE = re.compile(r"ground[ -]truth|\.\./shared|shared/reference", re.IGNORECASE)
ROOT = Path(__file__).resolve().parent.parent


def _codes() -> list[str]:
    return [row["code"] for row in doctor_docs.all_rows()]


@pytest.mark.parametrize("code", _codes())
def test_explain_cites_only_what_users_can_see(code):
    text = doctor_docs.explain(code)
    assert not INVISIBLE.findall(text), f"{code} cites a document users cannot see: {INVISIBLE.findall(text)}"


def test_rule_and_check_docs_and_messages():
    from otel_sqla_doctor.static.rules import all_rules

    for rule in all_rules():
        for text in (rule.documentation(), rule.summary(), getattr(rule, "MESSAGE", "") or "", getattr(rule, "HINT", "") or ""):
            assert not INVISIBLE.search(text), (rule.CODE, text)
    for item in doctor_docs._other_checks():
        assert not INVISIBLE.search(item["docs"] + item["summary"]), item["code"]


def test_generated_docs_and_package_sources():
    generated = doctor_docs.rules_markdown()
    assert not INVISIBLE.search(generated)
    offenders = []
    for path in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md", *sorted((ROOT / "otel_sqla_doctor").rglob("*.py"))]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if INVISIBLE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_references_point_at_the_repositorys_own_tests():
    """Where a rule says a test reproduces it, that test exists."""
    from otel_sqla_doctor.static.rules import all_rules

    for rule in all_rules():
        for name in re.findall(r"tests/rules/(test_\w+\.py)", rule.documentation()):
            assert (ROOT / "tests" / "rules" / name).is_file(), (rule.CODE, name)
