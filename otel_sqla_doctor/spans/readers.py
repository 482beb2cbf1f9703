"""Read spans from the files users already have, in a stream.

Formats, detected from the first bytes of each file:

- ``otlp-jsonl``: OTLP JSON, one ``{"resourceSpans": [...]}`` object per line, as the collector's
  file exporter writes it (and as `doctor trace` records).
- ``otlp-json``: one OTLP JSON document ``{"resourceSpans": [...]}``, possibly pretty-printed.
  Read one ResourceSpans element at a time.
- ``console``: the SDK's ``ConsoleSpanExporter`` output: pretty-printed JSON objects one after the
  other. Lines that are not part of a span object (the program's own prints) are skipped.
- ``jaeger``: a Jaeger JSON trace export ``{"data": [{"traceID", "spans", "processes"}]}``
  (the UI's "Download JSON" or the query API). Read one trace at a time.

Memory stays bounded by the largest single value read at once (a line, a ResourceSpans element,
a console span, a Jaeger trace), not by the file size.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from otel_sqla_doctor.errors import UsageError
from otel_sqla_doctor.spans.model import KIND_NAMES, Span

FORMATS = ("otlp-jsonl", "otlp-json", "console", "jaeger")
EXPECTED = (
    "expected OTLP JSON (the collector's file exporter: one {\"resourceSpans\": ...} object per line, "
    "or one document), the SDK's ConsoleSpanExporter output, or a Jaeger JSON export ({\"data\": [...]})"
)
_SNIFF = 1 << 16
_CHUNK = 1 << 20
_MAX_VALUE = 1 << 30  # a single JSON value larger than this is refused, not buffered forever
_FIRST_KEY = re.compile(r'\{\s*"([^"\\]*)"')
_CONSOLE_START = re.compile(r'^\{\s*"name"\s*:', re.M)
_DECODER = json.JSONDecoder()


class SpanFileError(UsageError):
    """A file that is not spans in a format we read, or that breaks off mid-value."""


class SpanFile:
    """One input file: its detected format, and an iterator over its spans (read once)."""

    def __init__(self, path: Path, *, chunk_size: int = _CHUNK) -> None:
        self.path = Path(path)
        self.chunk_size = chunk_size
        self.warnings: list[str] = []
        self.spans_read = 0
        self.format = detect_format(self.path)

    def __iter__(self) -> Iterator[Span]:
        reader = {
            "otlp-jsonl": self._otlp_lines,
            "otlp-json": self._otlp_document,
            "console": self._console,
            "jaeger": self._jaeger,
            "empty": lambda fh: iter(()),
        }[self.format]
        with open_text(self.path) as fh:
            try:
                for span in reader(fh):
                    self.spans_read += 1
                    yield span
            except (OSError, EOFError) as exc:  # a truncated or corrupt .gz
                raise SpanFileError(f"{self.path}: cannot read: {exc}") from None

    # --- OTLP -------------------------------------------------------------------------------
    def _otlp_lines(self, fh: TextIO) -> Iterator[Span]:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except ValueError as exc:
                self.warnings.append(f"line {number}: not JSON ({exc.msg}); skipped")
                continue
            for resource_spans in request.get("resourceSpans") or ():
                yield from _otlp_resource_spans(resource_spans)

    def _otlp_document(self, fh: TextIO) -> Iterator[Span]:
        values = _ValueStream(fh, self.chunk_size, self.path)
        for resource_spans in values.array_items("resourceSpans"):
            yield from _otlp_resource_spans(resource_spans)

    # --- console ------------------------------------------------------------------------------
    def _console(self, fh: TextIO) -> Iterator[Span]:
        values = _ValueStream(fh, self.chunk_size, self.path)
        for obj in values.objects(skip_text=True):
            if isinstance(obj, dict) and "context" in obj and "name" in obj:
                yield _console_span(obj)
        if values.skipped_lines:
            self.warnings.append(f"{values.skipped_lines} lines of other output between the spans were skipped")

    # --- Jaeger -------------------------------------------------------------------------------
    def _jaeger(self, fh: TextIO) -> Iterator[Span]:
        values = _ValueStream(fh, self.chunk_size, self.path)
        for trace in values.array_items("data"):
            yield from _jaeger_trace(trace)


def open_text(path: Path) -> TextIO:
    """The file as text, gunzipped on the fly when it is gzip (archived exports: `spans.json.gz`)."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def detect_format(path: Path) -> str:
    """The format of a span file, or SpanFileError naming the formats we expected."""
    try:
        with open_text(path) as fh:
            head = fh.read(_SNIFF)
    except (OSError, EOFError) as exc:
        raise SpanFileError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    text = head.lstrip("\ufeff \t\r\n")
    if not text:
        return "empty"
    if text.startswith("{"):
        match = _FIRST_KEY.match(text)
        key = match.group(1) if match else None
        if key == "resourceSpans":
            first_line = text.split("\n", 1)[0]
            try:
                json.loads(first_line)
                return "otlp-jsonl"
            except ValueError:
                return "otlp-json"
        if key == "data" and '"traceID"' in text:
            return "jaeger"
        if key == "name" and '"context"' in text and '"trace_id"' in text:
            return "console"
        if key is not None and '"resourceSpans"' in text and len(head) < _SNIFF:
            return "otlp-json"  # a small document whose first key is not resourceSpans
        if key is not None and '"traceID"' in text and '"data"' in text and len(head) < _SNIFF:
            return "jaeger"
    elif _CONSOLE_START.search(text) and '"trace_id"' in text:
        return "console"  # console spans after some lines of program output
    raise SpanFileError(f"{path}: not a span file; {EXPECTED}")


# --- streaming JSON values -------------------------------------------------------------------


class _ValueStream:
    """JSON values read one at a time from a text stream, with a buffer that only ever holds the
    value being decoded (json.JSONDecoder.raw_decode on a sliding window)."""

    def __init__(self, fh: TextIO, chunk_size: int, path: Path) -> None:
        self.fh = fh
        self.chunk = chunk_size
        self.path = path
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.skipped_lines = 0
        self.offset = 0  # characters dropped from the front of buf

    def _fill(self, want: int) -> bool:
        if self.eof:
            return False
        data = self.fh.read(max(want, self.chunk))
        if not data:
            self.eof = True
            return False
        if self.pos:
            self.offset += self.pos
            self.buf = self.buf[self.pos :]
            self.pos = 0
        self.buf += data
        return True

    def _skip_ws(self) -> str:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n\ufeff":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill(self.chunk):
                return ""

    def _decode(self) -> Any:
        want = self.chunk
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos > _MAX_VALUE:
                    raise SpanFileError(f"{self.path}: a JSON value larger than {_MAX_VALUE} characters") from None
                if not self._fill(want):
                    raise SpanFileError(
                        f"{self.path}: invalid or truncated JSON at character {self.offset + exc.pos}: {exc.msg}"
                    ) from None
                want *= 2  # a value larger than a chunk: grow geometrically, never re-scan quadratically
                continue
            self.pos = end
            return value

    def _expect(self, literal: str) -> None:
        char = self._skip_ws()
        if not self.buf.startswith(literal, self.pos):
            raise SpanFileError(f"{self.path}: expected {literal!r} at character {self.offset + self.pos}, found {char!r}")
        self.pos += len(literal)

    def objects(self, *, skip_text: bool) -> Iterator[Any]:
        """Concatenated top-level values; with skip_text, lines not starting a JSON object are skipped."""
        while True:
            char = self._skip_ws()
            if not char:
                return
            if char != "{" and skip_text:
                newline = self.buf.find("\n", self.pos)
                while newline < 0 and self._fill(self.chunk):
                    newline = self.buf.find("\n", self.pos)
                self.pos = len(self.buf) if newline < 0 else newline + 1
                self.skipped_lines += 1
                continue
            yield self._decode()

    def array_items(self, key: str) -> Iterator[Any]:
        """The elements of the array at `key` of a top-level object, one at a time. If `key` is not
        the object's first key, the document is decoded whole (small documents only do that)."""
        self._expect("{")
        self._skip_ws()
        if not self.buf.startswith(f'"{key}"', self.pos):
            self.pos -= 1  # back to "{"
            document = self._decode()
            yield from (document.get(key) or ()) if isinstance(document, dict) else ()
            return
        self.pos += len(key) + 2
        self._expect(":")
        if self._skip_ws() == "n":  # "key": null
            return
        self._expect("[")
        if self._skip_ws() == "]":
            return
        while True:
            self._skip_ws()
            yield self._decode()
            char = self._skip_ws()
            if char == ",":
                self.pos += 1
                continue
            if char == "]":
                return
            raise SpanFileError(f"{self.path}: expected ',' or ']' at character {self.offset + self.pos}")


# --- format-specific span conversion ---------------------------------------------------------


def _any_value(value: dict[str, Any]) -> Any:
    for kind, inner in value.items():
        if kind == "stringValue":
            return inner
        if kind == "intValue":
            return int(inner)
        if kind == "boolValue" or kind == "doubleValue":
            return inner
        if kind == "arrayValue":
            return [_any_value(v) for v in inner.get("values", ())]
        if kind == "kvlistValue":
            return {kv["key"]: _any_value(kv.get("value", {})) for kv in inner.get("values", ())}
        return inner
    return None


def _attributes(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    if not items:
        return {}
    return {kv["key"]: _any_value(kv.get("value") or {}) for kv in items}


def _otlp_resource_spans(resource_spans: dict[str, Any]) -> Iterator[Span]:
    resource = _attributes((resource_spans.get("resource") or {}).get("attributes"))
    service = resource.get("service.name")
    scope_list = resource_spans.get("scopeSpans") or resource_spans.get("instrumentationLibrarySpans") or ()
    for scope_spans in scope_list:
        scope = scope_spans.get("scope") or scope_spans.get("instrumentationLibrary") or {}
        scope_name = scope.get("name") or None
        for raw in scope_spans.get("spans") or ():
            end = int(raw.get("endTimeUnixNano") or 0)
            kind = raw.get("kind", 0)
            if isinstance(kind, str):  # protobuf's JSON mapping may spell enums by name
                kind = kind.replace("SPAN_KIND_", "")
            else:
                kind = KIND_NAMES[kind] if 0 <= kind < len(KIND_NAMES) else "UNSPECIFIED"
            yield Span(
                _otlp_id(raw.get("traceId", ""), 32),
                _otlp_id(raw.get("spanId", ""), 16),
                _otlp_id(raw["parentSpanId"], 16) if raw.get("parentSpanId") else None,
                raw.get("name", ""),
                kind,
                int(raw.get("startTimeUnixNano") or 0),
                end or None,
                _attributes(raw.get("attributes")),
                scope_name,
                service,
            )


def _otlp_id(value: str, hex_len: int) -> str:
    if len(value) == hex_len:
        return value.lower()
    # protobuf's generic JSON mapping writes bytes as base64; the OTLP spec says hex. Accept both.
    import base64
    import binascii

    try:
        return base64.b64decode(value).hex()
    except (binascii.Error, ValueError):
        return value


def _iso_to_ns(value: str | None) -> int | None:
    if not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = int(moment.timestamp())
    return seconds * 1_000_000_000 + moment.microsecond * 1000


def _console_span(obj: dict[str, Any]) -> Span:
    context = obj.get("context") or {}
    kind = str(obj.get("kind") or "SpanKind.INTERNAL").rsplit(".", 1)[-1]
    parent = obj.get("parent_id")
    resource = (obj.get("resource") or {}).get("attributes") or {}
    return Span(
        str(context.get("trace_id", "")).removeprefix("0x"),
        str(context.get("span_id", "")).removeprefix("0x"),
        parent.removeprefix("0x") if parent else None,
        obj.get("name", ""),
        kind,
        _iso_to_ns(obj.get("start_time")) or 0,
        _iso_to_ns(obj.get("end_time")),
        dict(obj.get("attributes") or {}),
        None,  # the console format does not carry the instrumentation scope
        resource.get("service.name"),
    )


_JAEGER_SPECIAL = {"span.kind", "otel.scope.name", "otel.scope.version", "otel.library.name", "otel.library.version", "internal.span.format"}


def _jaeger_trace(trace: dict[str, Any]) -> Iterator[Span]:
    processes = trace.get("processes") or {}
    for raw in trace.get("spans") or ():
        tags = {t.get("key"): t.get("value") for t in raw.get("tags") or ()}
        parent = None
        for ref in raw.get("references") or ():
            if ref.get("refType") == "CHILD_OF":
                parent = ref.get("spanID")
                break
        if parent is None and raw.get("parentSpanID"):
            parent = raw["parentSpanID"]
        start_ns = int(raw.get("startTime") or 0) * 1000
        process = processes.get(raw.get("processID")) or raw.get("process") or {}
        yield Span(
            str(raw.get("traceID", "")).rjust(32, "0"),
            str(raw.get("spanID", "")).rjust(16, "0"),
            str(parent).rjust(16, "0") if parent else None,
            raw.get("operationName", ""),
            str(tags.get("span.kind") or "internal").upper(),
            start_ns,
            start_ns + int(raw.get("duration") or 0) * 1000,
            {k: v for k, v in tags.items() if k not in _JAEGER_SPECIAL},
            tags.get("otel.scope.name") or tags.get("otel.library.name"),
            process.get("serviceName"),
        )


__all__ = ["EXPECTED", "FORMATS", "SpanFile", "SpanFileError", "detect_format"]
