"""The live pass: `probe()` connects, runs a probe query through an instrumented engine (its own,
or the user's) and returns one result per check OSD501-OSD510.

`choose_interpreter()` finds the application's Python (`--python`, the active virtualenv, the
project's .venv, Poetry's env); `probe(python=...)` runs the checks there. Without `python` they
run in this process.

Importing this package is cheap; SQLAlchemy and OpenTelemetry load when `probe()` runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from otel_sqla_doctor.live.interpreter import Interpreter, choose_interpreter
from otel_sqla_doctor.live.model import CheckResult, ProbeEnvironment, ProbeReport, Status
from otel_sqla_doctor.live.packages import MissingPackage


def probe(
    dsn: str | None = None,
    *,
    engine_ref: str | None = None,
    setup_ref: str | None = None,
    app_dir: str | Path | Sequence[str | Path] | None = None,
    timeout: float = 5.0,
    python: str | Path | Interpreter | None = None,
    app_ref: str | None = None,
    lifespan: bool | None = None,
) -> ProbeReport:
    """Run the live checks; see `otel_sqla_doctor.live.runner.probe`."""
    from otel_sqla_doctor.live.runner import probe as run

    return run(dsn, engine_ref=engine_ref, setup_ref=setup_ref, app_dir=app_dir, timeout=timeout, python=python,
        app_ref=app_ref, lifespan=lifespan,
    )


async def probe_async(
    dsn: str | None = None,
    *,
    engine_ref: str | None = None,
    setup_ref: str | None = None,
    app_dir: str | Path | Sequence[str | Path] | None = None,
    timeout: float = 5.0,
    python: str | Path | Interpreter | None = None,
    app_ref: str | None = None,
    lifespan: bool | None = None,
) -> ProbeReport:
    """`probe()` for callers that already run an event loop."""
    from otel_sqla_doctor.live.runner import probe_async as run

    return await run(dsn, engine_ref=engine_ref, setup_ref=setup_ref, app_dir=app_dir, timeout=timeout, python=python,
        app_ref=app_ref, lifespan=lifespan,
    )


__all__ = [
    "CheckResult",
    "Interpreter",
    "MissingPackage",
    "ProbeEnvironment",
    "ProbeReport",
    "Status",
    "choose_interpreter",
    "probe",
    "probe_async",
]
