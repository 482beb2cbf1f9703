"""The rule docs are generated from the rules; a stale docs/rules.md fails here."""

from __future__ import annotations

from cli_support import REPO, run_cli, run_doctor

from otel_sqla_doctor.docs import rules_markdown
from otel_sqla_doctor.static.rules import all_rules


def test_docs_rules_md_is_up_to_date():
    current = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    assert current == rules_markdown(), "docs/rules.md is stale: run `python -m otel_sqla_doctor.docs`"


def test_rules_table_lists_every_rule():
    result = run_cli(["rules"])
    assert result.exit_code == 0
    for rule in all_rules():
        line = next(l for l in result.stdout.splitlines() if l.startswith(rule.CODE + " "))
        assert rule.NAME in line and rule.FAMILY in line
        assert ("on" if rule.DEFAULT_ENABLED else "off") in line.split()


def test_explain_works_for_every_code_and_name():
    for rule in all_rules():
        by_code = run_cli(["explain", rule.CODE])
        assert by_code.exit_code == 0
        assert by_code.stdout.startswith(f"{rule.CODE} {rule.NAME}")
        for heading in ("## What it does", "## Why is this bad?", "## Use instead"):
            assert heading in by_code.stdout
        assert run_cli(["explain", rule.NAME]).stdout == by_code.stdout


def test_explain_unknown_code_is_a_usage_error():
    result = run_doctor(["explain", "OSD000"])
    assert result.returncode == 2 and "unknown rule 'OSD000'" in result.stderr


def test_readme_rules_table_is_up_to_date():
    from otel_sqla_doctor.docs import README_BEGIN, with_readme_table

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert README_BEGIN in readme
    assert readme == with_readme_table(readme), "README rules table is stale: run `python -m otel_sqla_doctor.docs`"


def test_rule_catalog_is_up_to_date():
    """Rule selection reads the generated catalogue instead of importing the rules: it must list
    exactly the real rules (regenerate with `python -m otel_sqla_doctor.docs`)."""
    from otel_sqla_doctor.docs import rule_catalog_source

    catalog = REPO / "otel_sqla_doctor" / "static" / "rule_catalog.py"
    assert catalog.read_text(encoding="utf-8") == rule_catalog_source()


def test_a_warm_scan_does_not_import_the_rules(tmp_path):
    """When nothing changed, the decided findings are reused without importing LibCST or a rule."""
    import subprocess
    import sys

    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    (tmp_path / "app.py").write_text("from sqlalchemy import text\n\ndef q(conn, x):\n    return conn.execute(text(f'SELECT {x}'))\n")
    probe = (
        "import sys, runpy; sys.argv = ['doctor', 'scan', '.', '-q'];"
        "from otel_sqla_doctor.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in sys.modules if m == 'libcst' or m.startswith('otel_sqla_doctor.static.rules.')))"
    )
    first = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "'libcst'" in first.stdout, first.stdout + first.stderr  # the cold scan parses
    warm = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "LOADED []" in warm.stdout, warm.stdout + warm.stderr
