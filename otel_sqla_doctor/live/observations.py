"""What the probe saw, gathered once; every check is a judgement over these facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otel_sqla_doctor.live.environment import OtelEnvironment


@dataclass
class VersionRange:
    """OSD502's facts: the installed SQLAlchemy against what the instrumentation declares."""

    sqlalchemy_version: str
    instrumentation_version: str | None  # None: opentelemetry-instrumentation-sqlalchemy missing
    requirements: tuple[str, ...] = ()
    in_range: bool = True


@dataclass
class Wiring:
    """How the probed engine is instrumented.

    mode "doctor": the probe instrumented its own engine; "user": the user's setup did.
    """

    mode: str
    tracers_on_engine: int = 0
    commenter_enabled: bool | None = None
    attribute_commenter_enabled: bool = False
    provider: str = "sdk"  # sdk | explicit | none | disabled
    instrumentor_flag: bool = False  # BaseInstrumentor's "already instrumented" singleton flag
    module_patched: bool = False  # sqlalchemy.ext.asyncio.create_async_engine wrapped by wrapt
    skip_dep_check_used: bool = False
    instrument_error: str | None = None  # doctor mode: what instrument() raised
    setup_error: str | None = None  # user mode: what the user's setup raised
    sync_engine: bool = False  # the user's object is a sync Engine
    logs: list[str] = field(default_factory=list)  # opentelemetry warnings/errors during setup
    # user mode: where the engine's spans go, as live objects for OSD510 to test:
    # (an SDK tracer feeding that pipeline, its active span processor, its TracerProvider or None)
    span_routes: list[tuple[Any, Any, Any]] = field(default_factory=list)


@dataclass
class ConnectOutcome:
    ok: bool
    detail: str
    remediation: str | None = None


@dataclass
class QueryOutcome:
    """The probe query: run under a parent span, with the SQL text the server received."""

    sentinel: str
    parent_trace_id: int
    parent_span_id: int
    error: str | None = None
    server_text: str | None = None
    server_text_source: str = ""
    started: list[Any] = field(default_factory=list)  # StartedSpan, during the query
    ended: list[Any] = field(default_factory=list)  # ReadableSpan, during the query


@dataclass
class CacheMeasurement:
    """OSD508: server-side prepares for N identical executions, without and with the commenter."""

    executions: int
    prepares_plain: int | None = None
    prepares_commented: int | None = None
    skipped: str | None = None
    error: str | None = None
    baseline: str = "with instrumentation suppressed"  # where the plain executions ran


@dataclass
class Observations:
    target: str
    backend: str | None
    driver: str | None
    env: OtelEnvironment
    versions: VersionRange
    wiring: Wiring
    timeout: float
    connect: ConnectOutcome | None = None
    query: QueryOutcome | None = None
    cache: CacheMeasurement | None = None
    environment: Any = None  # ProbeEnvironment: where the checks ran (None: not known)
    declared: Any = None  # DeclaredVerdict from the dependency files, read when that is the doctor's own

    @property
    def doctor_own_environment(self) -> bool:
        """The checks ran in the doctor's own environment because no application's was found:
        the installed versions are the doctor's, not the application's."""
        return self.environment is not None and not self.environment.application
