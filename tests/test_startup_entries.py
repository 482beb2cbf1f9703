"""Start-up simulation: a finding that depends on the start-up order names the entry module whose
start shows the problem, even when other entries (that never reach OpenTelemetry) sort first."""

from __future__ import annotations

import json
import textwrap

from cli_support import run_cli


def _write(root, files: dict[str, str]) -> None:
    for relative, code in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(code).lstrip("\n"))


def test_late_instrument_names_the_entry_that_starts_it(tmp_path):
    _write(tmp_path, {
        "pyproject.toml": "[tool.otel-sqla-doctor]\nroot = true\n",
        # An entry (nothing imports it) that never touches OpenTelemetry, sorting before main.py.
        "aaa_cli.py": "import sqlalchemy\nprint(sqlalchemy.__version__)\n",
        "main.py": """
            from app.db import engine
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            SQLAlchemyInstrumentor().instrument()
        """,
        "app/__init__.py": "",
        "app/db.py": """
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine("sqlite+aiosqlite://")
        """,
    })
    result = run_cli(["scan", ".", "--no-cache", "--select", "OSD102", "--format", "json"], cwd=tmp_path)
    (finding,) = json.loads(result.stdout)["findings"]
    assert finding["path"] == "main.py" and finding["line"] == 4
    assert "when started from main.py:" in finding["message"]
    assert "aaa_cli.py" not in finding["message"]
