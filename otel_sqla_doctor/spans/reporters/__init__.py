"""One small emitter per output format: text (doctor style), summary (a line per trace), json, html."""

from __future__ import annotations

import json

from otel_sqla_doctor.spans.model import SpanReport
from otel_sqla_doctor.spans.reporters.text import render_summary, render_text

FORMATS = ("text", "json", "summary")


def render_json(report: SpanReport) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


__all__ = ["FORMATS", "render_json", "render_summary", "render_text"]
