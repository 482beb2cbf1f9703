"""Bounded memory: traces are analysed and dropped as the stream moves on, and nothing is lost."""

from __future__ import annotations

import itertools

from otel_sqla_doctor.spans.analysis import Analyzer
from otel_sqla_doctor.spans.model import Span
from otel_sqla_doctor.spans.readers import SpanFile


def _copies(spans, n):
    """The recorded trace again and again with fresh ids, as a long-running service would emit it."""
    for i in range(n):
        suffix = f"{i:08x}"
        for s in spans:
            yield Span(
                s.trace_id[:24] + suffix, s.span_id[:8] + suffix, (s.parent_id[:8] + suffix) if s.parent_id else None,
                s.name, s.kind, s.start_ns + i * 10**9, s.end_ns and s.end_ns + i * 10**9, s.attributes, s.scope, s.service,
            )


def test_window_bounds_the_buffer_and_keeps_every_finding(fixtures):
    spans = list(SpanFile(fixtures / "n_plus_one.otlp.jsonl"))
    analyzer = Analyzer(max_buffered_spans=500, idle_spans=200, max_traces=3)
    peak = 0
    for span in _copies(spans, 400):
        analyzer.feed(span)
        peak = max(peak, analyzer._buffered)
    report = analyzer.finish()
    assert peak <= 501
    assert report.stats.spans == 29 * 400
    assert report.stats.traces == 2 * 400 and report.stats.split_traces == 0
    (finding,) = report.findings
    assert finding.code == "OSD601" and finding.occurrences == 400 and finding.details["count"] == 12
    assert len(report.traces) == 3


def test_interleaved_batches_from_many_traces_are_reassembled(fixtures):
    """Children are exported before parents and batches of traces interleave; a window larger than
    the interleaving still sees every trace whole."""
    spans = list(SpanFile(fixtures / "n_plus_one.otlp.jsonl"))
    streams = [list(_copies(spans, 50))[i::7] for i in range(7)]
    analyzer = Analyzer(idle_spans=2000, max_buffered_spans=10_000)
    for span in itertools.chain.from_iterable(itertools.zip_longest(*streams)):
        if span is not None:
            analyzer.feed(span)
    report = analyzer.finish()
    assert report.stats.split_traces == 0
    assert report.findings[0].occurrences == 50
