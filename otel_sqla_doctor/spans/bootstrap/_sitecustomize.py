"""The `doctor trace` bootstrap: copied as `sitecustomize.py` into a directory put first on PYTHONPATH.

Self-contained on purpose: the traced command may run another interpreter or virtualenv where
otel_sqla_doctor is not installed, so this file imports nothing from the doctor.

What it does, in the traced process (and in its Python subprocesses, which inherit PYTHONPATH):
1. Adds a recording span processor to every SDK TracerProvider the program creates, so spans are
   seen whatever provider the app installs, without changing which provider is global.
   Each process writes its own file `spans-<pid>.jsonl` in $DOCTOR_TRACE_OUT: OTLP JSON, one
   `{"resourceSpans": [...]}` object per line, like the collector's file exporter.
2. Remembers every span that was started; at exit, spans started and never ended are written with
   no end time (OTLP endTimeUnixNano 0), so the analysis can report them (OSD604).
3. Chains to the sitecustomize that this one shadows, if any. Under `opentelemetry-instrument`,
   whose sitecustomize shadows this one, the same set-up runs from a pre-instrument entry point
   (see `attach_from_launcher`).
4. With DOCTOR_TRACE_INSTRUMENT=1: installs an SDK TracerProvider (unless the environment already
   set one) and instruments SQLAlchemy the way tests/rules/test_osd106_live.py shows is correct: import
   `sqlalchemy.ext.asyncio` first, then the global `SQLAlchemyInstrumentor().instrument()`
   (importing it afterwards gives every async engine two tracers and leaks a span per query).
"""

import atexit
import base64
import json
import os
import sys
import threading
import time

_OUT_DIR = os.environ.get("DOCTOR_TRACE_OUT", "")
_HERE = os.path.dirname(os.path.abspath(__file__))


def _say(message):
    sys.stderr.write("[doctor trace] " + message + "\n")


# --- OTLP JSON encoding (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):
# lowerCamelCase keys, hex trace/span ids, 64-bit integers as strings, enums as integers, and
# fields holding their default value left out. Mirrors the SDK's protobuf encoder field by field.

_FLAGS_HAS_IS_REMOTE = 0x100
_FLAGS_IS_REMOTE = 0x200


def encode_value(value):
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [encode_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": encode_attributes(value)}}
    return {"stringValue": str(value)}


def encode_attributes(attributes):
    return [{"key": str(k), "value": encode_value(v)} for k, v in (attributes or {}).items()]


def _span_flags(parent_context):
    flags = _FLAGS_HAS_IS_REMOTE
    if parent_context is not None and parent_context.is_remote:
        flags |= _FLAGS_IS_REMOTE
    return flags


def encode_span(span, *, ended=True):
    ctx = span.get_span_context()
    out = {"traceId": "%032x" % ctx.trace_id, "spanId": "%016x" % ctx.span_id}
    trace_state = ctx.trace_state.to_header() if ctx.trace_state else ""
    if trace_state:
        out["traceState"] = trace_state
    if span.parent is not None:
        out["parentSpanId"] = "%016x" % span.parent.span_id
    out["flags"] = _span_flags(span.parent)
    out["name"] = span.name
    out["kind"] = span.kind.value + 1  # OTLP counts SPAN_KIND_UNSPECIFIED as 0
    if span.start_time:
        out["startTimeUnixNano"] = str(span.start_time)
    if ended and span.end_time:
        out["endTimeUnixNano"] = str(span.end_time)
    attributes = encode_attributes(span.attributes)
    if attributes:
        out["attributes"] = attributes
    if span.dropped_attributes:
        out["droppedAttributesCount"] = span.dropped_attributes
    if span.events:
        events = []
        for event in span.events:
            encoded = {"timeUnixNano": str(event.timestamp), "name": event.name}
            if event.attributes:
                encoded["attributes"] = encode_attributes(event.attributes)
            if event.dropped_attributes:
                encoded["droppedAttributesCount"] = event.dropped_attributes
            events.append(encoded)
        out["events"] = events
    if span.dropped_events:
        out["droppedEventsCount"] = span.dropped_events
    if span.links:
        links = []
        for link in span.links:
            encoded = {
                "traceId": "%032x" % link.context.trace_id,
                "spanId": "%016x" % link.context.span_id,
            }
            if link.attributes:
                encoded["attributes"] = encode_attributes(link.attributes)
            if link.dropped_attributes:
                encoded["droppedAttributesCount"] = link.dropped_attributes
            encoded["flags"] = _span_flags(link.context)
            links.append(encoded)
        out["links"] = links
    if span.dropped_links:
        out["droppedLinksCount"] = span.dropped_links
    status = {}
    if span.status is not None:
        if span.status.description:
            status["message"] = span.status.description
        if span.status.status_code.value:
            status["code"] = span.status.status_code.value
    out["status"] = status
    return out


def encode_request(spans, *, ended=True):
    """Group spans by resource, then by instrumentation scope, as one ExportTraceServiceRequest."""
    by_resource = {}
    for span in spans:
        scopes = by_resource.setdefault(id(span.resource), (span.resource, {}))[1]
        scope = span.instrumentation_scope
        key = (scope.name, scope.version, scope.schema_url) if scope is not None else None
        scopes.setdefault(key, (scope, []))[1].append(encode_span(span, ended=ended))
    resource_spans = []
    for resource, scopes in by_resource.values():
        scope_spans = []
        for scope, encoded in scopes.values():
            entry = {}
            if scope is not None:
                scope_json = {"name": scope.name}
                if scope.version:
                    scope_json["version"] = scope.version
                scope_attributes = encode_attributes(getattr(scope, "attributes", None))
                if scope_attributes:
                    scope_json["attributes"] = scope_attributes
                entry["scope"] = scope_json
            else:
                entry["scope"] = {}
            entry["spans"] = encoded
            if scope is not None and scope.schema_url:
                entry["schemaUrl"] = scope.schema_url
            scope_spans.append(entry)
        rs = {"resource": {"attributes": encode_attributes(resource.attributes)}, "scopeSpans": scope_spans}
        if resource.schema_url:
            rs["schemaUrl"] = resource.schema_url
        resource_spans.append(rs)
    return {"resourceSpans": resource_spans}


class _Recorder:
    """A SpanProcessor (duck-typed, so this file imports no SDK at module level) that appends
    every ended span to this process's OTLP JSON lines file and keeps the started ones."""

    FLUSH_SPANS = 256
    FLUSH_SECONDS = 1.0

    def __init__(self, out_dir):
        self._out_dir = out_dir
        self._lock = threading.Lock()
        self._reset()

    def _reset(self):
        self._pid = os.getpid()
        self._path = os.path.join(self._out_dir, "spans-%d.jsonl" % self._pid)
        self._pending = []
        self._live = {}
        self._last_flush = time.monotonic()

    def after_fork(self):
        self._lock = threading.Lock()
        self._reset()

    # SpanProcessor interface
    def on_start(self, span, parent_context=None):
        ctx = span.get_span_context()
        with self._lock:
            self._live[(ctx.trace_id, ctx.span_id)] = span

    def _on_ending(self, span):
        pass

    def on_end(self, span):
        ctx = span.get_span_context()
        with self._lock:
            self._live.pop((ctx.trace_id, ctx.span_id), None)
            self._pending.append(span)
            due = len(self._pending) >= self.FLUSH_SPANS or time.monotonic() - self._last_flush > self.FLUSH_SECONDS
        if due:
            self.flush()

    def shutdown(self):
        self.flush()  # other providers may still use this recorder; the file closes at exit

    def force_flush(self, timeout_millis=30000):
        self.flush()
        return True

    def flush(self, spans=None, *, ended=True):
        with self._lock:
            if spans is None:
                spans, self._pending = self._pending, []
            self._last_flush = time.monotonic()
            if not spans:
                return
            line = json.dumps(encode_request(spans, ended=ended), separators=(",", ":"))
            with open(self._path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def at_exit(self):
        self.flush()
        with self._lock:
            unended = list(self._live.values())
            self._live.clear()
        if unended:
            self.flush(unended, ended=False)


_RECORDER = None


def _install_recorder():
    global _RECORDER
    try:
        from opentelemetry.sdk import trace as sdk_trace
    except ImportError:
        _say("opentelemetry-sdk is not importable in this interpreter; no spans will be recorded")
        return False
    if getattr(sdk_trace.TracerProvider, "_doctor_trace_recording", False):
        return True  # installed already (by the sitecustomize, or by the launcher hook)
    os.makedirs(_OUT_DIR, exist_ok=True)
    _RECORDER = _Recorder(_OUT_DIR)
    original_init = sdk_trace.TracerProvider.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_span_processor(_RECORDER)

    __init__.__wrapped__ = original_init
    sdk_trace.TracerProvider.__init__ = __init__
    sdk_trace.TracerProvider._doctor_trace_recording = True
    # A provider made before this ran (opentelemetry-instrument's configurator) records too.
    from opentelemetry import trace

    current = trace.get_tracer_provider()
    if isinstance(current, sdk_trace.TracerProvider):
        current.add_span_processor(_RECORDER)
    # Registered first, so it runs last: after the app's own exit handlers have ended their spans.
    atexit.register(_RECORDER.at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_RECORDER.after_fork)
    return True


def _chain_next_sitecustomize():
    """Run the sitecustomize this file shadows (a distro's, or another tool's), if there is one."""
    import importlib.machinery
    import importlib.util

    path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the same leniency as site.py: report and carry on
        _say("the chained sitecustomize %s failed: %s: %s" % (spec.origin, type(exc).__name__, exc))


def _instrument_sqlalchemy():
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    if type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider":
        trace.set_tracer_provider(TracerProvider())
    try:
        import sqlalchemy.ext.asyncio  # noqa: F401  before instrument(): one tracer per engine (#2149)
    except ImportError:
        pass
    try:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    except ImportError:
        _say("--instrument: opentelemetry-instrumentation-sqlalchemy is not installed here")
        return
    instrumentor = SQLAlchemyInstrumentor()
    instrumentor.instrument()
    if not instrumentor.is_instrumented_by_opentelemetry:
        # SQLAlchemy outside the instrumentation's declared range (2.1 with 0.66b1) is skipped
        # silently apart from a log line; instrument anyway and say so.
        import sqlalchemy

        _say(
            "--instrument: SQLAlchemy %s is outside the range opentelemetry-instrumentation-sqlalchemy "
            "declares; instrumenting with skip_dep_check=True" % sqlalchemy.__version__
        )
        instrumentor.instrument(skip_dep_check=True)


def attach_from_launcher():
    """The `opentelemetry_pre_instrument` hook, for programs run by `opentelemetry-instrument`.

    The launcher puts its own sitecustomize first on PYTHONPATH, so this file never runs as
    `sitecustomize` there. Its `initialize()` does call every `opentelemetry_pre_instrument` entry
    point found on sys.path, after the SDK configurator made the provider; `prepare()` writes a
    small dist-info next to this file that declares this function as one.
    """
    if not _OUT_DIR:
        return
    if _install_recorder() and os.environ.get("DOCTOR_TRACE_INSTRUMENT") == "1":
        try:
            _instrument_sqlalchemy()
        except Exception as exc:
            _say("--instrument failed: %s: %s" % (type(exc).__name__, exc))


def _main():
    if not _OUT_DIR:
        _chain_next_sitecustomize()
        return
    installed = _install_recorder()
    _chain_next_sitecustomize()
    if installed and os.environ.get("DOCTOR_TRACE_INSTRUMENT") == "1":
        try:
            _instrument_sqlalchemy()
        except Exception as exc:
            _say("--instrument failed: %s: %s" % (type(exc).__name__, exc))


if __name__ == "sitecustomize":
    _main()
