"""OSD203 live: SimpleSpanProcessor + a network exporter blocks the event loop on every span end.

A real OTLP/HTTP receiver runs on 127.0.0.1 (a small `http.server` thread that takes 200 ms per
`POST /v1/traces` and answers with a valid, empty `ExportTraceServiceResponse`). An async engine
(sqlite+aiosqlite) runs queries inside a request span while a 5 ms ticker task measures the
largest gap between its wake-ups: once with `SimpleSpanProcessor(OTLPSpanExporter(...))`, once
with `BatchSpanProcessor(...)`, each in a fresh interpreter.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.live_support import run_script

DELAY_SECONDS = 0.2
QUERIES = 4

SCRIPT = """
import asyncio, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

provider = TracerProvider()
provider.add_span_processor({processor}(OTLPSpanExporter(endpoint={endpoint!r})))
engine = create_async_engine("sqlite+aiosqlite://")
SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=provider)
tracer = provider.get_tracer("osd203")


async def main():
    gaps = []
    stop = asyncio.Event()

    async def ticker():
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    with tracer.start_as_current_span("request"):
        async with engine.connect() as conn:
            for i in range({queries}):
                await conn.execute(text(f"SELECT {{i}}"))
    wall = time.perf_counter() - started
    await asyncio.sleep(0.05)
    stop.set()
    await task
    await engine.dispose()
    shutdown_started = time.perf_counter()
    provider.shutdown()  # the batch processor sends its queue here, off the event loop
    return {{
        "max_gap_ms": round(max(gaps) * 1000, 1),
        "wall_s": round(wall, 3),
        "shutdown_s": round(time.perf_counter() - shutdown_started, 3),
    }}


report(**asyncio.run(main()))
"""


class _SlowOTLPReceiver(BaseHTTPRequestHandler):
    posts: list = []

    def do_POST(self):  # noqa: N802 (http.server naming)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        time.sleep(DELAY_SECONDS)
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans = [s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
        type(self).posts.append((self.path, spans))
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    handler = type("Receiver", (_SlowOTLPReceiver,), {"posts": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", handler.posts
    finally:
        server.shutdown()
        server.server_close()


def test_simple_processor_stalls_the_event_loop(receiver):
    endpoint, posts = receiver
    simple = run_script(SCRIPT.format(processor="SimpleSpanProcessor", endpoint=endpoint, queries=QUERIES))
    simple_posts = list(posts)
    posts.clear()
    batch = run_script(SCRIPT.format(processor="BatchSpanProcessor", endpoint=endpoint, queries=QUERIES))
    batch_posts = list(posts)
    figures = (
        f"collector takes {DELAY_SECONDS * 1000:.0f} ms per export; {QUERIES} queries in one request: "
        f"SimpleSpanProcessor max event-loop gap {simple['max_gap_ms']} ms, request wall {simple['wall_s']} s, "
        f"{len(simple_posts)} exports; BatchSpanProcessor max gap {batch['max_gap_ms']} ms, request wall "
        f"{batch['wall_s']} s, {len(batch_posts)} export(s) at shutdown ({batch['shutdown_s']} s)"
    )
    print(f"\n[OSD203] {figures}")
    print(f"[OSD203] simple exports: {[spans for _, spans in simple_posts]}; batch exports: {[spans for _, spans in batch_posts]}")
    assert simple["returncode"] == 0 and batch["returncode"] == 0, (simple["stderr"], batch["stderr"])
    # Every span end is one blocking round trip on the event-loop thread ...
    assert len(simple_posts) >= QUERIES + 1, figures
    assert all(path == "/v1/traces" for path, _ in simple_posts), simple_posts
    assert simple["max_gap_ms"] >= DELAY_SECONDS * 1000 * 0.9, figures
    assert simple["wall_s"] >= QUERIES * DELAY_SECONDS * 0.9, figures
    # ... while the batch processor keeps the loop free and sends the same spans in one export.
    assert batch["max_gap_ms"] < DELAY_SECONDS * 1000 / 2, figures
    sent_simple = sorted(name for _, spans in simple_posts for name in spans)
    sent_batch = sorted(name for _, spans in batch_posts for name in spans)
    assert sent_simple == sent_batch and "request" in sent_batch, (sent_simple, sent_batch)


def test_the_doctor_flags_the_processor(tmp_path: Path):
    from otel_sqla_doctor.api import load_config, scan_paths

    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    code = SCRIPT.replace("{{", "{").replace("}}", "}").replace("{queries}", "3")
    code = code.replace("{processor}", "SimpleSpanProcessor").replace("{endpoint!r}", "'http://collector:4318/v1/traces'")
    (tmp_path / "app.py").write_text(code)
    result = scan_paths([tmp_path], config=load_config([tmp_path], select=["OSD203"]), use_cache=False, cwd=tmp_path)
    flagged = [(f.line, code.splitlines()[f.line - 1].strip()) for f in result.findings]
    print(f"[OSD203] doctor: {flagged}")
    assert flagged == [
        (11, "provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint='http://collector:4318/v1/traces')))")
    ], flagged
