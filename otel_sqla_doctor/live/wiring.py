"""How an engine is (or is not) instrumented, read from the live objects.

The instrumentation leaves fingerprints that tell the wiring mistakes apart: an EngineTracer
registered as a `before_cursor_execute` listener on the sync engine (one per tracer), the
instrumentor's singleton flag, and wrapt wrappers on the module-level engine factories. A
failed `instrument(engine=async_engine)` patches the factories and then raises before it sets
the flag (tests/rules/test_osd101_live.py): wrappers present, flag off, no tracer on the engine.
"""

from __future__ import annotations

from typing import Any

from otel_sqla_doctor.live.observations import VersionRange, Wiring


def read_version_range() -> VersionRange:
    """OSD502's facts, from the installed instrumentation's own declaration (`_instruments`)."""
    import sqlalchemy

    try:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.instrumentation.sqlalchemy.version import __version__ as instrumentation_version
    except ImportError:
        return VersionRange(sqlalchemy.__version__, None)
    from packaging.requirements import Requirement

    requirements = tuple(SQLAlchemyInstrumentor().instrumentation_dependencies())
    in_range = True
    for text in requirements:
        requirement = Requirement(text)
        if requirement.name.lower() == "sqlalchemy":
            in_range = in_range and requirement.specifier.contains(sqlalchemy.__version__, prereleases=True)
    return VersionRange(sqlalchemy.__version__, instrumentation_version, requirements, in_range)


def engine_tracers(sync_engine: Any) -> list[Any]:
    """The EngineTracers listening on this engine: normally one; two is the #2149 double tracer."""
    try:
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    except ImportError:
        return []
    tracers = []
    for listener in sync_engine.dispatch.before_cursor_execute:
        owner = getattr(listener, "__self__", None)
        if isinstance(owner, EngineTracer) and owner not in tracers:
            tracers.append(owner)
    return tracers


_TRACER_EVENTS = ("before_cursor_execute", "after_cursor_execute", "handle_error", "connect", "close", "checkin", "checkout")


def detach_tracers(sync_engine: Any, keep: Any = None) -> None:
    """Remove every EngineTracer's listeners from this engine (and its pool), except `keep`'s.
    Found by the listeners' owner, not by attribute names, which differ between releases. The
    module-level after-execute/error listeners end only spans a tracer started, and stay."""
    from sqlalchemy import event
    from sqlalchemy.exc import InvalidRequestError

    try:
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    except ImportError:
        return
    for identifier in _TRACER_EVENTS:
        target = sync_engine.pool if identifier in ("connect", "close", "checkin", "checkout") else sync_engine
        listeners = getattr(target.dispatch, identifier, ())
        for listener in list(listeners):
            owner = getattr(listener, "__self__", None)
            if isinstance(owner, EngineTracer) and owner is not keep:
                try:
                    event.remove(sync_engine, identifier, listener)
                except InvalidRequestError:
                    pass


def real_tracer(tracer: Any) -> Any:
    """A ProxyTracer resolves to the SDK tracer once a provider is set, else to a no-op tracer."""
    from opentelemetry.trace import ProxyTracer

    return tracer._tracer if isinstance(tracer, ProxyTracer) else tracer


def factories_patched() -> bool:
    import sqlalchemy.ext.asyncio

    return hasattr(sqlalchemy.ext.asyncio.create_async_engine, "__wrapped__")


def instrumentor_flag() -> bool:
    try:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    except ImportError:
        return False
    return bool(SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry)


def attach_to_user_provider(sync_engine: Any, recorder: Any) -> tuple[Wiring, Any]:
    """Add `recorder` to the provider(s) the engine's spans go to; returns the wiring facts and
    a tracer for the probe's parent span (from the user's provider when there is one)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import Tracer as SdkTracer
    from opentelemetry.sdk.trace import TracerProvider as SdkProvider

    tracers = engine_tracers(sync_engine)
    wiring = Wiring(
        mode="user",
        tracers_on_engine=len(tracers),
        commenter_enabled=any(t.enable_commenter for t in tracers) if tracers else None,
        attribute_commenter_enabled=any(getattr(t, "enable_attribute_commenter", False) for t in tracers),
        instrumentor_flag=instrumentor_flag(),
        module_patched=factories_patched(),
    )
    attached: set[int] = set()
    global_provider = trace.get_tracer_provider()
    parent_tracer = None
    if isinstance(global_provider, SdkProvider):
        if getattr(global_provider, "_disabled", False):
            wiring.provider = "disabled"
        global_provider.add_span_processor(recorder)
        attached.add(id(global_provider._active_span_processor))
        parent_tracer = global_provider.get_tracer("otel-sqla-doctor")
        wiring.span_routes.append((parent_tracer, global_provider._active_span_processor, global_provider))
    explicit = False
    for engine_tracer in tracers:
        tracer = real_tracer(engine_tracer.tracer)
        processors = getattr(tracer, "span_processor", None) if isinstance(tracer, SdkTracer) else None
        if processors is not None and id(processors) not in attached:
            processors.add_span_processor(recorder)
            attached.add(id(processors))
            explicit = True
            wiring.span_routes.append((tracer, processors, None))
    if wiring.provider != "disabled":
        if isinstance(global_provider, SdkProvider):
            wiring.provider = "sdk"
        else:
            wiring.provider = "explicit" if explicit else "none"
    return wiring, parent_tracer
