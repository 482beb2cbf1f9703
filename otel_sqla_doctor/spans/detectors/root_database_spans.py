"""OSD606 database-span-without-parent

## What it does
Reports database spans that are trace roots: queries that ran while no span was current, so each
one became a trace of its own. Connection checkouts (`connect` spans, no statement) are not
reported on their own.

## Why is this bad?
A query outside any request or job span cannot be attributed to anything: it does not show in the
request's waterfall, it is not counted in the request's time, and an N+1 spread over root spans is
invisible. Usual causes: work started at import or startup, a background task created without
the request's context, a job runner that opens no span, or instrumentation that sets up its
request spans after the database code already ran.

## Example
```python
async def refresh_cache():              # scheduled job: no span around it
    await session.execute(select(Price))
```

## Use instead
```python
async def refresh_cache():
    with tracer.start_as_current_span("refresh_cache"):
        await session.execute(select(Price))
```
and carry the context into tasks you spawn (`asyncio.create_task` copies the current context when
it is called inside the span).

## Known problems
A database span whose parent is missing from the file (a remote parent, or a parent dropped by
sampling or by the export) is not a root and is not reported. Startup work that really has no
request (migrations, cache warm-up) is reported too; wrap it in a span to make it visible.

## References
- OpenTelemetry Python, "Context propagation": https://opentelemetry.io/docs/languages/python/propagation/
"""

from __future__ import annotations

from collections import defaultdict

from otel_sqla_doctor.report.style import shorten
from otel_sqla_doctor.spans.detectors.base import Detector


class DatabaseSpanWithoutParent(Detector):
    CODE = "OSD606"
    NAME = "database-span-without-parent"
    SUMMARY = "database spans that are trace roots (queries outside any request or job span)"
    FIX = (
        "run the work inside a span (tracer.start_as_current_span around jobs and startup work) and keep "
        "the request's context in tasks it spawns"
    )

    def visit_trace(self, trace):
        groups = defaultdict(list)
        for span in trace.queries:
            if span.parent_id is None:
                groups[trace.shape(span).text].append(span)
        for label, spans in groups.items():
            trace.mark(spans, self.CODE)
            yield self.occurrence(
                key=(label,),
                weight=len(spans),
                message=f"database span with no parent: {shorten(label, 120)}",
                trace_id=trace.trace_id,
                span_id=spans[0].span_id,
                details={"statement": label, "name": spans[0].name, "count": len(spans)},
            )
