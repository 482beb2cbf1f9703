"""[tool.otel-sqla-doctor] configuration, through the CLI: selection, excludes, per-file
ignores, severity, options, errors on unknown keys, and flags winning over files."""

from __future__ import annotations

import json
import textwrap

from cli_support import copy_fixture, run_cli, run_doctor


def _configure(project, body: str) -> None:
    (project / "pyproject.toml").write_text(textwrap.dedent(body))


def _codes(project, *args):
    result = run_cli(["scan", ".", "--format", "json", *args], cwd=project)
    data = json.loads(result.stdout)
    return [(f["path"], f["code"], f["severity"]) for f in data["findings"]]


def test_select_by_prefix_and_name_and_ignore(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    _configure(project, '[tool.otel-sqla-doctor]\nroot = true\nselect = ["async-engine-passed-to-instrumentor"]\n')
    assert _codes(project) == [("app/telemetry.py", "OSD101", "error")]
    _configure(project, '[tool.otel-sqla-doctor]\nroot = true\nselect = ["OSD1"]\nignore = ["OSD101"]\n')
    assert all(code != "OSD101" for _, code, _ in _codes(project))


def test_cli_flags_win_over_the_file(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    _configure(project, '[tool.otel-sqla-doctor]\nroot = true\nignore = ["OSD101"]\n')
    # The file's ignore still applies: nothing is left to check, which is said, not passed green.
    emptied = run_doctor(["scan", ".", "--select", "OSD101"], cwd=project)
    assert emptied.returncode == 2 and "no rule is selected" in emptied.stderr
    _configure(project, '[tool.otel-sqla-doctor]\nroot = true\nselect = ["OSD101", "OSD102"]\n')
    assert _codes(project, "--ignore", "OSD101") == []
    assert _codes(project, "--select", "async-engine-passed-to-instrumentor") == [("app/telemetry.py", "OSD101", "error")]


def test_exclude_and_per_file_ignores(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    _configure(project, '[tool.otel-sqla-doctor]\nroot = true\nselect = ["OSD101"]\nextend-exclude = ["app/telemetry.py"]\n')
    assert _codes(project) == []
    _configure(project, '[tool.otel-sqla-doctor]\nroot = true\nselect = ["OSD101"]\n[tool.otel-sqla-doctor.per-file-ignores]\n"app/tele*.py" = ["OSD1"]\n')
    assert _codes(project) == []


def test_severity_override(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    _configure(project, '[tool.otel-sqla-doctor]\nroot = true\nselect = ["OSD101"]\n[tool.otel-sqla-doctor.severity]\nOSD101 = "info"\n')
    assert _codes(project) == [("app/telemetry.py", "OSD101", "info")]


def test_config_found_walking_up_and_root_stops_the_walk(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    _configure(project, '[tool.otel-sqla-doctor]\nroot = true\nselect = ["OSD101"]\n')
    (tmp_path / "pyproject.toml").write_text('[tool.otel-sqla-doctor]\nignore = ["OSD101"]\n')
    assert _codes(project / "app") == [("telemetry.py", "OSD101", "error")]


def test_unknown_keys_codes_and_options_are_errors_naming_the_key(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    cases = {
        '[tool.otel-sqla-doctor]\nselct = ["OSD101"]\n': "unknown key [tool.otel-sqla-doctor] 'selct'",
        '[tool.otel-sqla-doctor]\nselect = ["OSD999"]\n': "select: unknown rule code or name 'OSD999'",
        '[tool.otel-sqla-doctor.options.OSD101]\nbogus = true\n': "options.OSD101: unknown option 'bogus'",
        '[tool.otel-sqla-doctor.severity]\nOSD101 = "fatal"\n': "severity.OSD101",
        '[tool.otel-sqla-doctor\n': "invalid TOML",
    }
    for body, expected in cases.items():
        _configure(project, body)
        result = run_doctor(["scan", "."], cwd=project)
        assert result.returncode == 2, body
        assert expected in result.stderr, (body, result.stderr)
        assert "Traceback" not in result.stderr


def test_explicit_config_file(tmp_path):
    project = copy_fixture("broken_wiring", tmp_path)
    other = tmp_path / "other.toml"
    other.write_text('[tool.otel-sqla-doctor]\nselect = ["OSD101"]\nextend-exclude = ["app/telemetry.py"]\n')
    assert _codes(project, "--config", str(other)) == []


def test_exclude_globs_match_like_fnmatch_on_the_path_its_parents_and_components():
    """The compiled matcher agrees with the plain definition (fnmatch on the path, on
    `pattern/*`, and on each component for a bare name) over many random paths and patterns."""
    import fnmatch
    import random

    from otel_sqla_doctor.config import DEFAULT_EXCLUDE
    from otel_sqla_doctor.static.discovery import matches_any

    def reference(relative, patterns):
        for pattern in (p.rstrip("/") for p in patterns):
            if fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(relative, pattern + "/*"):
                return True
            if "/" not in pattern and any(fnmatch.fnmatch(part, pattern) for part in relative.split("/")):
                return True
        return False

    parts = ["src", "app", "migrations", "tests", "a.py", "x_test.py", ".venv", "build", "node_modules", "db.py"]
    patterns = [*DEFAULT_EXCLUDE, "tests/*", "*_test.py", "src/app", "migrations/", "b?ild", "[ab]*.py"]
    rng = random.Random(7)
    for _ in range(5000):
        relative = "/".join(rng.choice(parts) for _ in range(rng.randint(1, 4)))
        chosen = tuple(rng.sample(patterns, rng.randint(0, 5)))
        assert matches_any(relative, chosen) == reference(relative, chosen), (relative, chosen)
