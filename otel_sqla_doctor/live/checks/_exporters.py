"""The exporters an application's TracerProvider really has, and a bounded test of each.

Found by walking the provider's active span processor: BatchSpanProcessor and
SimpleSpanProcessor hold an exporter (`span_exporter`, or `_batch_processor._exporter` from SDK
1.34 on); OTLP exporters keep their endpoint in `_endpoint`. The test sends one span through the
application's own pipeline and flushes it, in a daemon thread, waiting at most the deadline: the
SDK's force_flush ignores its timeout and an OTLP exporter retries an unreachable endpoint for
10 s or more. What each exporter's export() returned is recorded by wrapping it for the test.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from otel_sqla_doctor.redact import Redactor, mask_url

TEST_SPAN = "otel-sqla-doctor exporter test"


@dataclass
class ExporterTest:
    exporter: str  # e.g. "OTLPSpanExporter (HTTP)"
    endpoint: str | None  # masked
    outcome: str  # accepted | refused | no answer | not tested
    reason: str | None = None

    def describe(self) -> str:
        where = f"{self.exporter} to {self.endpoint}" if self.endpoint else self.exporter
        reason = f" ({self.reason})" if self.reason else ""
        return {
            "accepted": f"{where} accepted the test span",
            "refused": f"{where} did not accept the test span{reason}",
            "no answer": f"{where} did not accept the test span{reason}",
        }.get(self.outcome, f"{where}: not tested{reason}")


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages.append(record.getMessage().splitlines()[0])
        except Exception:
            pass


def exporter_of(processor: Any) -> Any:
    exporter = getattr(processor, "span_exporter", None)
    if exporter is None:
        exporter = getattr(getattr(processor, "_batch_processor", None), "_exporter", None)
    return exporter


def _label(exporter: Any) -> str:
    module = type(exporter).__module__
    kind = " (gRPC)" if ".grpc" in module else " (HTTP)" if ".http" in module else ""
    return f"{type(exporter).__name__}{kind}"


def _endpoint(exporter: Any, redactor: Redactor) -> str | None:
    endpoint = getattr(exporter, "_endpoint", None)
    if not isinstance(endpoint, str) or not endpoint:
        return None
    redactor.add_url(endpoint)
    if "://" not in endpoint and "@" in endpoint:  # gRPC keeps user:password@host:port
        userinfo = endpoint.rpartition("@")[0]
        redactor.add(userinfo.partition(":")[2])
    for holder in (exporter, getattr(exporter, "_client", None)):
        headers = getattr(holder, "_headers", None)
        items = headers.items() if isinstance(headers, dict) else headers if isinstance(headers, (tuple, list)) else ()
        for item in items:
            value = item[1] if isinstance(item, (tuple, list)) and len(item) == 2 else None
            if isinstance(value, str):
                redactor.add(*(v for v in {value, *value.split()[-1:]} if len(v) >= 8))
    return redactor.text(mask_url(endpoint))


def test_exporters(routes: list[tuple[Any, Any, Any]], deadline: float, redactor: Redactor, skip: tuple[type, ...] = ()) -> list[ExporterTest]:
    """One test span through each route (tracer, active span processor, provider) and a flush,
    all within `deadline` seconds; one ExporterTest per processor found (except `skip` types)."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    tests: list[ExporterTest] = []
    exporters: dict[int, tuple[Any, ExporterTest]] = {}
    outcomes: dict[int, list[Any]] = {}
    for _tracer, multi, _provider in routes:
        for processor in getattr(multi, "_span_processors", ()):
            if isinstance(processor, skip):
                continue
            exporter = exporter_of(processor)
            if exporter is None:
                tests.append(ExporterTest(type(processor).__name__, None, "not tested", "not an SDK span processor with an exporter"))
                continue
            if id(exporter) in exporters:
                continue
            test = ExporterTest(_label(exporter), _endpoint(exporter, redactor), "no answer")
            tests.append(test)
            key = id(exporter)
            outcomes[key] = []
            original = exporter.export

            def export(spans, _original=original, _into=outcomes[key]):
                try:
                    result = _original(spans)
                except Exception as exc:
                    _into.append(f"{type(exc).__name__}: {exc}")
                    raise
                _into.append(result)
                return result

            try:
                exporter.export = export  # for the test only; removed below
            except Exception:
                test.outcome, test.reason = "not tested", "its export() cannot be observed"
                continue
            exporters[key] = (exporter, test)
    if not exporters:
        return tests

    keeper = _Keep()
    logger = logging.getLogger("opentelemetry")
    logger.addHandler(keeper)

    def send() -> None:
        for tracer, multi, _provider in routes:
            try:
                with tracer.start_as_current_span(TEST_SPAN):
                    pass
                multi.force_flush(int(deadline * 1000))
            except Exception as exc:
                keeper.messages.append(f"{type(exc).__name__}: {exc}")

    started = time.monotonic()
    worker = threading.Thread(target=send, name="otel-sqla-doctor exporter test", daemon=True)
    worker.start()
    while time.monotonic() - started < deadline and worker.is_alive():
        if all(outcomes[key] for key in exporters):
            break
        time.sleep(0.02)
    logger.removeHandler(keeper)
    for key, (exporter, test) in exporters.items():
        try:
            del exporter.export
        except Exception:
            pass
        results = outcomes[key]
        last_log = keeper.messages[-1] if keeper.messages else None
        if SpanExportResult.SUCCESS in results:
            test.outcome = "accepted"
        elif results:
            test.outcome = "refused"
            errors = [r for r in results if isinstance(r, str)]
            test.reason = redactor.text(errors[-1] if errors else last_log or "export() returned FAILURE")
        else:
            test.reason = redactor.text(f"no answer within {deadline:g}s" + (f"; the exporter said: {last_log}" if last_log else ""))
    return tests


def release(routes: list[tuple[Any, Any, Any]], deadline: float = 1.0) -> None:
    """The probe's process ends after the report: shut the application's span pipelines down
    within `deadline`, and take the providers' exit handlers off, so that an exporter retrying an
    unreachable endpoint at exit (up to a minute with some releases) cannot hold the process."""
    import atexit

    for _tracer, multi, provider in routes:
        handler = getattr(provider, "_atexit_handler", None)
        if handler is not None:
            atexit.unregister(handler)
    worker = threading.Thread(target=lambda: [_quietly(multi.shutdown) for _t, multi, _p in routes], daemon=True)
    worker.start()
    worker.join(deadline)


def _quietly(call: Any) -> None:
    try:
        call()
    except Exception:
        pass
