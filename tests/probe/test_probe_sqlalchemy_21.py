"""The test-matrix entry for SQLAlchemy 2.1: installed into a throwaway directory (cached between
runs) and put first on PYTHONPATH, so the probe really imports 2.1 while the instrumentation
(0.66b1) declares `sqlalchemy < 2.1.0` (ground truth, Finding 0)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from probe_helpers import PROBE_APPS, clean_env, doctor

pytestmark = [pytest.mark.live, pytest.mark.slow]

SPEC = "sqlalchemy==2.1.*"


@pytest.fixture(scope="module")
def sqlalchemy_21(request, tmp_path_factory) -> tuple[str, dict[str, str]]:
    """(the imported 2.1 version, an environment that imports it first)."""
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    target = cache.mkdir("sqlalchemy-2.1") if cache else tmp_path_factory.mktemp("sqlalchemy-2.1")
    if not (target / "sqlalchemy").is_dir():
        install = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), SPEC],
            capture_output=True, text=True, timeout=300,
        )
        if install.returncode != 0:
            pytest.fail(f"could not install {SPEC}: {install.stderr[-2000:]}")
    env = clean_env(PYTHONPATH=str(target))
    imported = subprocess.run(
        [sys.executable, "-c", "import sqlalchemy; print(sqlalchemy.__version__, sqlalchemy.__file__)"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout.split()
    assert imported[0].startswith("2.1."), imported
    assert imported[1].startswith(str(target)), imported
    return imported[0], env


def test_osd502_fails_on_sqlalchemy_21_and_the_other_checks_still_run(sqlalchemy_21):
    version, env = sqlalchemy_21

    run = doctor("--format", "json", env=env)

    assert run.exit_code == 1
    range_check = run.check("OSD502")
    assert range_check["status"] == "fail"
    assert f"SQLAlchemy {version} is outside the range" in range_check["detail"]
    assert "'sqlalchemy >= 1.0.0, < 2.1.0'" in range_check["detail"]  # read from the installed instrumentation
    assert "skip_dep_check=True" in range_check["remediation"] and "sqlalchemy>=2.0,<2.1" in range_check["remediation"]
    # The probe instrumented its own engine with skip_dep_check=True, so everything else was checked.
    statuses = run.statuses()
    assert statuses["OSD503"] == statuses["OSD504"] == statuses["OSD507"] == "pass"
    assert f"sqlalchemy%%3A{version}" in run.check("OSD506")["detail"]


def test_users_app_on_sqlalchemy_21_gets_no_spans_and_the_probe_says_why(sqlalchemy_21):
    version, env = sqlalchemy_21

    run = doctor(
        "--engine", "shop.db:engine", "--setup", "shop.telemetry:setup", "--app-dir", str(PROBE_APPS / "good_app"),
        "--format", "json", env=env,
    )

    assert run.check("OSD502")["status"] == "fail"
    detail = run.check("OSD503")["detail"]
    assert run.check("OSD503")["status"] == "fail"
    assert f"refused SQLAlchemy {version}" in detail and "OSD107" in detail
    assert run.exit_code == 1
