"""OSD605 pool-wait-gap

## What it does
For every span with database children (a request, a job), measures the gap between the parent's
start and its first query. It reports the requests whose gap is at least `--pool-gap-ms` (default
100 ms) while other requests held connections for that whole time, and where the wait is inside
the connection checkout: SQLAlchemy's `connect` span (pool checkout) covers at least half of the
gap, or there is no `connect` span to tell. It reports the distribution of the gaps (p50, p90,
max) for that kind of request and how many other requests were holding connections.

## Why is this bad?
The queries themselves are fast, but requests wait for a free connection before they can run
them: the pool is too small for the concurrency, or connections are held too long (a transaction
kept open across slow non-database work, an `async with session` around an HTTP call). Latency
grows with load and the database looks idle. Past `pool_timeout`, requests start failing with
`TimeoutError: QueuePool limit ... reached`.

## Example
```python
engine = create_async_engine(url, pool_size=1, max_overflow=0)
async with session.begin():
    await session.execute(select(Order))
    await call_payment_service()      # the connection stays checked out meanwhile
```

## Use instead
Keep transactions short (do slow non-database work outside them) and size the pool
(`pool_size` + `max_overflow`) for the concurrency the service really has, within what the
database accepts.

## Known problems
"Holding a connection" is estimated per request as the time from its checkout (or first query)
to its last database span; a request that keeps a connection idle after its last query is not
seen as holding it. The comparison across requests keeps up to 500 000 requests; past that the
rest of the file is only measured, not compared.

## References
- SQLAlchemy, "Connection Pooling": https://docs.sqlalchemy.org/en/20/core/pooling.html
"""

from __future__ import annotations

import bisect
from array import array
from collections import defaultdict

from otel_sqla_doctor.spans.detectors.base import Detector, ms

_MAX_HOLDS = 500_000
_MAX_CANDIDATES = 10_000
_MAX_SAMPLES = 10_000


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[index]


class PoolWaitGap(Detector):
    CODE = "OSD605"
    NAME = "pool-wait-gap"
    SUMMARY = "requests wait for a pool connection before their first query while others hold connections"
    FIX = (
        "keep transactions short (no slow non-database work while a connection is checked out) and size "
        "pool_size + max_overflow for the real concurrency"
    )

    def __init__(self, options) -> None:
        super().__init__(options)
        self._hold_start = array("q")
        self._hold_end = array("q")
        self._hold_trace = array("q")
        self._max_hold = 0
        self._candidates: list[dict] = []
        self._gaps: dict[str, list[float]] = defaultdict(list)
        self._requests: dict[str, int] = defaultdict(int)

    def visit_trace(self, trace):
        trace_key = hash(trace.trace_id)
        for parent_id, kids in trace.children.items():
            parent = trace.by_id.get(parent_id) if parent_id else None
            if parent is None or parent.is_db or parent.end_ns is None:
                continue
            db_kids = [k for k in kids if k.end_ns is not None and k.is_db]
            if not db_kids:
                continue
            first_query = next((k for k in db_kids if k.statement), None)
            if first_query is None:
                continue
            connects = [k for k in db_kids if not k.statement and k.start_ns <= first_query.start_ns]
            connect_ns = max((k.duration_ns for k in connects), default=None)
            gap_ns = max(0, first_query.start_ns - parent.start_ns)
            hold_start = max((k.end_ns for k in connects), default=first_query.start_ns)
            hold_end = max(k.end_ns for k in db_kids)
            if len(self._hold_start) < _MAX_HOLDS:
                self._hold_start.append(hold_start)
                self._hold_end.append(hold_end)
                self._hold_trace.append(trace_key)
                self._max_hold = max(self._max_hold, hold_end - hold_start)
            name = parent.name
            self._requests[name] += 1
            samples = self._gaps[name]
            if len(samples) < _MAX_SAMPLES:
                samples.append(gap_ns / 1e6)
            if gap_ns < self.options.pool_gap_ms * 1e6:
                continue
            if connect_ns is not None and connect_ns * 2 < gap_ns:
                continue  # the time went somewhere else than the checkout: app work, not the pool
            if len(self._candidates) >= _MAX_CANDIDATES:
                self._candidates.sort(key=lambda c: -c["gap_ns"])
                del self._candidates[_MAX_CANDIDATES // 2 :]
            trace.mark([first_query, *connects], self.CODE)
            self._candidates.append(
                {
                    "trace_id": trace.trace_id,
                    "trace_key": trace_key,
                    "span_id": parent.span_id,
                    "parent": name,
                    "gap_start": parent.start_ns,
                    "gap_end": hold_start,  # the checkout: the end of the connect span, or the first query
                    "gap_ns": gap_ns,
                    "connect_ns": connect_ns,
                    "query_ns": first_query.duration_ns,
                }
            )
        return ()

    def _holders(self, order: list[int], starts: list[int], candidate: dict) -> int:
        """Other requests whose connection hold overlaps the whole gap."""
        lo, hi = candidate["gap_start"], candidate["gap_end"]
        right = bisect.bisect_right(starts, lo)  # holds that began before the wait did
        left = bisect.bisect_left(starts, lo - self._max_hold)
        count = 0
        for i in range(left, right):
            j = order[i]
            # released no earlier than 2 ms before this request got its connection: a hand-off
            if self._hold_end[j] >= hi - 2_000_000 and self._hold_trace[j] != candidate["trace_key"]:
                count += 1
        # Requests that got a connection during the wait: others were served first.
        for i in range(right, bisect.bisect_left(starts, hi - 2_000_000)):
            if self._hold_trace[order[i]] != candidate["trace_key"]:
                count += 1
        return count

    def finish(self):
        if not self._candidates:
            return
        order = sorted(range(len(self._hold_start)), key=self._hold_start.__getitem__)
        starts = [self._hold_start[i] for i in order]
        flagged = defaultdict(list)
        for candidate in self._candidates:
            holders = self._holders(order, starts, candidate)
            if holders >= 1:
                candidate["holders"] = holders
                flagged[candidate["parent"]].append(candidate)
        for parent, hits in flagged.items():
            gaps = sorted(self._gaps[parent])
            worst = max(hits, key=lambda c: c["gap_ns"])
            distribution = {
                "requests": self._requests[parent],
                "waited": len(hits),
                "p50_ms": round(_percentile(gaps, 0.5), 3),
                "p90_ms": round(_percentile(gaps, 0.9), 3),
                "max_ms": round(gaps[-1], 3) if gaps else 0.0,
            }
            yield self.occurrence(
                key=(parent,),
                weight=worst["gap_ns"],
                message=(
                    f"{len(hits)} of {self._requests[parent]} {parent!r} waited ≥ {self.options.pool_gap_ms:g} ms "
                    f"for a connection before their first query (gap p50 {distribution['p50_ms']} ms, "
                    f"p90 {distribution['p90_ms']} ms, max {distribution['max_ms']} ms) while up to "
                    f"{max(c['holders'] for c in hits)} other requests held connections"
                ),
                trace_id=worst["trace_id"],
                span_id=worst["span_id"],
                details={
                    "parent": parent,
                    "gap_ms": ms(worst["gap_ns"]),
                    "connect_ms": ms(worst["connect_ns"]) if worst["connect_ns"] is not None else None,
                    "first_query_ms": ms(worst["query_ns"]),
                    "holders": worst["holders"],
                    "distribution": distribution,
                    "trace_ids": [c["trace_id"] for c in sorted(hits, key=lambda c: -c["gap_ns"])[:5]],
                },
            )
