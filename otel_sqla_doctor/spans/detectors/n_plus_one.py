"""OSD601 n-plus-one-queries

## What it does
Finds a parent span (a request, a job) with at least N sibling database spans (default 5,
`--n-plus-one-threshold`) whose statements are the same once normalized: literals, bind
placeholders (`:x`, `$1`, `%s`, `?`), IN-lists and sqlcommenter comments taken out. It reports
the parent, how many times the statement ran, the statement, and the time the run took.

## Why is this bad?
One query per row: the code loads a list, then runs the same query again for every item, usually
by touching a lazy relationship in a loop. Every query is a network round trip and a pass through
the pool, so the request grows linearly with the data and is slow long before the database is.
With an async engine a lazy load cannot even happen implicitly: the loop had to `await
obj.awaitable_attrs.rel` (or use `run_sync`), which makes the pattern easy to write and hard to see.

## Example
```python
authors = (await session.scalars(select(Author))).all()
for author in authors:
    books = await author.awaitable_attrs.books   # one SELECT per author
```

## Use instead
```python
authors = (await session.scalars(select(Author).options(selectinload(Author.books)))).all()
```
or a JOIN, or collect the ids and run one `WHERE author_id = ANY(:ids)` query.

## Known problems
Sibling spans only: a loop that opens a child span per item (so each query has its own parent)
is not counted. Transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT) is never counted.
Spans of two instrumentations (see OSD603) are counted per instrumentation, not added up.

## References
- SQLAlchemy, "Relationship Loading Techniques": https://docs.sqlalchemy.org/en/20/orm/queryguide/relationships.html
- SQLAlchemy asyncio, "Preventing Implicit IO when Using AsyncSession"
"""

from __future__ import annotations

from collections import defaultdict

from otel_sqla_doctor.report.style import shorten
from otel_sqla_doctor.spans.detectors.base import Detector, ms
from otel_sqla_doctor.spans.normalize import is_transaction_control


class NPlusOneQueries(Detector):
    CODE = "OSD601"
    NAME = "n-plus-one-queries"
    SEVERITY = "error"
    SUMMARY = "the same statement runs once per row under one parent span"
    FIX = (
        "load the rows in one query: selectinload()/joinedload() on the relationship, a JOIN, "
        "or one `WHERE id = ANY(:ids)` query with the collected ids"
    )

    def visit_trace(self, trace):
        groups = defaultdict(list)
        for span in trace.queries:
            statement = span.statement
            if is_transaction_control(statement):
                continue
            groups[(span.parent_id, trace.scope_of(span), trace.shape(span).text)].append(span)
        for (parent_id, scope, shape), spans in groups.items():
            if len(spans) < self.options.n_plus_one_threshold:
                continue
            trace.mark(spans, self.CODE)
            parent = trace.parent_name(spans[0])
            total_ns = sum(s.duration_ns for s in spans)
            wall_ns = max(s.end_ns for s in spans) - min(s.start_ns for s in spans)
            count = len(spans)
            yield self.occurrence(
                key=(parent, shape),
                weight=count,
                message=(
                    f"{count} × the same statement under {parent!r} "
                    f"({ms(total_ns)} ms in queries, {ms(wall_ns)} ms from first to last): {shorten(shape, 120)}"
                ),
                trace_id=trace.trace_id,
                span_id=parent_id,
                details={
                    "count": count,
                    "statement": shape,
                    "example": shorten(spans[0].statement or "", 400),
                    "parent": parent,
                    "parent_span_id": parent_id,
                    "scope": scope,
                    "total_ms": ms(total_ns),
                    "wall_ms": ms(wall_ns),
                    "span_ids": [s.span_id for s in spans[:50]],
                },
            )
