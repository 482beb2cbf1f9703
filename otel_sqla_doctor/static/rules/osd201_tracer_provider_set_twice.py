from __future__ import annotations

from typing import Iterable, Optional

from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.known import SET_TRACER_PROVIDER
from otel_sqla_doctor.static.paths import is_test
from otel_sqla_doctor.static.rule import Invalid, ProjectReport, Rule, Valid
from otel_sqla_doctor.static.summary import refs_in

GET_TRACER_PROVIDER = "opentelemetry.trace.get_tracer_provider"

# Decorators that do not hand a function to a framework (so they do not make it run by themselves).
_PLAIN_DECORATORS = frozenset(
    {
        "staticmethod",
        "classmethod",
        "property",
        "functools.cache",
        "functools.lru_cache",
        "functools.wraps",
        "functools.cached_property",
        "contextlib.contextmanager",
        "contextlib.asynccontextmanager",
        "typing.overload",
        "abc.abstractmethod",
    }
)


class TracerProviderSetTwice(Rule):
    """
    `opentelemetry.trace.set_tracer_provider(...)` reached a second time in one process.

    ## What it does
    Follows each entry point of the project (the modules nothing imports: the app, the worker,
    each script) through its imports and the project functions it calls at start-up, plus the
    startup hooks and lifespans it registers, and reports every `set_tracer_provider` call that
    runs after another one already did. The message names the call that won.

    ## Why is this bad?
    The global tracer provider can be set once. The second call does nothing but log a WARNING,
    `Overriding of current TracerProvider is not allowed`: the provider it was given, with its
    resource, sampler and exporters, never receives a span, while the first provider keeps
    getting all of them. The service looks configured and exports to the wrong place (or to a
    console exporter someone left in a helper), and the only trace of it is one log line at
    start-up.

    ## Example
    ```python
    # app/telemetry.py
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)

    # app/main.py
    from app import telemetry  # noqa: F401
    trace.set_tracer_provider(TracerProvider())  # ignored: the first provider wins
    ```

    ## Use instead
    Set the provider in one place, once, and add every processor to that provider:
    ```python
    # app/telemetry.py
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)

    # app/main.py
    from app.telemetry import provider
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    ```

    ## Known problems
    - Calls in `if/else` arms (and in a `try` body and its `except` handler) are alternatives:
      only one runs, so they are never reported against each other. This includes helpers
      chosen by a branch (`if prod: setup_otlp() else: setup_console()`).
    - A call guarded by a look at the current provider (`if isinstance(trace.get_tracer_provider(),
      ProxyTracerProvider): ...`, or `get_tracer_provider()` called earlier in the same function
      or in its direct caller) is not reported: it does not override.
    - Test modules (`tests/`, `test_*.py`, `conftest.py`) are ignored: they run under pytest
      and usually install their own provider on purpose.
    - One call site reached twice (a `setup_tracing()` helper called from two places) is not
      reported: such helpers often keep an "already configured" flag we do not model.
    - Functions that only a framework calls are followed when they are decorated (`@app.on_event`)
      or passed to a call (`FastAPI(lifespan=lifespan)`); two lifespans of two different apps in
      the same process are assumed to both run.
    - Providers set by third-party configurators (`configure_azure_monitor()`, `logfire.configure()`,
      the `opentelemetry-instrument` launcher with `opentelemetry-distro`) are not counted as the
      first call.

    ## References
    - reproduced by tests/rules/test_osd201_live.py in the otel-sqla-doctor repository: the second call logs `Overriding of current TracerProvider is not
      allowed` and provider #2 gets no spans
    - `opentelemetry.trace.set_tracer_provider` (opentelemetry-api, `_TRACER_PROVIDER_SET_ONCE`)
    """

    CODE = "OSD201"
    NAME = "tracer-provider-set-twice"
    FAMILY = "sdk"
    SEVERITY = Severity.ERROR
    MESSAGE = (
        "`set_tracer_provider()` runs after a TracerProvider was already set: this call is ignored "
        "with only a WARNING ('Overriding of current TracerProvider is not allowed'), and its "
        "provider and exporters receive no spans"
    )
    HINT = "set the provider once, in one place, and add span processors to that provider instead"
    PREFILTER = ()

    @classmethod
    def check_project(cls, index, options: dict) -> Iterable[ProjectReport]:
        sites = {
            (facts.path, site.line)
            for facts, site in index.all_calls()
            if site.callee == SET_TRACER_PROVIDER and not is_test(facts.path)
        }
        if len(sites) < 2:  # one call site cannot conflict with itself (see Known problems)
            return
        seen: set[tuple[str, int]] = set()
        for timeline in index.timelines():
            setters = [
                e
                for e in timeline
                if e.kind == "call"
                and e.site is not None
                and e.site.callee == SET_TRACER_PROVIDER
                and not is_test(e.module.path)
            ]
            if any(e.late for e in setters):
                registered = _registered_functions(index, {e.module.path: e.module for e in timeline}.values())
                setters = [e for e in setters if not e.late or e.root in registered]
            for j, event in enumerate(setters):
                where = (event.module.path, event.site.line)
                if where in seen or _guarded(index, event):
                    continue
                first = _first_conflicting(event, setters[:j])
                if first is None:
                    continue
                seen.add(where)
                site = event.site
                yield ProjectReport(
                    path=event.module.path,
                    line=site.line,
                    column=site.column,
                    end_line=site.end_line,
                    end_column=site.end_column,
                    message=(
                        f"`set_tracer_provider()` runs after {first.module.path}:{first.site.line} already set "
                        "the TracerProvider: this call is ignored with only a WARNING ('Overriding of "
                        "current TracerProvider is not allowed'), and its provider and exporters receive no spans"
                    ),
                )


def _first_conflicting(event, earlier) -> Optional[object]:
    for other in earlier:
        if (other.module.path, other.site.line) == (event.module.path, event.site.line):
            continue  # the same call reached twice: see Known problems
        if _exclusive(other.branches, event.branches):
            continue
        return other
    return None


def _exclusive(a: tuple, b: tuple) -> bool:
    """Two events in different arms of the same if/else or try/except never both happen."""
    arms = {}
    for label in a:
        key, _, arm = str(label).rpartition(":")
        arms[key] = arm
    for label in b:
        key, _, arm = str(label).rpartition(":")
        if key in arms and arms[key] != arm:
            return True
    return False


def _guarded(index, event) -> bool:
    """`get_tracer_provider()` is looked at before the call, in its function or in a direct caller."""
    site = event.site
    for call in event.module.calls:
        if call.callee == GET_TRACER_PROVIDER and call.scope == site.scope and call.order < site.order:
            return True
    if not site.scope:
        return False
    hit = index.function(site.scope)
    if hit is not None and any(c == GET_TRACER_PROVIDER and o < site.order for o, c in hit[1].calls):
        return True

    def is_scope(callee: str) -> bool:
        target = index.function(callee) if callee else None
        return target is not None and target[1].qualname == site.scope

    # One level up: `if isinstance(trace.get_tracer_provider(), ProxyTracerProvider): setup()`.
    for _, caller in index.functions.values():
        orders = [o for o, c in caller.calls if is_scope(c)]
        if orders and any(c == GET_TRACER_PROVIDER and o < max(orders) for o, c in caller.calls):
            return True
    for module in index.modules:
        calls = [c for c in module.calls if not c.scope]
        orders = [c.order for c in calls if is_scope(c.callee)]
        if orders and any(c.callee == GET_TRACER_PROVIDER and c.order < max(orders) for c in calls):
            return True
    return False


def _registered_functions(index, modules) -> set[str]:
    """Functions a framework will call: with a decorator that registers them, or passed to a call."""
    registered: set[str] = set()
    for facts in modules:
        for qualname, function in facts.functions.items():
            for decorator in function.decorators:
                names = {index.qualname_of(("ref", r)) or r for r in refs_in(decorator)}
                if not names or not names <= _PLAIN_DECORATORS:
                    registered.add(qualname)
        for call in facts.calls:
            for ref in refs_in(call.summary[2:]):
                hit = index.function(ref)
                if hit is not None:
                    registered.add(hit[1].qualname)
    return registered


TracerProviderSetTwice.VALID = [
    Valid(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        trace.set_tracer_provider(provider)
        """,
        note="set once",
    ),
    Valid(
        """
        import os
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        if os.getenv("OTEL_EXPORTER_OTLP_ENDPOINT"):
            provider = TracerProvider()
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            trace.set_tracer_provider(provider)
        else:
            provider = TracerProvider()
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
            trace.set_tracer_provider(provider)
        """,
        note="if/else arms are alternatives",
    ),
    Valid(
        {
            "app/__init__.py": "",
            "app/telemetry.py": """
                from opentelemetry import trace
                from opentelemetry.sdk.trace import TracerProvider

                def setup_otlp():
                    trace.set_tracer_provider(TracerProvider())

                def setup_console():
                    trace.set_tracer_provider(TracerProvider())

                def configure(production: bool):
                    if production:
                        setup_otlp()
                    else:
                        setup_console()
            """,
            "app/main.py": """
                import os
                from app.telemetry import configure

                configure(os.getenv("ENV") == "prod")
            """,
        },
        note="helpers chosen by a branch",
    ),
    Valid(
        {
            "app/__init__.py": "",
            "app/telemetry.py": """
                from opentelemetry import trace
                from opentelemetry.sdk.trace import TracerProvider

                trace.set_tracer_provider(TracerProvider())
            """,
            "app/main.py": "from app import telemetry\n",
            "tests/conftest.py": """
                import pytest
                from opentelemetry import trace
                from opentelemetry.sdk.trace import TracerProvider

                trace.set_tracer_provider(TracerProvider())

                from app import main
            """,
        },
        note="the test harness sets its own provider",
    ),
    Valid(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        def ensure_provider() -> None:
            if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
                trace.set_tracer_provider(TracerProvider())

        trace.set_tracer_provider(TracerProvider())
        ensure_provider()
        """,
        note="guarded by a look at the current provider",
    ),
    Valid(
        {
            "telemetry.py": """
                from opentelemetry import trace
                from opentelemetry.sdk.trace import TracerProvider

                def init_api_tracing():
                    trace.set_tracer_provider(TracerProvider())

                def init_worker_tracing():
                    trace.set_tracer_provider(TracerProvider())
            """,
            "api.py": """
                from telemetry import init_api_tracing

                init_api_tracing()
            """,
            "worker.py": """
                from telemetry import init_worker_tracing

                init_worker_tracing()
            """,
        },
        note="two processes, one provider each",
    ),
]

TracerProviderSetTwice.INVALID = [
    Invalid(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        trace.set_tracer_provider(TracerProvider())
        trace.set_tracer_provider(TracerProvider())  # ERROR
        """,
    ),
    Invalid(
        {
            "app/__init__.py": "",
            "app/telemetry.py": """
                from opentelemetry import trace as otel_trace
                from opentelemetry.sdk.trace import TracerProvider as SDKProvider
                from opentelemetry.sdk.trace.export import BatchSpanProcessor
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

                def setup_tracing(service: str) -> SDKProvider:
                    provider = SDKProvider()
                    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
                    otel_trace.set_tracer_provider(provider)
                    return provider
            """,
            "app/main.py": """
                from fastapi import FastAPI
                from opentelemetry.trace import set_tracer_provider as install
                from opentelemetry.sdk.trace import TracerProvider
                from .telemetry import setup_tracing

                setup_tracing("orders")
                install(TracerProvider())  # ERROR
                app = FastAPI()
            """,
        },
        note="across modules, aliased imports",
    ),
    Invalid(
        {
            "app/__init__.py": "",
            "app/telemetry.py": """
                from opentelemetry import trace
                from opentelemetry.sdk.trace import TracerProvider

                trace.set_tracer_provider(TracerProvider())
            """,
            "app/main.py": """
                from contextlib import asynccontextmanager
                from fastapi import FastAPI
                from opentelemetry import trace
                from opentelemetry.sdk.trace import TracerProvider
                import app.telemetry

                @asynccontextmanager
                async def lifespan(app):
                    trace.set_tracer_provider(TracerProvider())  # ERROR
                    yield

                app = FastAPI(lifespan=lifespan)
            """,
        },
        note="module-level provider, then another in the lifespan",
    ),
]
