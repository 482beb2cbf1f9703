"""The recording bootstrap: its OTLP JSON is the SDK's own encoding, and it chains to an existing
sitecustomize."""

from __future__ import annotations

import base64
import json
import sys

from otel_sqla_doctor.spans.bootstrap import _sitecustomize as boot
from otel_sqla_doctor.spans.readers import SpanFile

from .conftest import run_doctor


def _real_spans():
    """Spans made by the SDK itself: every attribute type, an event, a link, an error status, a
    remote parent."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "enc-test", "n": 3}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("enc.scope", "1.2.3")
    remote = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True, trace_flags=TraceFlags(1))
    with tracer.start_as_current_span("server", context=trace.set_span_in_context(NonRecordingSpan(remote)), kind=trace.SpanKind.SERVER) as parent:
        parent.set_attribute("s", "text")
        parent.set_attribute("b", True)
        parent.set_attribute("i", 2**40)
        parent.set_attribute("f", 1.5)
        parent.set_attribute("arr", ["a", "b"])
        parent.add_event("evt", {"k": 1})
        with tracer.start_as_current_span("child", kind=trace.SpanKind.CLIENT, links=[trace.Link(remote, {"l": "x"})]) as child:
            child.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()
    return exporter.get_finished_spans()


def _hexify(node):
    """protobuf's generic JSON mapping writes bytes as base64; OTLP JSON wants hex ids."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                out[key] = base64.b64decode(value).hex()
            else:
                out[key] = _hexify(value)
        return out
    if isinstance(node, list):
        return [_hexify(v) for v in node]
    return node


def test_encoding_matches_the_sdk_protobuf_encoder():
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import encode_spans

    spans = _real_spans()
    ours = boot.encode_request(spans)
    theirs = _hexify(MessageToDict(encode_spans(spans), use_integers_for_enums=True))
    assert ours == theirs


def test_our_reader_reads_both_hex_and_protobuf_base64_ids(tmp_path):
    from google.protobuf.json_format import MessageToJson
    from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import encode_spans

    spans = _real_spans()
    ours, theirs = tmp_path / "ours.jsonl", tmp_path / "theirs.jsonl"
    ours.write_text(json.dumps(boot.encode_request(spans)) + "\n")
    theirs.write_text(MessageToJson(encode_spans(spans), indent=None) + "\n")
    read = lambda p: [(s.trace_id, s.span_id, s.parent_id, s.name, s.kind, s.attributes) for s in SpanFile(p)]  # noqa: E731
    assert read(ours) == read(theirs)
    server = next(span for span in read(ours) if span[3] == "server")
    assert server[2] == "b7ad6b7169203331" and server[4] == "SERVER"  # the remote parent


def test_existing_sitecustomize_still_runs(tmp_path):
    """A distro's or a tool's sitecustomize must not be lost because ours comes first."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    marker = tmp_path / "marker"
    (theirs / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    import os

    env = dict(os.environ, PYTHONPATH=str(theirs))
    program = (
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "p = TracerProvider()\n"
        "with p.get_tracer('t').start_as_current_span('one'): pass\n"
    )
    result = run_doctor("trace", "--format", "json", "--", sys.executable, "-c", program, env=env)
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "ran"
    report = json.loads(result.stderr)
    assert report["stats"]["spans"] == 1  # and ours recorded the app's own provider
