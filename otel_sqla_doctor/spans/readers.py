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


class _Malformed(ValueError):
    """A record whose fields have the wrong type or shape: it is skipped, with a warning."""


# What converting a record of the wrong shape can raise: it is skipped, never a crash.
_RECORD_ERRORS = (_Malformed, TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError, OverflowError)


class _Skipped:
    """Counts records skipped per kind, keeping the first one's place and reason for the warning."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.first: dict[str, str] = {}

    def add(self, kind: str, where: str, reason: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.first.setdefault(kind, f"{where}: {reason}" if where else reason)

    def add_error(self, where: str, exc: BaseException) -> None:
        self.add("malformed records", where, _reason(exc))

    def warnings(self) -> list[str]:
        out = []
        for kind, count in self.counts.items():
            more = f", and {count - 1} more {kind}" if count > 1 else ""
            out.append(f"{self.first[kind]}; skipped{more}")
        return out


def _reason(exc: BaseException) -> str:
    if isinstance(exc, _Malformed):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    lines = str(exc).strip().splitlines()
    return f"a field of the wrong type ({type(exc).__name__}: {lines[0][:120] if lines else ''})".replace(": )", ")")


class SpanFile:
    """One input file: its detected format, and an iterator over its spans (read once).

    Records whose fields have the wrong type are skipped and counted in `warnings`, with the
    first one's place and reason; `spans_read` counts the spans that were read."""

    def __init__(self, path: Path, *, chunk_size: int = _CHUNK) -> None:
        self.path = Path(path)
        self.chunk_size = chunk_size
        self.warnings: list[str] = []
        self.spans_read = 0
        self.format = detect_format(self.path)
        self._skipped = _Skipped()

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
        self.warnings.extend(self._skipped.warnings())

    @property
    def why_empty(self) -> str:
        """Why no span was read (after iterating): the file is empty, or what was skipped."""
        if self.format == "empty":
            return "the file is empty"
        if self.warnings:
            return "; ".join(self.warnings)
        return "it holds no spans"

    # --- OTLP -------------------------------------------------------------------------------
    def _otlp_lines(self, fh: TextIO) -> Iterator[Span]:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except RecursionError:
                self._skipped.add("lines nested too deeply", f"line {number}", "JSON nested too deeply")
                continue
            except ValueError as exc:
                msg = getattr(exc, "msg", None) or str(exc).splitlines()[0]
                self._skipped.add("lines that were not JSON", f"line {number}", f"not JSON ({msg})")
                continue
            yield from _otlp_request(request, f"line {number}", self._skipped)

    def _otlp_document(self, fh: TextIO) -> Iterator[Span]:
        # One document, or several one after the other (JSON lines too long to tell apart).
        values = _ValueStream(fh, self.chunk_size, self.path)
        index = 0
        while values.next_object():
            for resource_spans in values.array_items("resourceSpans"):
                yield from _otlp_resource_spans(resource_spans, f"resourceSpans[{index}]", self._skipped)
                index += 1

    # --- console ------------------------------------------------------------------------------
    def _console(self, fh: TextIO) -> Iterator[Span]:
        values = _ValueStream(fh, self.chunk_size, self.path)
        for number, obj in enumerate(values.objects(skip_text=True), 1):
            if isinstance(obj, dict) and "context" in obj and "name" in obj:
                try:
                    span = _console_span(obj)
                except _RECORD_ERRORS as exc:
                    self._skipped.add_error(f"span object {number}", exc)
                    continue
                yield span
        if values.skipped_lines:
            self.warnings.append(f"{values.skipped_lines} lines of other output between the spans were skipped")

    # --- Jaeger -------------------------------------------------------------------------------
    def _jaeger(self, fh: TextIO) -> Iterator[Span]:
        values = _ValueStream(fh, self.chunk_size, self.path)
        index = 0
        while values.next_object():
            for trace in values.array_items("data"):
                yield from _jaeger_trace(trace, f"data[{index}]", self._skipped)
                index += 1


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
            except RecursionError:  # one line too deep to decode: read as lines, and skipped
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
            except RecursionError:
                raise SpanFileError(
                    f"{self.path}: JSON nested too deeply at character {self.offset + self.pos} (deeper than any span export)"
                ) from None
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

    def next_object(self) -> bool:
        """Whether another top-level object follows (documents one after the other); any other
        text after the last one is an error, never silently ignored."""
        char = self._skip_ws()
        if not char:
            return False
        if char != "{":
            raise SpanFileError(f"{self.path}: expected a JSON object at character {self.offset + self.pos}, found {char!r}")
        return True

    def array_items(self, key: str) -> Iterator[Any]:
        """The elements of the array at `key` of a top-level object, one at a time, then the rest
        of that object. If `key` is not the object's first key, the document is decoded whole
        (small documents only do that)."""
        self._expect("{")
        self._skip_ws()
        if not self.buf.startswith(f'"{key}"', self.pos):
            self.pos -= 1  # back to "{"
            document = self._decode()
            items = document.get(key) if isinstance(document, dict) else None
            if items is not None and not isinstance(items, list):
                raise SpanFileError(f"{self.path}: {key!r} is {_describe(items)}, expected a list")
            yield from items or ()
            return
        self.pos += len(key) + 2
        self._expect(":")
        if self._skip_ws() == "n":  # "key": null
            self._decode()  # null
            self._finish_object()
            return
        self._expect("[")
        if self._skip_ws() == "]":
            self.pos += 1
            self._finish_object()
            return
        while True:
            self._skip_ws()
            yield self._decode()
            char = self._skip_ws()
            if char == ",":
                self.pos += 1
                continue
            if char == "]":
                self.pos += 1
                self._finish_object()
                return
            raise SpanFileError(f"{self.path}: expected ',' or ']' at character {self.offset + self.pos}")

    def _finish_object(self) -> None:
        """Skip the keys after the array up to the object's closing brace."""
        while True:
            char = self._skip_ws()
            if char == "}":
                self.pos += 1
                return
            if char != ",":
                where = f"found {char!r}" if char else "the file ends"
                raise SpanFileError(f"{self.path}: expected ',' or '}}' at character {self.offset + self.pos}, {where}")
            self.pos += 1
            self._skip_ws()
            self._decode()  # the key
            self._expect(":")
            self._skip_ws()
            self._decode()  # its value


# --- format-specific span conversion ---------------------------------------------------------
# Every field is checked for its type: a record of the wrong shape is skipped with a warning
# (see _Skipped), never a crash, and a Span always holds the types its annotations say.


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _require(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        expected = {dict: "an object", list: "a list", str: "a string"}.get(kind, kind.__name__)
        raise _Malformed(f"{what} is {_describe(value)}, expected {expected}")
    return value


def _id(value: Any, what: str) -> str:
    if value is None or value == "":
        raise _Malformed(f"{what} is missing")
    if not isinstance(value, str):
        raise _Malformed(f"{what} is {_describe(value)}, expected a hex string")
    return value


def _optional_text(value: Any) -> str | None:
    """A name-like value (scope, service): a string, or None; other scalars become strings."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    raise _Malformed(f"a name is {_describe(value)}, expected a string")


def _integer(value: Any, what: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise _Malformed(f"{what} is a boolean, expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise _Malformed(f"{what} {value[:40]!r} is not an integer") from None
    raise _Malformed(f"{what} is {_describe(value)}, expected an integer")


def _any_value(value: dict[str, Any]) -> Any:
    for kind, inner in value.items():
        if kind == "stringValue":
            return inner
        if kind == "intValue":
            return _integer(inner, "an intValue")
        if kind == "boolValue" or kind == "doubleValue":
            return inner
        if kind == "arrayValue":
            return [_any_value(_require(v, dict, "an array item")) for v in _require(inner, dict, "arrayValue").get("values") or ()]
        if kind == "kvlistValue":
            return _attributes(_require(inner, dict, "kvlistValue").get("values"))
        return inner
    return None


def _attributes(items: Any) -> dict[str, Any]:
    if not items:
        return {}
    out: dict[str, Any] = {}
    for kv in _require(items, list, "attributes"):
        _require(kv, dict, "an attribute")
        key = kv.get("key")
        if not isinstance(key, str):
            raise _Malformed(f"an attribute key is {_describe(key)}, expected a string")
        out[key] = _any_value(_require(kv.get("value") or {}, dict, f"attribute {key!r}"))
    return out


def _otlp_request(request: Any, where: str, skipped: _Skipped) -> Iterator[Span]:
    """The spans of one export request ({"resourceSpans": [...]}); other signals have none."""
    if not isinstance(request, dict):
        skipped.add("malformed records", where, f"{_describe(request)}, expected an export request object")
        return
    items = request.get("resourceSpans")
    if items is None:
        return
    if not isinstance(items, list):
        skipped.add("malformed records", where, f"resourceSpans is {_describe(items)}, expected a list")
        return
    for resource_spans in items:
        yield from _otlp_resource_spans(resource_spans, where, skipped)


def _otlp_resource_spans(resource_spans: Any, where: str, skipped: _Skipped) -> Iterator[Span]:
    try:
        _require(resource_spans, dict, "a resourceSpans item")
        resource = _require(resource_spans.get("resource") or {}, dict, "resource")
        service = _optional_text(_attributes(resource.get("attributes")).get("service.name"))
        scope_list = _require(
            resource_spans.get("scopeSpans") or resource_spans.get("instrumentationLibrarySpans") or [], list, "scopeSpans"
        )
    except _RECORD_ERRORS as exc:
        skipped.add_error(where, exc)
        return
    for scope_spans in scope_list:
        try:
            _require(scope_spans, dict, "a scopeSpans item")
            scope = _require(scope_spans.get("scope") or scope_spans.get("instrumentationLibrary") or {}, dict, "scope")
            scope_name = _optional_text(scope.get("name"))
            raws = _require(scope_spans.get("spans") or [], list, "spans")
        except _RECORD_ERRORS as exc:
            skipped.add_error(where, exc)
            continue
        for raw in raws:
            try:
                span = _otlp_span(raw, scope_name, service)
            except _RECORD_ERRORS as exc:
                skipped.add_error(where, exc)
                continue
            yield span


def _otlp_span(raw: Any, scope_name: str | None, service: str | None) -> Span:
    _require(raw, dict, "a span")
    kind = raw.get("kind", 0)
    if isinstance(kind, str):  # protobuf's JSON mapping may spell enums by name
        kind = kind.replace("SPAN_KIND_", "")
    elif isinstance(kind, int) and not isinstance(kind, bool):
        kind = KIND_NAMES[kind] if 0 <= kind < len(KIND_NAMES) else "UNSPECIFIED"
    elif kind is None:
        kind = "UNSPECIFIED"
    else:
        raise _Malformed(f"kind is {_describe(kind)}, expected a number or a name")
    parent = raw.get("parentSpanId")
    end = _integer(raw.get("endTimeUnixNano"), "endTimeUnixNano")
    return Span(
        _otlp_id(_id(raw.get("traceId"), "traceId"), 32),
        _otlp_id(_id(raw.get("spanId"), "spanId"), 16),
        _otlp_id(_id(parent, "parentSpanId"), 16) if parent else None,
        _require(raw.get("name") or "", str, "name"),
        kind,
        _integer(raw.get("startTimeUnixNano"), "startTimeUnixNano"),
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


def _iso_to_ns(value: Any, what: str) -> int | None:
    if not value:
        return None
    if not isinstance(value, str):
        raise _Malformed(f"{what} is {_describe(value)}, expected an ISO 8601 time")
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Malformed(f"{what} {value[:40]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = int(moment.timestamp())
    return seconds * 1_000_000_000 + moment.microsecond * 1000


def _console_span(obj: dict[str, Any]) -> Span:
    context = _require(obj.get("context") or {}, dict, "context")
    kind = _require(obj.get("kind") or "SpanKind.INTERNAL", str, "kind").rsplit(".", 1)[-1]
    parent = obj.get("parent_id")
    resource = _require(obj.get("resource") or {}, dict, "resource")
    resource_attributes = _require(resource.get("attributes") or {}, dict, "resource attributes")
    return Span(
        _id(context.get("trace_id"), "context.trace_id").removeprefix("0x"),
        _id(context.get("span_id"), "context.span_id").removeprefix("0x"),
        _id(parent, "parent_id").removeprefix("0x") if parent else None,
        _require(obj.get("name") or "", str, "name"),
        kind,
        _iso_to_ns(obj.get("start_time"), "start_time") or 0,
        _iso_to_ns(obj.get("end_time"), "end_time"),
        dict(_require(obj.get("attributes") or {}, dict, "attributes")),
        None,  # the console format does not carry the instrumentation scope
        _optional_text(resource_attributes.get("service.name")),
    )


_JAEGER_SPECIAL = {"span.kind", "otel.scope.name", "otel.scope.version", "otel.library.name", "otel.library.version", "internal.span.format"}


def _jaeger_trace(trace: Any, where: str, skipped: _Skipped) -> Iterator[Span]:
    try:
        _require(trace, dict, "a trace")
        processes = _require(trace.get("processes") or {}, dict, "processes")
        raws = _require(trace.get("spans") or [], list, "spans")
    except _RECORD_ERRORS as exc:
        skipped.add_error(where, exc)
        return
    for raw in raws:
        try:
            span = _jaeger_span(raw, trace.get("traceID"), processes)
        except _RECORD_ERRORS as exc:
            skipped.add_error(where, exc)
            continue
        yield span


def _jaeger_span(raw: Any, trace_id: Any, processes: dict[str, Any]) -> Span:
    _require(raw, dict, "a span")
    tags: dict[str, Any] = {}
    for tag in _require(raw.get("tags") or [], list, "tags"):
        key = _require(tag, dict, "a tag").get("key")
        if not isinstance(key, str):
            raise _Malformed(f"a tag key is {_describe(key)}, expected a string")
        tags[key] = tag.get("value")
    parent = None
    for ref in _require(raw.get("references") or [], list, "references"):
        if _require(ref, dict, "a reference").get("refType") == "CHILD_OF":
            parent = _id(ref.get("spanID"), "references.spanID")
            break
    if parent is None and raw.get("parentSpanID"):
        parent = _id(raw["parentSpanID"], "parentSpanID")
    start_ns = _integer(raw.get("startTime"), "startTime") * 1000
    process_id = raw.get("processID")
    process = processes.get(process_id) if isinstance(process_id, str) else None
    process = _require(process or raw.get("process") or {}, dict, "process")
    return Span(
        _id(raw.get("traceID") or trace_id, "traceID").rjust(32, "0"),
        _id(raw.get("spanID"), "spanID").rjust(16, "0"),
        parent.rjust(16, "0") if parent else None,
        _require(raw.get("operationName") or "", str, "operationName"),
        str(tags.get("span.kind") or "internal").upper(),
        start_ns,
        start_ns + _integer(raw.get("duration"), "duration") * 1000,
        {k: v for k, v in tags.items() if k not in _JAEGER_SPECIAL},
        _optional_text(tags.get("otel.scope.name") or tags.get("otel.library.name")),
        _optional_text(process.get("serviceName")),
    )


__all__ = ["EXPECTED", "FORMATS", "SpanFile", "SpanFileError", "detect_format"]
