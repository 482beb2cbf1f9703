"""Span analysis: read exported traces (OTLP JSON, console exporter, Jaeger) and find what the
database did at run time: N+1 queries, interpolated SQL, doubled instrumentation, leaked spans,
pool waits and queries outside any request (OSD601-OSD606).

    from otel_sqla_doctor.spans import analyze_files
    report = analyze_files(["spans.jsonl"], n_plus_one_threshold=5)
    for finding in report.findings:
        print(finding.code, finding.message)
"""

from __future__ import annotations

from otel_sqla_doctor.spans.analysis import Analyzer, analyze_files
from otel_sqla_doctor.spans.model import FileSummary, Finding, Span, SpanReport, SpanStats, TraceSummary

__all__ = ["Analyzer", "FileSummary", "Finding", "Span", "SpanReport", "SpanStats", "TraceSummary", "analyze_files"]
