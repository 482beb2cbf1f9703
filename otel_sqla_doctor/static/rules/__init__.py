"""The rules, one module each (`osdNNN_<name>.py`). Adding a rule touches one new file only.

A rule module holds its docs, examples and checks; what two rules share lives under `static/`
(`startup.py`, `launchers.py`, `patterns.py`, `paths.py`, `sql_strings.py`, ...). No rule module
imports another (tests/test_structure.py)."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from otel_sqla_doctor.static.rule import Rule

# Codes that were used once and must never be reused.
RETIRED_CODES: frozenset[str] = frozenset()


@lru_cache(maxsize=1)
def all_rules() -> tuple[type[Rule], ...]:
    found: list[type[Rule]] = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("osd"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Rule) and value is not Rule and value.CODE:
                if value.__module__ == module.__name__:
                    found.append(value)
    found.sort(key=lambda r: r.CODE)
    codes = [r.CODE for r in found]
    duplicated = {c for c in codes if codes.count(c) > 1}
    if duplicated or RETIRED_CODES & set(codes):
        raise RuntimeError(f"rule codes reused: {sorted(duplicated | (RETIRED_CODES & set(codes)))}")
    return tuple(found)


def rule_by_code(code: str) -> type[Rule] | None:
    for rule in all_rules():
        if rule.CODE == code.upper() or rule.NAME == code:
            return rule
    return None
