"""OSD509: OTEL_* variables that switch the database spans off, seen through a real probe."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.live


def test_sdk_disabled_fails_the_span_checks_and_says_why(invoke):
    run = invoke("--format", "json", env={"OTEL_SDK_DISABLED": "true"})

    assert run.exit_code == 1
    assert run.check("OSD509")["status"] == "fail"
    assert "OTEL_SDK_DISABLED=true" in run.check("OSD509")["detail"]
    assert run.check("OSD503")["status"] == "fail"
    assert "OTEL_SDK_DISABLED=true" in run.check("OSD503")["detail"] and "OSD509" in run.check("OSD503")["detail"]


def test_always_off_sampler_drops_the_span_and_the_comment(invoke):
    run = invoke("--format", "json", env={"OTEL_TRACES_SAMPLER": "always_off"})

    assert run.check("OSD509")["status"] == "fail"
    assert run.check("OSD503")["status"] == "fail"
    assert "OTEL_TRACES_SAMPLER=always_off" in run.check("OSD503")["detail"]
    # The SQL reached sqlite without a comment: reported, but not as a second failure.
    assert run.check("OSD506")["status"] == "skip"
    assert "/*" not in run.check("OSD506")["detail"]


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"OTEL_TRACES_EXPORTER": "none"}, "OTEL_TRACES_EXPORTER=none"),
        ({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "redis, sqlalchemy"}, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=redis,sqlalchemy"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, "OTEL_TRACES_SAMPLER=traceidratio (OTEL_TRACES_SAMPLER_ARG=0)"),
    ],
)
def test_variables_that_turn_spans_off_fail_osd509(invoke, env, fragment):
    run = invoke("--format", "json", env=env)

    assert run.check("OSD509")["status"] == "fail"
    assert fragment in run.check("OSD509")["detail"]
    assert run.check("OSD509")["remediation"]
    assert run.exit_code == 1


def test_ratio_sampler_above_zero_passes_and_is_mentioned(invoke):
    run = invoke("--format", "json", env={"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"})

    assert run.check("OSD509")["status"] == "pass"
    assert "sampler parentbased_traceidratio 0.25" in run.check("OSD509")["detail"]
