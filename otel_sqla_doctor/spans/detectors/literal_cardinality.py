"""OSD602 literal-cardinality

## What it does
Groups statements by their normalized shape and reports a shape that reached the database with at
least N different sets of literal values written into the SQL text (default 3,
`--literal-threshold`), instead of bind parameters: `WHERE id = 7`, `WHERE id = 8`, ... rather than
`WHERE id = $1`.

## Why is this bad?
Literal values in the text mean the SQL was built by string interpolation (an f-string or `%`
into `text()`), which is how SQL injection happens; static analysis flags the same code as OSD301
(`doctor explain OSD301`). It also costs at run time: every value is a new statement to parse and
plan, the driver's prepared-statement cache never hits, and every distinct text becomes a distinct
`db.statement`, so traces and metrics keyed on the statement explode in cardinality.

## Example
```python
await session.execute(text(f"SELECT name FROM users WHERE id = {user_id}"))
```

## Use instead
```python
await session.execute(text("SELECT name FROM users WHERE id = :id"), {"id": user_id})
```

## Known problems
A query written by hand with different constants at several call sites looks the same as
interpolation; the threshold keeps two or three such sites quiet. Literal values are counted per
shape up to 100 distinct sets. IN-lists of bound parameters are not literals and never count.

## References
- SQLAlchemy, "Using Textual SQL" / bound parameters: https://docs.sqlalchemy.org/en/20/tutorial/dbapi_transactions.html
- OWASP, "Query Parameterization Cheat Sheet"
"""

from __future__ import annotations

from otel_sqla_doctor.report.style import shorten
from otel_sqla_doctor.spans.detectors.base import Detector
from otel_sqla_doctor.spans.normalize import strip_comments

_MAX_SHAPES = 10_000
_MAX_VARIANTS = 100


class _ShapeStats:
    __slots__ = ("variants", "executions", "examples", "trace_ids", "span_id")

    def __init__(self) -> None:
        self.variants: set[tuple[str, ...]] = set()
        self.executions = 0
        self.examples: list[str] = []
        self.trace_ids: list[str] = []
        self.span_id: str | None = None


class LiteralCardinality(Detector):
    CODE = "OSD602"
    NAME = "literal-cardinality"
    SUMMARY = "one statement shape sent with many different literal values (SQL built by interpolation)"
    FIX = (
        "pass values as bind parameters: text('... WHERE id = :id') with {'id': value}, or the ORM/Core "
        "expression; `doctor scan` (OSD301) points at the f-string in the code"
    )

    def __init__(self, options) -> None:
        super().__init__(options)
        self._shapes: dict[str, _ShapeStats] = {}

    def visit_trace(self, trace):
        for span in trace.queries:
            shape = trace.shape(span)
            if not shape.has_literals:
                continue
            stats = self._shapes.get(shape.text)
            if stats is None:
                if len(self._shapes) >= _MAX_SHAPES:
                    continue
                stats = self._shapes[shape.text] = _ShapeStats()
            stats.executions += 1
            if len(stats.variants) < _MAX_VARIANTS and shape.literals not in stats.variants:
                stats.variants.add(shape.literals)
                if len(stats.examples) < 3:
                    stats.examples.append(shorten(strip_comments(span.statement or ""), 300))
            if trace.trace_id not in stats.trace_ids and len(stats.trace_ids) < 5:
                stats.trace_ids.append(trace.trace_id)
                stats.span_id = stats.span_id or span.span_id
        return ()

    def finish(self):
        for shape, stats in self._shapes.items():
            distinct = len(stats.variants)
            if distinct < self.options.literal_threshold:
                continue
            more = "+" if distinct >= _MAX_VARIANTS else ""
            yield self.occurrence(
                key=(shape,),
                weight=distinct,
                message=(
                    f"{distinct}{more} different literal values in one statement shape "
                    f"({stats.executions} executions): {shorten(shape, 120)}"
                ),
                trace_id=stats.trace_ids[0] if stats.trace_ids else None,
                span_id=stats.span_id,
                details={
                    "statement": shape,
                    "distinct_values": distinct,
                    "executions": stats.executions,
                    "examples": stats.examples,
                    "trace_ids": stats.trace_ids,
                    "see": "OSD301",
                },
            )
