"""OSD604 unended-spans

## What it does
Reports spans that were started and never ended. Exporters only ever see ended spans, so these
come from `doctor trace`, whose bootstrap watches span starts and writes the spans still open when
the program exits (with no end time). Other inputs report them when they carry spans without an
end time. When an unended SQLAlchemy span has an ended twin (same parent, same statement, started
within a millisecond), the engine had two tracers: the import-order bug of
opentelemetry-python-contrib #2149.

## Why is this bad?
A span that never ends is never exported and is never freed by the SDK: memory grows with every
query, the trace has a hole where the work was, and sqlcommenter's traceparent (if on) can point
at the span that was never exported. With #2149, every query starts two spans and leaks one.

## Example
```python
SQLAlchemyInstrumentor().instrument()
from sqlalchemy.ext.asyncio import create_async_engine   # first imported after instrument()
engine = create_async_engine(url)                        # two EngineTracers: 2 spans per query
```

## Use instead
```python
import sqlalchemy.ext.asyncio                            # imported before instrument()
SQLAlchemyInstrumentor().instrument()
```
or instrument the one engine: `SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)`.
For your own spans, prefer `with tracer.start_as_current_span(...)` to a bare `start_span()`.

## Known problems
A program killed by a signal that bypasses exit handlers (SIGKILL, `os._exit`) leaves no record of
its open spans. Spans deliberately kept open across the exit (a span around the whole process
that the program never closes) are reported too.

## References
- opentelemetry-python-contrib #2149 "Unclosed Spans and Memory Leak"
"""

from __future__ import annotations

from collections import defaultdict

from otel_sqla_doctor.report.style import shorten
from otel_sqla_doctor.spans.detectors.base import Detector

_TWIN_WINDOW_NS = 1_000_000


class UnendedSpans(Detector):
    CODE = "OSD604"
    NAME = "unended-spans"
    SEVERITY = "error"
    SUMMARY = "spans started and never ended (leaked; never exported)"
    FIX = (
        "end every span (use `with tracer.start_as_current_span(...)`); for SQLAlchemy twins, import "
        "sqlalchemy.ext.asyncio before SQLAlchemyInstrumentor().instrument() (#2149)"
    )

    def visit_trace(self, trace):
        if not trace.unended:
            return
        groups = defaultdict(list)
        for span in trace.unended:
            twin = self._ended_twin(trace, span)
            groups[(span.scope or "", span.name, twin is not None)].append(span)
        for (scope, name, twinned), spans in groups.items():
            trace.mark(spans, self.CODE)
            cause = (
                "each has an ended twin: two SQLAlchemy tracers on one engine (sqlalchemy.ext.asyncio imported "
                "after instrument(), #2149)"
                if twinned
                else "never ended"
            )
            yield self.occurrence(
                key=(scope, name, twinned),
                weight=len(spans),
                message=f"{len(spans)} span(s) {name!r}{' from ' + scope if scope else ''} started and {cause}",
                trace_id=trace.trace_id,
                span_id=spans[0].span_id,
                details={
                    "count": len(spans),
                    "name": name,
                    "scope": scope or None,
                    "twinned": twinned,
                    "statement": shorten(spans[0].statement or "", 300) or None,
                    "span_ids": [s.span_id for s in spans[:50]],
                },
            )

    @staticmethod
    def _ended_twin(trace, span):
        statement = span.statement
        for sibling in trace.children.get(span.parent_id, ()):
            if (
                sibling.end_ns is not None
                and sibling.name == span.name
                and sibling.scope == span.scope
                and sibling.statement == statement
                and abs(sibling.start_ns - span.start_ns) <= _TWIN_WINDOW_NS
            ):
                return sibling
        return None
