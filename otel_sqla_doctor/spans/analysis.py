"""Stream spans into traces, run the detectors on each finished trace, and build the report.

Spans of one trace arrive in several batches (children usually end, and are exported, before
their parent). Traces are buffered in arrival order and analysed once no span of theirs has been
seen for `idle_spans` spans, or when more than `max_buffered_spans` spans are buffered. A trace
cut by that window is analysed in pieces (counted in stats.split_traces), so memory depends on the
window, not on the file size.
"""

from __future__ import annotations

import heapq
import itertools
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from otel_sqla_doctor.errors import UsageError
from otel_sqla_doctor.spans.detectors import ALL, BY_CODE, BY_NAME, Detector, Occurrence, Options
from otel_sqla_doctor.spans.model import (
    FileSummary,
    Finding,
    Span,
    SpanReport,
    SpanStats,
    TraceSummary,
    WaterfallSpan,
)
from otel_sqla_doctor.spans.normalize import Normalizer
from otel_sqla_doctor.spans.readers import SpanFile
from otel_sqla_doctor.spans.trace import TraceView

_MAX_GROUPS_PER_CODE = 1000
_MAX_WATERFALL_SPANS = 400
_EXAMPLE_TRACES = 5
# Span ids of analysed traces kept to drop duplicates that arrive later (8 bytes each).
_MAX_REMEMBERED_IDS = 4_000_000


def resolve_codes(values: Iterable[str] | None) -> frozenset[str]:
    """Codes or names (`OSD601`, `n-plus-one-queries`, `OSD6`) -> codes; UsageError on unknown ones."""
    codes: set[str] = set()
    for raw in values or ():
        for value in filter(None, (v.strip() for v in raw.split(","))):
            if value in BY_NAME:
                codes.add(BY_NAME[value].CODE)
                continue
            matched = {code for code in BY_CODE if code.startswith(value.upper())}
            if not matched:
                known = ", ".join(f"{d.CODE} {d.NAME}" for d in ALL)
                raise UsageError(f"unknown check {value!r}; known: {known}")
            codes.update(matched)
    return frozenset(codes)


class _Group:
    __slots__ = ("occurrences", "weight", "finding", "trace_ids")

    def __init__(self) -> None:
        self.occurrences = 0
        self.weight = float("-inf")
        self.finding: Finding | None = None
        self.trace_ids: list[str] = []


class Analyzer:
    def __init__(
        self,
        options: Options | None = None,
        *,
        max_traces: int = 20,
        idle_spans: int = 20_000,
        max_buffered_spans: int = 200_000,
    ) -> None:
        self.options = options or Options()
        selected = [d for d in ALL if (not self.options.select or d.CODE in self.options.select)]
        self.detectors: list[Detector] = [d(self.options) for d in selected if d.CODE not in self.options.ignore]
        self.normalizer = Normalizer()
        self.max_traces = max_traces
        self.idle_spans = idle_spans
        self.max_buffered = max_buffered_spans
        self._buffer: OrderedDict[str, list[Span]] = OrderedDict()
        self._ids: dict[str, set[int]] = {}  # buffered traces: hashes of their span ids
        self._done_ids: dict[int, array] = {}  # analysed traces (by hash): hashes of their span ids
        self._remembered = 0
        self.dedup_limited = False
        self.duplicates = 0
        self._last_seen: dict[str, int] = {}
        self._buffered = 0
        self._seen_count = 0
        self._flushed_traces: set[int] = set()  # hashes of traces already analysed (to count splits)
        self._groups: dict[tuple, _Group] = {}
        self._per_code: dict[str, int] = {}
        self._dropped_groups = 0
        self._worst: list[tuple] = []  # heap of (score, tiebreak, TraceSummary)
        self._tiebreak = itertools.count()
        self.spans = 0
        self.traces = 0
        self.db_spans = 0
        self.unended = 0
        self.split_traces = 0

    # --- input ----------------------------------------------------------------------------------
    def feed(self, span: Span) -> None:
        """Add one span; a span already read (same trace id and span id: a file given twice,
        overlapping rotated files, an exporter's retries) is counted in `duplicates` and dropped."""
        trace_id = span.trace_id
        key = hash(span.span_id)
        ids = self._ids.get(trace_id)
        if ids is None:
            done = self._done_ids.get(hash(trace_id))
            ids = set(done) if done is not None else set()
            if key in ids:
                self.duplicates += 1
                return
            self._ids[trace_id] = ids
        elif key in ids:
            self.duplicates += 1
            return
        ids.add(key)
        self.spans += 1
        if span.end_ns is None:
            self.unended += 1
        elif span.is_db:
            self.db_spans += 1
        spans = self._buffer.get(trace_id)
        if spans is None:
            spans = self._buffer[trace_id] = []
        else:
            self._buffer.move_to_end(trace_id)
        spans.append(span)
        self._last_seen[trace_id] = self.spans
        self._buffered += 1
        if self._buffered > self.max_buffered:
            self._evict(self._buffered - self.max_buffered // 2)
        elif self.spans % 10_000 == 0:
            self._evict_idle()

    def feed_all(self, spans: Iterable[Span]) -> None:
        for span in spans:
            self.feed(span)

    def _evict_idle(self) -> None:
        limit = self.spans - self.idle_spans
        while self._buffer:
            trace_id = next(iter(self._buffer))
            if self._last_seen[trace_id] > limit:
                return
            self._finalize(trace_id)

    def _evict(self, count: int) -> None:
        while self._buffer and count > 0:
            trace_id = next(iter(self._buffer))
            count -= len(self._buffer[trace_id])
            self._finalize(trace_id)

    def _finalize(self, trace_id: str) -> None:
        spans = self._buffer.pop(trace_id)
        del self._last_seen[trace_id]
        self._buffered -= len(spans)
        self._remember_ids(trace_id)
        key = hash(trace_id)
        if key in self._flushed_traces:
            self.split_traces += 1
        else:
            self.traces += 1
            if len(self._flushed_traces) < 500_000:
                self._flushed_traces.add(key)
        trace = TraceView(trace_id, spans, self.normalizer)
        codes: list[str] = []
        for detector in self.detectors:
            for occurrence in detector.visit_trace(trace):
                self._add(occurrence)
                codes.append(occurrence.finding.code)
        self._consider_worst(trace, codes)

    def _remember_ids(self, trace_id: str) -> None:
        ids = self._ids.pop(trace_id)
        key = hash(trace_id)
        before = self._done_ids.get(key)
        grown = len(ids) - (len(before) if before is not None else 0)
        if self._remembered + grown > _MAX_REMEMBERED_IDS:
            self.dedup_limited = True
            return
        self._done_ids[key] = array("q", ids)
        self._remembered += grown

    # --- findings -------------------------------------------------------------------------------
    def _add(self, occurrence: Occurrence) -> None:
        finding = occurrence.finding
        key = (finding.code, *occurrence.key)
        group = self._groups.get(key)
        if group is None:
            if self._per_code.get(finding.code, 0) >= _MAX_GROUPS_PER_CODE:
                self._dropped_groups += 1
                return
            self._per_code[finding.code] = self._per_code.get(finding.code, 0) + 1
            group = self._groups[key] = _Group()
        group.occurrences += 1
        if occurrence.weight > group.weight:
            group.weight = occurrence.weight
            group.finding = finding
        trace_ids = finding.details.get("trace_ids") or ([finding.trace_id] if finding.trace_id else [])
        for trace_id in trace_ids:
            if trace_id not in group.trace_ids and len(group.trace_ids) < _EXAMPLE_TRACES:
                group.trace_ids.append(trace_id)

    # --- worst traces (summary lines and the HTML waterfall) ----------------------------------------
    def _consider_worst(self, trace: TraceView, codes: list[str]) -> None:
        db = [s for s in trace.spans if s.is_db]
        if not db and not codes:
            return
        db_ns = sum(s.duration_ns for s in db)
        score = (len(codes), len(trace.marks), db_ns)
        if len(self._worst) < self.max_traces:
            heapq.heappush(self._worst, (score, next(self._tiebreak), self._summarize(trace, codes, db, db_ns)))
        elif score > self._worst[0][0]:
            heapq.heapreplace(self._worst, (score, next(self._tiebreak), self._summarize(trace, codes, db, db_ns)))

    @staticmethod
    def _summarize(trace: TraceView, codes: list[str], db: list[Span], db_ns: int) -> TraceSummary:
        spans = sorted(trace.spans, key=lambda s: s.start_ns)
        t0 = spans[0].start_ns
        t1 = max((s.end_ns or s.start_ns) for s in spans)
        roots = [s for s in spans if s.parent_id is None or s.parent_id not in trace.by_id]
        root = roots[0] if roots else spans[0]

        def depth_of(span: Span) -> int:
            seen = 0
            current = span
            while current.parent_id in trace.by_id and seen < 64:
                current = trace.by_id[current.parent_id]
                seen += 1
            return seen

        waterfall = []
        for span in _waterfall_order(trace, spans)[:_MAX_WATERFALL_SPANS]:
            waterfall.append(
                WaterfallSpan(
                    span_id=span.span_id,
                    parent_id=span.parent_id,
                    name=span.name,
                    start_ms=round((span.start_ns - t0) / 1e6, 3),
                    duration_ms=round(span.duration_ns / 1e6, 3) if span.end_ns is not None else None,
                    depth=depth_of(span),
                    db=span.is_db,
                    statement=(span.statement or None) and span.statement[:300],
                    marks=tuple(sorted(trace.marks.get(span.span_id, ()))),
                )
            )
        return TraceSummary(
            trace_id=trace.trace_id,
            root=root.name,
            service=root.service,
            spans=len(spans),
            db_spans=len(db),
            db_ms=db_ns / 1e6,
            duration_ms=(t1 - t0) / 1e6,
            codes=tuple(sorted(set(codes))),
            waterfall=tuple(waterfall),
        )

    # --- output ---------------------------------------------------------------------------------
    def finish(self, files: Sequence[FileSummary] = ()) -> SpanReport:
        while self._buffer:
            self._finalize(next(iter(self._buffer)))
        for detector in self.detectors:
            for occurrence in detector.finish():
                self._add(occurrence)
        order = {d.CODE: i for i, d in enumerate(ALL)}
        groups = sorted(self._groups.values(), key=lambda g: (order.get(g.finding.code, 99), -g.weight))
        findings = [replace(g.finding, occurrences=g.occurrences, trace_ids=tuple(g.trace_ids)) for g in groups]
        notes = []
        if self.spans and not self.db_spans and not self.unended:
            notes.append(
                "no database spans: nothing was traced with db.system set. Is SQLAlchemy instrumented "
                "(and a TracerProvider installed before the engine is created)?"
            )
        if not self.spans:
            notes.append("no spans were read")
        if self.duplicates:
            notes.append(
                f"{self.duplicates} duplicate span(s) dropped: the same trace id and span id were read more than once "
                "(a file given twice, overlapping files, or an exporter's retries)"
            )
        if self.dedup_limited:
            notes.append(f"duplicates were looked for among the first {_MAX_REMEMBERED_IDS:,} spans only")
        if self.split_traces:
            notes.append(
                f"{self.split_traces} trace(s) were analysed in pieces: their spans were far apart in the input"
            )
        if self._dropped_groups:
            notes.append(f"{self._dropped_groups} further occurrence(s) of distinct patterns were not itemised")
        worst = [entry[2] for entry in sorted(self._worst, key=lambda e: (e[0], e[1]), reverse=True)]
        return SpanReport(
            files=tuple(files),
            stats=SpanStats(
                spans=self.spans,
                traces=self.traces,
                db_spans=self.db_spans,
                unended_spans=self.unended,
                split_traces=self.split_traces,
                duplicates=self.duplicates,
            ),
            findings=tuple(findings),
            traces=tuple(worst),
            notes=tuple(notes),
            checks=tuple((d.CODE, d.NAME) for d in self.detectors),
        )


def _waterfall_order(trace: TraceView, spans: list[Span]) -> list[Span]:
    """Depth-first, children by start time: the order a trace view draws them."""
    out: list[Span] = []
    seen: set[str] = set()
    roots = [s for s in spans if s.parent_id is None or s.parent_id not in trace.by_id]
    stack = list(reversed(roots))
    while stack:
        span = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        out.append(span)
        stack.extend(reversed(trace.children.get(span.span_id, ())))
    out.extend(s for s in spans if s.span_id not in seen)
    return out


def analyze_files(
    paths: Iterable[str | Path],
    *,
    n_plus_one_threshold: int = 5,
    literal_threshold: int = 3,
    pool_gap_ms: float = 100.0,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    max_traces: int = 20,
) -> SpanReport:
    """Read span files (formats detected per file) and return what the detectors found."""
    if n_plus_one_threshold < 2:
        raise UsageError("--n-plus-one-threshold must be at least 2")
    if literal_threshold < 2:
        raise UsageError("--literal-threshold must be at least 2")
    options = Options(
        n_plus_one_threshold=n_plus_one_threshold,
        literal_threshold=literal_threshold,
        pool_gap_ms=pool_gap_ms,
        select=resolve_codes(select),
        ignore=resolve_codes(ignore),
    )
    analyzer = Analyzer(options, max_traces=max_traces)
    files = []
    span_files = [SpanFile(Path(p)) for p in paths]  # detect every format before reading any
    for span_file in span_files:
        duplicates = analyzer.duplicates
        analyzer.feed_all(span_file)
        warnings = list(span_file.warnings)
        dropped = analyzer.duplicates - duplicates
        if dropped:
            warnings.append(f"{dropped} of its {span_file.spans_read} spans were already read (same trace id and span id) and were dropped")
        files.append(
            FileSummary(
                path=str(span_file.path),
                format=span_file.format,
                spans=span_file.spans_read,
                warnings=tuple(warnings),
                why_empty=None if span_file.spans_read else span_file.why_empty,
            )
        )
    return analyzer.finish(files)
