"""OSD510 against real OTLP receivers started here: a gRPC TraceService and an HTTP /v1/traces
endpoint, both speaking the real protobuf protocol."""

from __future__ import annotations

import re
import socket
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

pytestmark = pytest.mark.live


def _span_names(request: trace_service_pb2.ExportTraceServiceRequest) -> list[tuple[str, str]]:
    return [
        (span.name, span.trace_id.hex())
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


@pytest.fixture
def grpc_receiver():
    received: list[tuple[str, str]] = []

    class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):
            received.extend(_span_names(request))
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", received
    server.stop(grace=None)


@pytest.fixture
def http_receiver():
    received: list[tuple[str, str]] = []
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            paths.append(self.path)
            request = trace_service_pb2.ExportTraceServiceRequest()
            request.ParseFromString(body)
            received.extend(_span_names(request))
            payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received, paths
    server.shutdown()
    server.server_close()


def _trace_id(detail: str) -> str:
    return re.search(r"accepted a test span \(trace ([0-9a-f]{32})\)", detail)[1]


def test_grpc_receiver_accepts_the_test_span(invoke, grpc_receiver):
    endpoint, received = grpc_receiver

    run = invoke("--format", "json", env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})

    exporter = run.check("OSD510")
    assert exporter["status"] == "pass", exporter
    assert "protocol grpc" in exporter["detail"]
    assert received == [("otel-sqla-doctor exporter test", _trace_id(exporter["detail"]))]


def test_http_protobuf_receiver_accepts_the_test_span(invoke, http_receiver):
    endpoint, received, paths = http_receiver

    run = invoke(
        "--format", "json",
        env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{endpoint}/v1/traces", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
    )

    exporter = run.check("OSD510")
    assert exporter["status"] == "pass", exporter
    assert paths == ["/v1/traces"]
    assert received == [("otel-sqla-doctor exporter test", _trace_id(exporter["detail"]))]


def test_nothing_listening_fails_within_the_timeout(invoke):
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    run = invoke("--format", "json", "--timeout", "2", env={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})

    exporter = run.check("OSD510")
    assert exporter["status"] == "fail"
    assert f"http://127.0.0.1:{port}" in exporter["detail"] and "did not accept the test span" in exporter["detail"]
    assert run.exit_code == 1


def test_http_json_protocol_is_explained(invoke):
    run = invoke("--format", "json", env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})

    assert run.check("OSD510")["status"] == "fail"
    assert "grpc and http/protobuf only" in run.check("OSD510")["detail"]
