"""One small emitter per output format: text (doctor style), summary (a line per trace), json, html."""

from __future__ import annotations

import json

from otel_sqla_doctor.spans.model import SpanReport
from otel_sqla_doctor.spans.reporters.text import render_summary, render_text

FORMATS = ("text", "json", "summary")


def render_json(report: SpanReport) -> str:
    from otel_sqla_doctor import __version__

    data = report.to_dict()
    data["version"] = __version__  # the envelope of `scan` and `probe` too: the doctor's version, a string
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


__all__ = ["FORMATS", "render_json", "render_summary", "render_text"]
