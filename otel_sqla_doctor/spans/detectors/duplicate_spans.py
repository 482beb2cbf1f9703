"""OSD603 duplicate-database-spans

## What it does
Finds one database call traced twice: two spans under the same parent, from two different
instrumentation scopes (typically `opentelemetry.instrumentation.sqlalchemy` and
`opentelemetry.instrumentation.asyncpg`), with the same normalized statement and overlapping in
time. It reports the two scopes and how many statements of the trace were doubled.

## Why is this bad?
Every query is counted twice: dashboards double the query rate, the span volume (and its bill)
grows, and per-statement latency is split between two spans that disagree. The two spans are
siblings, not parent and child, so nothing in the trace view says they are the same call. The
driver instrumentation also adds its own `BEGIN;`/`ROLLBACK;` spans to every transaction.
Since opentelemetry-instrumentation-asyncpg 0.64b0 traces `PreparedStatement` calls, every
SQLAlchemy query over asyncpg is traced by both when both are on.

## Example
```python
SQLAlchemyInstrumentor().instrument()
AsyncPGInstrumentor().instrument()      # or both picked up by opentelemetry-instrument
```

## Use instead
Keep one instrumentation for the database calls. With SQLAlchemy in front, keep
`SQLAlchemyInstrumentor` (it knows the engine, the pool and the ORM statement) and leave asyncpg
uninstrumented; with `opentelemetry-instrument`, set
`OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=asyncpg`.

## Known problems
The console exporter format carries no instrumentation scope; there the set of attribute names
stands in for it (asyncpg sets `net.transport`, SQLAlchemy sets `db.operation`), which is reliable
for these two instrumentations but not in general.

## References
- opentelemetry-python-contrib #2826 (SQLAlchemy and driver spans are siblings), #4528 / PR #4529
"""

from __future__ import annotations

from collections import defaultdict

from otel_sqla_doctor.report.style import shorten
from otel_sqla_doctor.spans.detectors.base import Detector
from otel_sqla_doctor.spans.normalize import is_transaction_control


class DuplicateDatabaseSpans(Detector):
    CODE = "OSD603"
    NAME = "duplicate-database-spans"
    SUMMARY = "one database call traced by two instrumentations (e.g. sqlalchemy and asyncpg)"
    FIX = (
        "keep one database instrumentation: with SQLAlchemy in front keep SQLAlchemyInstrumentor and "
        "do not instrument asyncpg (OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=asyncpg)"
    )

    def visit_trace(self, trace):
        pairs_by_scopes = defaultdict(list)
        by_parent = defaultdict(list)
        for span in trace.queries:
            if not is_transaction_control(span.statement):
                by_parent[span.parent_id].append(span)
        for siblings in by_parent.values():
            if len(siblings) < 2:
                continue
            siblings.sort(key=lambda s: s.start_ns)
            used: set[str] = set()
            for i, first in enumerate(siblings):
                if first.span_id in used:
                    continue
                first_scope = trace.scope_of(first)
                first_shape = trace.shape(first).text
                for second in siblings[i + 1 :]:
                    if second.start_ns > first.end_ns:
                        break  # sorted by start: nothing later overlaps
                    if second.span_id in used or trace.scope_of(second) == first_scope:
                        continue
                    if trace.shape(second).text != first_shape:
                        continue
                    used.update((first.span_id, second.span_id))
                    scopes = tuple(sorted((first_scope, trace.scope_of(second))))
                    pairs_by_scopes[scopes].append((first, second))
                    break
        for scopes, pairs in pairs_by_scopes.items():
            trace.mark([s for pair in pairs for s in pair], self.CODE)
            first, second = pairs[0]
            yield self.occurrence(
                key=scopes,
                weight=len(pairs),
                message=(
                    f"{len(pairs)} statement(s) traced twice in one trace, by {scopes[0]} and {scopes[1]}: "
                    f"{shorten(trace.shape(first).text, 100)}"
                ),
                trace_id=trace.trace_id,
                span_id=first.span_id,
                details={
                    "scopes": list(scopes),
                    "pairs": len(pairs),
                    "statement": trace.shape(first).text,
                    "span_ids": [[a.span_id, b.span_id] for a, b in pairs[:20]],
                    "parent": trace.parent_name(first),
                },
            )
