"""OSD510 exporter-reachable: the exporters spans really go to accept a test span.

When an OTLP endpoint is configured in the environment (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
`OTEL_EXPORTER_OTLP_ENDPOINT`), one test span is sent with the configured protocol (`grpc`, the
Python default, or `http/protobuf`) by a real OTLP exporter built from the environment, so
headers, TLS and compression settings apply exactly as in the app.

Without one, with `--engine`, the exporters the application's TracerProvider really has are
tested: found by walking its span processors (BatchSpanProcessor, SimpleSpanProcessor), one test
span goes through the app's own pipeline and is flushed within `--timeout`; each exporter is
reported with its endpoint and whether it accepted the span. Apps configure their exporter in
code, with the endpoint in their settings: those are the ones that must work.

Credentials never reach the report: the endpoint's password (`http://user:pw@collector`) and the
values of the OTLP header variables (`authorization=Bearer ...`) are scrubbed from every line,
also from the exporter's own messages, which print the endpoint without its scheme.
"""

from __future__ import annotations

import logging
import os
from urllib.parse import unquote

from otel_sqla_doctor.live.checks.base import Check
from otel_sqla_doctor.live.model import CheckResult, Status
from otel_sqla_doctor.live.observations import Observations
from otel_sqla_doctor.redact import Redactor, mask_url

HEADER_VARIABLES = ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS")


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().splitlines()[0])


def _exporter(protocol: str, timeout: float):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(timeout=timeout)


def _secrets(endpoint: str | None) -> Redactor:
    """A redactor that knows the endpoint's password and the OTLP header values."""
    redactor = Redactor()
    if endpoint:
        redactor.add_url(endpoint)
    for variable in HEADER_VARIABLES:
        for item in os.environ.get(variable, "").split(","):
            _, _, value = item.partition("=")
            value = unquote(value.strip())
            # "Bearer abc...": the token alone too. Short values (a tenant "1") are no secrets.
            redactor.add(*(v for v in {value, *value.split()[-1:]} if len(v) >= 8))
    return redactor


class ExporterReachable(Check):
    code = "OSD510"
    name = "exporter-reachable"
    title = "OTLP endpoint accepts a test span"

    def result(self, status: Status, detail: str, remediation: str | None = None) -> CheckResult:
        redactor = getattr(self, "_redactor", None) or Redactor()
        return super().result(status, redactor.text(detail), redactor.text(remediation))

    def run(self, obs: Observations) -> CheckResult:
        env = obs.env
        self._redactor = _secrets(env.otlp_endpoint)
        if env.otlp_endpoint is None:
            if obs.wiring.mode == "user":
                return self._app_exporters(obs)
            return self.skipped(
                "skipped: no OTLP endpoint configured (OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT unset); "
                "with --engine the exporters your app's TracerProvider has are tested"
            )
        protocol = env.otlp_protocol
        where = f"{mask_url(env.otlp_endpoint)} ({env.otlp_endpoint_var}, protocol {protocol})"
        if protocol not in ("grpc", "http/protobuf"):
            return self.failed(f"{where}: the Python OTLP exporters speak grpc and http/protobuf only", "set OTEL_EXPORTER_OTLP_PROTOCOL to grpc or http/protobuf")
        try:
            exporter = _exporter(protocol, obs.timeout)
        except ImportError:
            package = "opentelemetry-exporter-otlp-proto-grpc" if protocol == "grpc" else "opentelemetry-exporter-otlp-proto-http"
            return self.failed(f"{where}: the exporter package is not installed", f"pip install {package}")
        except Exception as exc:
            return self.failed(f"{where}: the exporter could not be built: {type(exc).__name__}: {exc}", "check the OTEL_EXPORTER_OTLP_* variables")

        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SpanExportResult

        from otel_sqla_doctor.live.capture import SpanRecorder

        recorder = SpanRecorder()
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(recorder)
        with provider.get_tracer("otel-sqla-doctor").start_as_current_span("otel-sqla-doctor exporter test"):
            pass
        spans = recorder.ended
        if not spans:
            return self.skipped(f"skipped: {where}: the SDK is disabled (OTEL_SDK_DISABLED), so no test span can be built")
        keeper = _Keep()
        logger = logging.getLogger("opentelemetry.exporter")
        logger.addHandler(keeper)
        try:
            result = exporter.export(spans)
        except Exception as exc:
            result, keeper.messages = None, keeper.messages + [f"{type(exc).__name__}: {exc}"]
        finally:
            logger.removeHandler(keeper)
            try:
                exporter.shutdown()
            except Exception:
                pass
        if result == SpanExportResult.SUCCESS:
            return self.passed(f"{where} accepted a test span (trace {spans[0].context.trace_id:032x})")
        reason = keeper.messages[-1] if keeper.messages else "the exporter reported failure"
        return self.failed(
            f"{where} did not accept the test span: {reason}",
            "check that a collector listens there with this protocol (gRPC usually :4317, HTTP :4318/v1/traces), and its headers/TLS settings",
        )

    def _app_exporters(self, obs: Observations) -> CheckResult:
        from otel_sqla_doctor.live.capture import SpanRecorder
        from otel_sqla_doctor.live.checks._exporters import test_exporters

        unset = "no OTEL_EXPORTER_OTLP_* endpoint set"
        if obs.wiring.provider == "disabled":
            return self.skipped(f"skipped: {unset}, and the SDK is disabled (OTEL_SDK_DISABLED), so no span is exported")
        routes = obs.wiring.span_routes
        if not routes:
            return self.skipped(f"skipped: {unset}, and no SDK TracerProvider receives the engine's spans (see OSD503), so there is no exporter to test")
        tests = test_exporters(routes, obs.timeout, self._redactor, skip=(SpanRecorder,))
        if not tests:
            return self.warned(
                f"{unset}; your TracerProvider has no span processor: its spans are exported nowhere",
                "add one with an exporter, e.g. provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=...)))",
            )
        found = "; ".join(test.describe() for test in tests)
        if all(test.outcome == "not tested" for test in tests):
            return self.skipped(f"skipped: {unset}; your TracerProvider's processors hold no exporter the probe can test: {found}")
        failed = [test for test in tests if test.outcome in ("refused", "no answer")]
        if failed:
            return self.failed(
                f"exporters of your TracerProvider ({unset}): {found}",
                "check that a collector listens at that endpoint with the exporter's protocol (gRPC usually :4317, "
                "HTTP :4318/v1/traces), and the exporter's headers/TLS settings, where your code configures it",
            )
        return self.passed(f"exporters of your TracerProvider ({unset}): {found}")
