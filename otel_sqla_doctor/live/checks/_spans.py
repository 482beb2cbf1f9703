"""Finding the probe query's span(s) among what the recorder saw, and explaining their absence."""

from __future__ import annotations

from typing import Any

from otel_sqla_doctor.live.capture import SQLALCHEMY_SCOPE
from otel_sqla_doctor.live.observations import Observations


def query_spans(obs: Observations) -> list[Any]:
    """Ended SQLAlchemy spans of the probe query (not the `connect` span)."""
    if obs.query is None:
        return []
    return [
        span for span in obs.query.ended
        if span.instrumentation_scope and span.instrumentation_scope.name == SQLALCHEMY_SCOPE and span.name != "connect"
    ]


def started_query_spans(obs: Observations) -> list[Any]:
    if obs.query is None:
        return []
    return [s for s in obs.query.started if s.scope == SQLALCHEMY_SCOPE and s.name != "connect"]


def query_span(obs: Observations) -> Any | None:
    """The exported query span: the one whose parent is the probe's span, else the first."""
    spans = query_spans(obs)
    for span in spans:
        if span.parent is not None and obs.query and span.parent.span_id == obs.query.parent_span_id:
            return span
    return spans[0] if spans else None


def statement_of(span: Any, obs: Observations) -> str | None:
    for key in obs.env.statement_keys + ("db.statement", "db.query.text"):
        value = span.attributes.get(key)
        if value:
            return str(value)
    return None


def refused_by_version(obs: Observations) -> bool:
    """The user's instrument() refused the installed SQLAlchemy (outside its range): no tracer on
    the engine and no patched factory, which is what the refusal leaves behind."""
    wiring = obs.wiring
    return wiring.mode == "user" and wiring.tracers_on_engine == 0 and not obs.versions.in_range and not wiring.module_patched


def explain_missing_spans(obs: Observations) -> tuple[str, str]:
    """(why no query span exists, what to do), naming the static rule that predicts it."""
    wiring, env, versions = obs.wiring, obs.env, obs.versions
    if env.sdk_disabled or wiring.provider == "disabled":
        return ("OTEL_SDK_DISABLED=true makes every tracer a no-op (see OSD509)", "unset OTEL_SDK_DISABLED")
    if wiring.mode == "doctor":
        if wiring.instrument_error:
            return (f"instrument() raised {wiring.instrument_error}", "see the error; then re-run the probe")
        if env.sampler_drops_everything:
            return (f"OTEL_TRACES_SAMPLER={env.sampler} drops every trace (see OSD509)", "use a sampler that keeps traces, e.g. parentbased_always_on")
        return ("the instrumentation produced no span for a plain query", "please report this with the output of `pip freeze`")
    if wiring.tracers_on_engine == 0:
        if refused_by_version(obs):
            return (
                f"the instrumentation refused SQLAlchemy {versions.sqlalchemy_version} (outside {', '.join(versions.requirements)}) and instrumented nothing (OSD502, static rule OSD107 sqlalchemy-outside-instrumented-range)",
                "pin sqlalchemy<2.1, or pass skip_dep_check=True to SQLAlchemyInstrumentor().instrument(...)",
            )
        if wiring.setup_error and ("asynchronous events" in wiring.setup_error or "NotImplementedError" in wiring.setup_error):
            return (
                f"your setup raised {wiring.setup_error}: the AsyncEngine itself was passed to instrument() (static rule OSD101 async-engine-passed-to-instrumentor)",
                "pass the sync engine: SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, ...)",
            )
        if wiring.setup_error:
            return (
                f"your setup raised {wiring.setup_error}, so it stopped before anything instrumented this engine",
                "fix that error in the setup (the probe runs it as your service starts)",
            )
        if wiring.module_patched and not wiring.instrumentor_flag:
            return (
                "instrument() patched SQLAlchemy's engine factories but never finished (its exception was swallowed): the signature of passing the AsyncEngine itself (static rule OSD101 async-engine-passed-to-instrumentor)",
                "pass engine=engine.sync_engine, and do not swallow exceptions around instrument()",
            )
        if wiring.instrumentor_flag and any("already instrumented" in line for line in wiring.logs):
            return (
                "a second instrument() call was ignored (\"Attempting to instrument while already instrumented\"), so this engine got no tracer (static rule OSD103 instrumentor-called-twice)",
                "instrument once, with engines=[first.sync_engine, second.sync_engine]",
            )
        if wiring.instrumentor_flag:
            return (
                "SQLAlchemy is instrumented globally, but this engine was created before instrument() ran (or through a create_async_engine bound before it), so it only gets connect spans (static rule OSD102 engine-created-before-global-instrument)",
                "run instrument() before the module that creates the engine is imported, or pass engine=engine.sync_engine",
            )
        return (
            "nothing instrumented this engine: no instrument() call reached it (static rule OSD104 async-engine-never-instrumented)",
            "call SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine) in the setup, or start under opentelemetry-instrument",
        )
    if wiring.provider == "none":
        return (
            "the engine is instrumented, but no TracerProvider is set, so every span is a no-op (static rule OSD202 tracer-provider-missing)",
            "call trace.set_tracer_provider(TracerProvider(...)) in the setup, or pass tracer_provider= to instrument()",
        )
    if env.sampler_drops_everything:
        return (f"OTEL_TRACES_SAMPLER={env.sampler} drops every trace (see OSD509)", "use a sampler that keeps traces")
    return ("the engine has a tracer but the query produced no recorded span (custom sampler or provider?)", "check the TracerProvider's sampler")
