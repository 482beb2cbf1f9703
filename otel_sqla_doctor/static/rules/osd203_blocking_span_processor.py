from __future__ import annotations

from typing import Iterable, Optional

from otel_sqla_doctor.static.paths import PathRole, is_test, role_of
from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.known import canonical
from otel_sqla_doctor.static.rule import Invalid, ProjectReport, Rule, Valid
from otel_sqla_doctor.static.summary import kwarg, positional

SIMPLE_SPAN_PROCESSOR = "opentelemetry.sdk.trace.export.SimpleSpanProcessor"

# Span exporters whose export() is a network round trip, by the qualified names users import.
NETWORK_EXPORTERS: dict[str, str] = {
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter.OTLPSpanExporter": "OTLP/gRPC",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter.OTLPSpanExporter": "OTLP/HTTP",
    "opentelemetry.exporter.zipkin.json.ZipkinExporter": "Zipkin",
    "opentelemetry.exporter.zipkin.proto.http.ZipkinExporter": "Zipkin",
    "opentelemetry.exporter.jaeger.thrift.JaegerExporter": "Jaeger",
    "opentelemetry.exporter.jaeger.proto.grpc.JaegerExporter": "Jaeger",
    "opentelemetry.exporter.cloud_trace.CloudTraceSpanExporter": "Google Cloud Trace",
    "azure.monitor.opentelemetry.exporter.AzureMonitorTraceExporter": "Azure Monitor",
}


class BlockingSpanProcessor(Rule):
    """
    `SimpleSpanProcessor` around a network exporter in a service that runs async code.

    ## What it does
    Finds `SimpleSpanProcessor(exporter)` where the exporter is an OTLP (gRPC or HTTP),
    Zipkin, Jaeger, Google Cloud Trace or Azure Monitor span exporter, given directly, through
    a variable, a factory function or another module, in a project where at least one
    (non-test) module defines an `async def`.

    ## Why is this bad?
    `SimpleSpanProcessor.on_end` exports each span synchronously, in the thread that ended it.
    Under asyncio that is the event-loop thread: every query span, every request span, blocks
    the whole loop for one network round trip to the collector (and for the exporter's
    timeout and retries when the collector is slow or down). Every other request on the
    worker waits. `BatchSpanProcessor` queues the span and exports from a background thread.

    ## Example
    ```python
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint="http://collector:4318/v1/traces")))
    ```

    ## Use instead
    ```python
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint="http://collector:4318/v1/traces")))
    ```
    Call `provider.shutdown()` (or `force_flush()`) on exit so the last batch is sent.

    ## Known problems
    - Console and in-memory exporters are not reported: they are the usual test and debug
      setup and do no network I/O.
    - An exporter class of the project that subclasses a network exporter, or a vendor exporter
      not in the table (OTLP, Zipkin, Jaeger, Cloud Trace, Azure Monitor), is not recognised.
    - "Async code" means one `async def` anywhere outside the tests; a sync service with one
      async helper is reported too. Test modules are ignored.

    ## References
    - tests/rules/test_osd203_live.py: a slow OTLP/HTTP receiver (200 ms per export) stalls the
      event loop for the whole export with `SimpleSpanProcessor`, not with `BatchSpanProcessor`
    - https://opentelemetry-python.readthedocs.io/en/latest/sdk/trace.export.html
    """

    CODE = "OSD203"
    REPORTS_IN = frozenset({PathRole.SERVICE})
    REPORTS_IN_WHY = 'Blocking exports stall the event loop of a running service; examples, tests and scripts run one task at a time.'
    NAME = "blocking-span-processor"
    FAMILY = "sdk"
    SEVERITY = Severity.WARNING
    MESSAGE = (
        "`SimpleSpanProcessor` exports every span synchronously through a network exporter: in this "
        "async service each span end blocks the event loop for a round trip to the collector"
    )
    HINT = "use `BatchSpanProcessor(exporter)`, which exports from a background thread"
    # The async code may live in modules that never mention OpenTelemetry: have them indexed
    # (OSD401 parses the same files, so this costs nothing when it is enabled).
    PREFILTER = (b"async def",)

    def visit_Module(self, node) -> None:
        return None

    @classmethod
    def check_project(cls, index, options: dict) -> Iterable[ProjectReport]:
        for facts, site in index.all_calls():
            if site.callee != SIMPLE_SPAN_PROCESSOR or not site.line or is_test(facts.path):
                continue
            async_path = _async_evidence(index, facts)
            if async_path is None:
                continue
            exporter = positional(site.summary, 0) or kwarg(site.summary, "span_exporter")
            name = _exporter_class(index, exporter)
            if name is None or name not in NETWORK_EXPORTERS:
                continue
            yield ProjectReport(
                path=facts.path,
                line=site.line,
                column=site.column,
                end_line=site.end_line,
                end_column=site.end_column,
                message=(
                    f"`SimpleSpanProcessor` exports every span synchronously through the {NETWORK_EXPORTERS[name]} "
                    f"exporter `{name.rsplit('.', 1)[-1]}`: in this async service ({async_path} has "
                    "`async def`) each span end blocks the event loop for a round trip to the collector"
                ),
            )


def _async_evidence(index, facts) -> Optional[str]:
    """A module with `async def` in a program that runs this processor: the programs are the
    entry modules whose imports reach `facts` (a sync script beside an async service is not one)."""
    programs = [entry for entry in index.entry_modules if facts.path in index.import_closure(entry)]
    for entry in programs or [facts]:
        closure = index.import_closure(entry)
        for module in index.modules:
            if module.path in closure and module.has_async_def and role_of(module.path) is PathRole.SERVICE:
                return module.path
    # Frameworks import the app by name (`uvicorn app.main:app`), so the index may not see the
    # program whole: the async code of the same top-level package counts too.
    package = facts.path.split("/", 1)[0] + "/" if "/" in facts.path else None
    if package is None:
        return None
    async_paths = [m.path for m in index.modules if m.has_async_def] + list(getattr(index, "async_paths", ()))
    return next((p for p in async_paths if p.startswith(package) and role_of(p) is PathRole.SERVICE), None)


def _exporter_class(index, summary) -> Optional[str]:
    if not summary:
        return None
    if summary[0] == "call":
        name = index.qualname_of(summary[1])
        if name:
            return canonical(name)
    value = index.value(summary)
    if value and value[0] == "result":
        return canonical(value[1])
    return None


BlockingSpanProcessor.VALID = [
    Valid(
        {
            "loader/run.py": """
                from opentelemetry.sdk.trace import TracerProvider
                from opentelemetry.sdk.trace.export import SimpleSpanProcessor
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                provider = TracerProvider()
                provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))

                def main():
                    print("loading")

                if __name__ == "__main__":
                    main()
            """,
            "service/api.py": """
                async def handler():
                    return []
            """,
        },
        note="a synchronous program beside an async service in the same repository: not one process",
    ),
    Valid(
        """
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))

        async def handler():
            ...
        """,
        note="BatchSpanProcessor",
    ),
    Valid(
        """
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, ConsoleSpanExporter
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))

        async def handler():
            ...
        """,
        note="console and in-memory exporters do no network I/O",
    ),
    Valid(
        """
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))

        def handler():
            ...
        """,
        note="no async code: a sync worker pays the latency per span but blocks no event loop",
    ),
    Valid(
        {
            "app/__init__.py": "",
            "app/main.py": """
                from opentelemetry.sdk.trace.export import BatchSpanProcessor
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

                processor = BatchSpanProcessor(OTLPSpanExporter())

                async def handler():
                    ...
            """,
            "tests/conftest.py": """
                from opentelemetry.sdk.trace.export import SimpleSpanProcessor
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

                processor = SimpleSpanProcessor(OTLPSpanExporter(endpoint="localhost:4317"))
            """,
        },
        note="a test fixture exporting synchronously on purpose",
    ),
]

BlockingSpanProcessor.INVALID = [
    Invalid(
        """
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint="http://collector:4318/v1/traces")))  # ERROR

        async def handler():
            ...
        """,
    ),
    Invalid(
        {
            "app/__init__.py": "",
            "app/exporters.py": """
                import os
                from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as otlp_grpc

                def make_exporter():
                    return otlp_grpc.OTLPSpanExporter(endpoint=os.environ["OTEL_ENDPOINT"], insecure=True)

                exporter = make_exporter()
            """,
            "app/telemetry.py": """
                from opentelemetry.sdk.trace import TracerProvider
                from opentelemetry.sdk.trace.export import SimpleSpanProcessor as Sync
                from .exporters import exporter

                provider = TracerProvider()
                processor = Sync(exporter)  # ERROR
                provider.add_span_processor(processor)
            """,
            "app/routes.py": """
                from fastapi import APIRouter

                router = APIRouter()

                @router.get("/orders")
                async def list_orders():
                    return []
            """,
        },
        note="across modules, through a factory and aliases; the async code is elsewhere",
    ),
    Invalid(
        """
        from opentelemetry.sdk.trace import TracerProvider, export
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        def setup(provider: TracerProvider) -> None:
            otlp = OTLPSpanExporter()
            provider.add_span_processor(export.SimpleSpanProcessor(span_exporter=otlp))  # ERROR

        async def main():
            ...
        """,
        note="module attribute access, keyword argument, a local variable",
    ),
]
