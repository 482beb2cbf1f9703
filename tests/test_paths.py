"""One notion of where a file runs (issue 11): service, test, example, script or migration."""

from __future__ import annotations

import json

import pytest

from cli_support import run_doctor
from otel_sqla_doctor.static import paths
from otel_sqla_doctor.static.paths import PathRole, role_of


@pytest.mark.parametrize(
    "path, role",
    [
        ("app/db.py", PathRole.SERVICE),
        ("src/shop/tools/search.py", PathRole.SERVICE),  # an agent's tools are the service
        ("tests/test_db.py", PathRole.TEST),
        ("app/conftest.py", PathRole.TEST),
        ("pkg/db_test.py", PathRole.TEST),
        ("backend/app/tests/utils/db.py", PathRole.TEST),
        ("examples/fastapi/main.py", PathRole.EXAMPLE),
        ("docs_src/tutorial/app.py", PathRole.EXAMPLE),
        ("examples/app/tests/helpers.py", PathRole.TEST),  # the innermost directory decides
        ("scripts/seed.py", PathRole.SCRIPT),
        ("alembic/versions/0001_init.py", PathRole.MIGRATION),
        ("app/db/migrations/env.py", PathRole.MIGRATION),
        ("src\\app\\tests\\x.py", PathRole.TEST),
    ],
)
def test_default_roles(path, role):
    assert role_of(path) is role


def test_configured_globs_win_over_the_defaults():
    try:
        paths.configure({"ops/**": "script", "tests/fixtures/app/**": "service"})
        assert role_of("ops/backfill.py") is PathRole.SCRIPT
        assert role_of("tests/fixtures/app/db.py") is PathRole.SERVICE
        assert role_of("tests/test_x.py") is PathRole.TEST
    finally:
        paths.configure(None)


def test_path_roles_in_pyproject_change_what_a_rule_reports(tmp_path):
    # OSD104 does not report engines of test modules; declared a service, the same file is reported.
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "app.py").write_text(
        "from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor\n"
        "from sqlalchemy.ext.asyncio import create_async_engine\n"
        "other = create_async_engine('postgresql+asyncpg://a@b/c')\n"
        "engine = create_async_engine('postgresql+asyncpg://a@b/d')\n"
        "SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)\n"
    )
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    plain = json.loads(run_doctor(["scan", ".", "-f", "json", "--no-cache", "--select", "OSD104"], cwd=tmp_path).stdout)
    assert plain["findings"] == []
    pyproject.write_text('[tool.otel-sqla-doctor]\nroot = true\npath-roles = { "tests/app.py" = "service" }\n')
    declared = json.loads(run_doctor(["scan", ".", "-f", "json", "--no-cache", "--select", "OSD104"], cwd=tmp_path).stdout)
    assert [(f["path"], f["line"]) for f in declared["findings"]] == [("tests/app.py", 3)]


def test_an_unknown_role_is_a_usage_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.otel-sqla-doctor]\npath-roles = { "ops/**" = "chores" }\n')
    proc = run_doctor(["scan", "."], cwd=tmp_path)
    assert proc.returncode == 2
    assert "path-roles.ops/**: expected one of service, test, example, script, migration, got 'chores'" in proc.stderr
    assert "Traceback" not in proc.stderr


SYNC_IN_ASYNC = """\
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

engine = create_engine("postgresql+psycopg2://app@db/app")


async def handler(user_id: int):
    with Session(engine) as session:
        return session.execute(text("select 1")).all()


async def interpolated(conn, user_id):
    return await conn.execute(text(f"select * from users where id = {user_id}"))
"""


def test_rules_report_only_in_the_roles_they_declare(tmp_path):
    # The same code: a service module gets OSD401 and OSD301; a test module neither (a blocked loop
    # and statement cardinality need production traffic); a migration OSD301 only.
    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    for relative in ("app/handlers.py", "tests/test_handlers.py", "migrations/versions/0001_x.py"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(SYNC_IN_ASYNC)
    report = json.loads(run_doctor(["scan", ".", "-f", "json", "--no-cache", "--select", "OSD301,OSD401"], cwd=tmp_path).stdout)
    found = sorted({(f["path"], f["code"]) for f in report["findings"]})
    assert found == [
        ("app/handlers.py", "OSD301"),
        ("app/handlers.py", "OSD401"),
        ("migrations/versions/0001_x.py", "OSD301"),
    ]


def test_explain_says_where_a_rule_reports():
    proc = run_doctor(["explain", "OSD401"])
    assert "## Where it reports\nIn service code; not in test, example, script, migration code." in proc.stdout


def test_cookiecutter_template_trees_are_not_scanned_as_python(tmp_path):
    # Jinja placeholders make every templated file a syntax error until the template is rendered.
    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    templated = tmp_path / "template" / "{{cookiecutter.project_slug}}" / "app"
    templated.mkdir(parents=True)
    (templated / "db.py").write_text("{% if cookiecutter.db %}\nfrom sqlalchemy import create_engine\n{% endif %}\n")
    (tmp_path / "hooks.py").write_text("import sqlalchemy\n")
    proc = run_doctor(["scan", ".", "-f", "json", "--no-cache"], cwd=tmp_path)
    report = json.loads(proc.stdout)
    assert report["errors"] == [] and proc.returncode == 0
    assert "(1 file scanned)" in run_doctor(["scan", ".", "--no-cache"], cwd=tmp_path).stdout


def test_a_command_line_tool_inside_the_package_is_a_script(tmp_path):
    # Azure's rag-postgres sample: a one-off argparse tool inside the service package, run by a
    # provisioning hook. Its f-string SQL is not the service's.
    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    package = tmp_path / "app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    tool = (
        "import argparse\nimport asyncio\nfrom sqlalchemy import text\n\n"
        "async def main(conn):\n"
        "    parser = argparse.ArgumentParser()\n    parser.add_argument('--identity')\n    args = parser.parse_args()\n"
        "    await conn.execute(text(f\"SELECT create_principal('{args.identity}')\"))\n\n"
        "if __name__ == '__main__':\n    asyncio.run(main(None))\n"
    )
    (package / "setup_role.py").write_text(tool)
    (package / "queries.py").write_text(tool.replace("if __name__ == '__main__':\n    asyncio.run(main(None))\n", ""))
    report = json.loads(run_doctor(["scan", ".", "-f", "json", "--no-cache", "--select", "OSD301"], cwd=tmp_path).stdout)
    assert [(f["path"], f["code"]) for f in report["findings"]] == [("app/queries.py", "OSD301")]
