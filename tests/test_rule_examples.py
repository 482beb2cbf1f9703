"""Every rule's VALID and INVALID examples, run through the real scanner."""

import pytest

from otel_sqla_doctor.static.rules import all_rules
from otel_sqla_doctor.static.testing import cases, run_case

CASES = list(cases(all_rules()))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_example(case):
    run_case(case)


@pytest.mark.parametrize("rule", all_rules(), ids=[r.CODE for r in all_rules()])
def test_rule_is_documented_and_exemplified(rule):
    assert rule.NAME and rule.NAME == rule.NAME.lower() and " " not in rule.NAME
    assert rule.MESSAGE and rule.HINT, "a message says what is wrong; the hint says the fix"
    for heading in ("What it does", "Why is this bad?", "Example", "Use instead", "Known problems", "References"):
        assert rule.section(heading), f"{rule.CODE} docs lack '## {heading}'"
    assert rule.VALID and rule.INVALID, "every rule needs good and bad examples"
    if rule.FIX:
        assert rule.section("Fix safety"), f"{rule.CODE} has a fix but no '## Fix safety'"
        assert any(e.expected_fix is not None for e in rule.INVALID), "a fixable rule shows a fix"
