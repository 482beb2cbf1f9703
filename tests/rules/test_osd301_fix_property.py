"""OSD301's fix, as a property: a second run changes nothing, and the result always parses.

Random SQL f-strings inside `text()` (value and identifier positions, quoted and unquoted
placeholders, patterns, format specs, existing `:binds`, doubled braces, triple quotes, nested
blocks, one-line and multi-line calls) go through the real scanner and `plan_fixes` twice.
"""

from __future__ import annotations

import ast
import tempfile
from pathlib import Path

import libcst as cst
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_sqla_doctor.config import Config
from otel_sqla_doctor.static.engine import Scanner
from otel_sqla_doctor.static.fixes import plan_fixes

EXPRESSIONS = st.sampled_from(["user_id", "name", "status", "user.id", "self.limit", "order", "user.profile.email"])
COLUMNS = st.sampled_from(["id", "name", "t.status", "created_at"])


@st.composite
def sql_piece(draw) -> str:
    expr = draw(EXPRESSIONS)
    col = draw(COLUMNS)
    kind = draw(st.sampled_from(["value", "quoted", "compare", "like", "identifier", "spec", "bind", "braces", "limit", "values", "cast"]))
    return {
        "value": f"{col} = {{{expr}}}",
        "quoted": f"{col} = '{{{expr}}}'",
        "compare": f"{col} >= {{{expr}}}",
        "like": f"{col} LIKE '%{{{expr}}}%'",
        "identifier": f"{col} IN (SELECT id FROM {{{expr}}})",
        "spec": f"{col} = {{{expr}!r}}",
        "bind": f"{col} = :existing",
        "braces": "meta = '{{{{k}}}}'",
        "limit": f"1 = 1 LIMIT {{{expr}}}",
        "values": f"{col} IN (VALUES ({{{expr}}}, {{{expr}}}))",
        "cast": f"{col} = {{{expr}}}::int",
    }[kind]


@st.composite
def module_source(draw) -> str:
    pieces = draw(st.lists(sql_piece(), min_size=1, max_size=4))
    sql = "SELECT * FROM users t WHERE " + " AND ".join(pieces)
    triple = draw(st.booleans())
    literal = f'f"""{sql}"""' if triple else f'f"{sql}"'
    multiline = draw(st.booleans())
    if multiline:
        call = f"text(\n                {literal}\n            )"
    else:
        call = f"text({literal})"
    tail = draw(st.sampled_from(["", ".bindparams(existing=1)", ".columns()"]))
    return (
        "from sqlalchemy import text\n"
        "\n"
        "\n"
        "class Repo:\n"
        "    def get(self, conn, user_id, name, status, order, user):\n"
        "        if conn is not None:\n"
        f"            stmt = {call}{tail}\n"
        "            return conn.execute(stmt)\n"
    )


def _fix_once(root: Path) -> str:
    config = Config(select=("OSD301",), root=root)
    result = Scanner(config, use_cache=False, jobs=1, cwd=root).scan([root])
    assert not result.errors, result.errors
    outcome = plan_fixes(result.findings, root, unsafe=True)
    assert not outcome.problems, outcome.problems
    return outcome.changed.get("repo.py", (root / "repo.py").read_text(encoding="utf-8"))


@settings(derandomize=True, max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(module_source())
def test_fix_is_idempotent_and_parses(source):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n", encoding="utf-8")
        path = root / "repo.py"
        path.write_text(source, encoding="utf-8")
        first = _fix_once(root)
        cst.parse_module(first)
        ast.parse(first)
        path.write_text(first, encoding="utf-8")
        second = _fix_once(root)
        assert second == first, f"second fix changed the code:\n{first}\n---\n{second}"
        if first != source:
            # A fixed statement has no f-string left, and every value became a bind parameter.
            assert 'f"' not in first and ".bindparams(" in first, first
