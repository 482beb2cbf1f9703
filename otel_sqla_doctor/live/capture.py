"""An in-memory span processor: which spans started, which ended, in order.

An exporter only sees ended spans; the #2149 double tracer leaks a span that never ends, so the
probe needs `on_start` as well. The processor can be added to a user's TracerProvider and stays
there (the SDK cannot remove processors), so it stops recording once the probe is done.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

SQLALCHEMY_SCOPE = "opentelemetry.instrumentation.sqlalchemy"


@dataclass(frozen=True)
class StartedSpan:
    name: str
    scope: str
    trace_id: int
    span_id: int
    parent_span_id: int | None


class SpanRecorder(SpanProcessor):
    def __init__(self) -> None:
        self.started: list[StartedSpan] = []
        self.ended: list[ReadableSpan] = []
        self.active = True
        self._lock = threading.Lock()

    def on_start(self, span, parent_context=None) -> None:
        if not self.active:
            return
        context = span.get_span_context()
        scope = span.instrumentation_scope.name if span.instrumentation_scope else ""
        parent = span.parent.span_id if span.parent else None
        with self._lock:
            self.started.append(StartedSpan(span.name, scope, context.trace_id, context.span_id, parent))

    def on_end(self, span: ReadableSpan) -> None:
        if not self.active:
            return
        with self._lock:
            self.ended.append(span)

    def mark(self) -> tuple[int, int]:
        with self._lock:
            return len(self.started), len(self.ended)

    def since(self, mark: tuple[int, int]) -> tuple[list[StartedSpan], list[ReadableSpan]]:
        with self._lock:
            return list(self.started[mark[0]:]), list(self.ended[mark[1]:])

    def shutdown(self) -> None:
        self.active = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
