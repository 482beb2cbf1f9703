"""One snapshot test per output format, plus SARIF validated against the official 2.1.0 schema.

Regenerate the snapshots after an intended change with `UPDATE_SNAPSHOTS=1 pytest tests/test_reports.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from cli_support import REPO, copy_fixture, run_cli

from otel_sqla_doctor import __version__

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
SARIF_SCHEMA = REPO.parent / "shared" / "reference" / "sarif-schema-2.1.0.json"
LOCAL_SARIF_SCHEMA = Path(__file__).resolve().parent / "fixtures" / "sarif-schema-2.1.0.json"


def _scan(tmp_path, fmt: str) -> str:
    project = copy_fixture("broken_wiring", tmp_path)
    result = run_cli(["scan", ".", "--select", "OSD101", "--format", fmt, "--no-cache"], cwd=project, env={"NO_COLOR": "1"})
    assert result.exit_code == 1
    return result.stdout.replace(__version__, "<version>")


def _check_snapshot(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), f"{name} changed; rerun with UPDATE_SNAPSHOTS=1 if intended"


@pytest.mark.parametrize("fmt,name", [("text", "scan.txt"), ("json", "scan.json"), ("github", "scan.github.txt")])
def test_snapshot(tmp_path, fmt, name):
    _check_snapshot(name, _scan(tmp_path, fmt))


def test_text_has_no_colour_when_not_a_terminal(tmp_path):
    assert "\x1b[" not in _scan(tmp_path, "text")


def test_colour_respects_no_color_and_force_color(monkeypatch):
    import io

    from otel_sqla_doctor.report.style import use_colour

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert use_colour(Tty()) is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_colour(Tty()) is False


def test_sarif_validates_and_describes_every_rule(tmp_path):
    sarif = json.loads(_scan(tmp_path, "sarif"))
    schema_path = SARIF_SCHEMA if SARIF_SCHEMA.exists() else LOCAL_SARIF_SCHEMA
    jsonschema.validate(sarif, json.loads(schema_path.read_text()))
    run = sarif["runs"][0]
    described = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    for result in run["results"]:
        rule = described[result["ruleId"]]
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"] == {"uri": "app/telemetry.py", "uriBaseId": "%SRCROOT%"}
        assert location["region"]["startLine"] == 8
    assert run["results"][0]["fixes"][0]["artifactChanges"][0]["replacements"][0]["insertedContent"]["text"] == "engine.sync_engine"
    _check_snapshot("scan.sarif-results.json", json.dumps(run["results"], indent=2) + "\n")


def test_sarif_with_errors_still_validates(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    (project / "app" / "broken.py").write_text("import sqlalchemy\nx = (\n")
    result = run_cli(["scan", ".", "--format", "sarif", "--select", "OSD101"], cwd=project)
    sarif = json.loads(result.stdout)
    schema_path = SARIF_SCHEMA if SARIF_SCHEMA.exists() else LOCAL_SARIF_SCHEMA
    jsonschema.validate(sarif, json.loads(schema_path.read_text()))
    notes = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert notes and "syntax error" in notes[0]["message"]["text"]
