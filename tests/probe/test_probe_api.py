"""The library surface: `otel_sqla_doctor.live.probe()` returns plain frozen data."""

from __future__ import annotations

import dataclasses

import pytest

from live_support import run_script

pytestmark = pytest.mark.live


def test_probe_returns_a_frozen_report_whose_dict_is_the_json_shape():
    from otel_sqla_doctor.live import ProbeReport, Status, probe

    report = probe(timeout=5.0)

    assert isinstance(report, ProbeReport)
    assert report.exit_code == 0
    assert report.check("OSD503").status is Status.PASS
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.target = "changed"  # type: ignore[misc]
    as_dict = report.to_dict()
    assert list(as_dict) == ["version", "target", "scope", "environment", "checks"]  # scope: DSN mode says what it probed
    assert as_dict["environment"]["reason"] == "the calling Python process"
    assert list(as_dict["checks"][0]) == ["code", "name", "status", "detail", "remediation"]


def test_probe_inside_an_already_instrumented_process_leaves_its_instrumentation_alone():
    result = run_script(
        """
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        SQLAlchemyInstrumentor().instrument(tracer_provider=PROVIDER)  # the app's own, global

        from otel_sqla_doctor.live import probe
        first = probe()
        second = probe()

        from sqlalchemy.ext.asyncio import create_async_engine
        report(
            statuses=[{c.code: c.status.value for c in r.checks} for r in (first, second)],
            tracers=first.check("OSD507").detail,
            still_instrumented=SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry,
            factory_still_patched=hasattr(create_async_engine, "__wrapped__"),
        )
        """
    )

    for statuses in result["statuses"]:
        assert statuses["OSD503"] == statuses["OSD504"] == statuses["OSD507"] == "pass"
    assert "1 EngineTracer(s) on the engine" in result["tracers"]
    assert result["still_instrumented"] and result["factory_still_patched"]
