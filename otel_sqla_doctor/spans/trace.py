"""One trace's spans, indexed the ways the detectors ask for them."""

from __future__ import annotations

from collections import defaultdict
from functools import cached_property

from otel_sqla_doctor.spans.model import Span
from otel_sqla_doctor.spans.normalize import Normalizer, Shape


class TraceView:
    def __init__(self, trace_id: str, spans: list[Span], normalizer: Normalizer) -> None:
        self.trace_id = trace_id
        self.spans = spans
        self._normalizer = normalizer
        self.marks: dict[str, set[str]] = defaultdict(set)  # span id -> codes it is evidence for

    @cached_property
    def by_id(self) -> dict[str, Span]:
        return {s.span_id: s for s in self.spans}

    @cached_property
    def children(self) -> dict[str | None, list[Span]]:
        out: dict[str | None, list[Span]] = defaultdict(list)
        for span in self.spans:
            out[span.parent_id].append(span)
        for kids in out.values():
            kids.sort(key=lambda s: s.start_ns)
        return out

    @cached_property
    def db_spans(self) -> list[Span]:
        """Ended database spans (queries and connects)."""
        return [s for s in self.spans if s.end_ns is not None and s.is_db]

    @cached_property
    def queries(self) -> list[Span]:
        """Ended database spans that carry a statement."""
        return [s for s in self.db_spans if s.statement]

    @cached_property
    def unended(self) -> list[Span]:
        return [s for s in self.spans if s.end_ns is None]

    def shape(self, span: Span) -> Shape:
        return self._normalizer(span.statement or "")

    def parent_name(self, span: Span) -> str:
        parent = self.by_id.get(span.parent_id) if span.parent_id else None
        if parent is not None:
            return parent.name
        return "(no parent)" if span.parent_id is None else "(parent not in file)"

    def scope_of(self, span: Span) -> str:
        """The instrumentation that made the span; formats without scopes (console) fall back to
        the set of attribute names, which differs between instrumentations."""
        if span.scope:
            return span.scope
        return "attributes:" + ",".join(sorted(span.attributes))

    def mark(self, spans, code: str) -> None:
        for span in spans:
            self.marks[span.span_id].add(code)
