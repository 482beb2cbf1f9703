"""The live pass: `probe()` connects, runs a probe query through an instrumented engine (its own,
or the user's) and returns one result per check OSD501-OSD510.

Importing this package is cheap; SQLAlchemy and OpenTelemetry load when `probe()` runs.
"""

from __future__ import annotations

from pathlib import Path

from otel_sqla_doctor.live.model import CheckResult, ProbeReport, Status


def probe(
    dsn: str | None = None,
    *,
    engine_ref: str | None = None,
    setup_ref: str | None = None,
    app_dir: str | Path | None = None,
    timeout: float = 5.0,
) -> ProbeReport:
    """Run the live checks; see `otel_sqla_doctor.live.runner.probe`."""
    from otel_sqla_doctor.live.runner import probe as run

    return run(dsn, engine_ref=engine_ref, setup_ref=setup_ref, app_dir=app_dir, timeout=timeout)


async def probe_async(
    dsn: str | None = None,
    *,
    engine_ref: str | None = None,
    setup_ref: str | None = None,
    app_dir: str | Path | None = None,
    timeout: float = 5.0,
) -> ProbeReport:
    """`probe()` for callers that already run an event loop."""
    from otel_sqla_doctor.live.runner import probe_async as run

    return await run(dsn, engine_ref=engine_ref, setup_ref=setup_ref, app_dir=app_dir, timeout=timeout)


__all__ = ["CheckResult", "ProbeReport", "Status", "probe", "probe_async"]
