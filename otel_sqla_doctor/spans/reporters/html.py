"""`--html FILE`: one self-contained page (inline CSS and script, no network) with the findings and
a waterfall of the worst traces; the spans of an N+1 run are highlighted, as are the spans any
other finding points at.

The report data is embedded as JSON and drawn by the inline script, so the page needs nothing but a
browser; the rendered rows carry `data-codes` and classes (`n-plus-one`, `marked`) that tests and
users can select on.
"""

from __future__ import annotations

import html
import json

from otel_sqla_doctor.spans.detectors import BY_CODE
from otel_sqla_doctor.spans.model import SpanReport

_WATERFALL_TRACES = 5

_CSS = """
:root { --fg:#1f2328; --muted:#656d76; --bar:#8fb5e8; --db:#4c8dde; --n1:#e8590c; --mark:#d6336c; --bg:#fff; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); margin: 24px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.muted { color: var(--muted); } code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.finding { border-left: 4px solid var(--mark); padding: 6px 10px; margin: 8px 0; background: #fff5f7; }
.finding.OSD601 { border-color: var(--n1); background: #fff4e6; }
.finding .fix { color: var(--muted); }
.legend span { display: inline-block; margin-right: 14px; }
.swatch { display: inline-block; width: 12px; height: 12px; vertical-align: middle; margin-right: 4px; border-radius: 2px; }
.trace { border: 1px solid #d0d7de; border-radius: 6px; padding: 10px; margin: 12px 0; }
.trace h3 { font-size: 14px; margin: 0 0 6px; }
.row { display: grid; grid-template-columns: 38% 62%; align-items: center; min-height: 18px; }
.row:hover { background: #f6f8fa; }
.label { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; padding-right: 8px; font-size: 12px; }
.lane { position: relative; height: 14px; }
.bar { position: absolute; top: 2px; height: 10px; min-width: 2px; background: var(--bar); border-radius: 2px; }
.row.db .bar { background: var(--db); }
.row.marked .bar { background: var(--mark); }
.row.n-plus-one { background: #fff4e6; }
.row.n-plus-one .bar { background: var(--n1); }
.row.unended .bar { background: repeating-linear-gradient(45deg, var(--mark), var(--mark) 4px, #fff 4px, #fff 8px); }
.run { font-size: 12px; color: var(--n1); font-weight: 600; margin: 4px 0; }
"""

_SCRIPT = r"""
(function () {
  const data = JSON.parse(document.getElementById("doctor-data").textContent);
  const el = (tag, attrs, text) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const findings = document.getElementById("findings");
  if (!data.findings.length) findings.appendChild(el("p", {}, "No issues found."));
  for (const f of data.findings) {
    const box = el("div", {"class": "finding " + f.code, "data-code": f.code});
    box.appendChild(el("strong", {}, f.code + " " + f.name + ": "));
    box.appendChild(document.createTextNode(f.message + (f.occurrences > 1 ? " (in " + f.occurrences + " places)" : "")));
    box.appendChild(el("div", {"class": "fix"}, "fix: " + f.fix));
    if (f.trace_id) box.appendChild(el("div", {"class": "muted mono"}, "trace " + f.trace_id));
    findings.appendChild(box);
  }
  const traces = document.getElementById("waterfalls");
  if (!data.traces.length) traces.appendChild(el("p", {"class": "muted"}, "No traces with database work."));
  for (const t of data.traces) {
    const box = el("section", {"class": "trace", "data-trace-id": t.trace_id, "data-testid": "waterfall"});
    box.appendChild(el("h3", {}, t.root + " — " + t.spans + " spans, " + t.db_spans + " database spans, " +
      t.db_ms.toFixed(2) + " ms in the database" + (t.codes.length ? " — " + t.codes.join(", ") : "")));
    box.appendChild(el("div", {"class": "muted mono"}, "trace " + t.trace_id));
    const total = Math.max(t.duration_ms, 0.001);
    const runs = {};
    for (const s of t.waterfall) if (s.marks.includes("OSD601")) runs[s.parent_id] = (runs[s.parent_id] || 0) + 1;
    const announced = {};
    for (const s of t.waterfall) {
      const nPlusOne = s.marks.includes("OSD601");
      if (nPlusOne && !announced[s.parent_id]) {
        announced[s.parent_id] = true;
        box.appendChild(el("div", {"class": "run", "data-testid": "n-plus-one-run", "data-count": runs[s.parent_id]},
          "N+1 run: " + runs[s.parent_id] + " × " + (s.statement || s.name)));
      }
      const classes = ["row"];
      if (s.db) classes.push("db");
      if (s.marks.length) classes.push("marked");
      if (nPlusOne) classes.push("n-plus-one");
      if (s.duration_ms === null) classes.push("unended");
      const row = el("div", {"class": classes.join(" "), "data-span-id": s.span_id, "data-codes": s.marks.join(" ")});
      const label = el("div", {"class": "label", "title": s.statement || s.name});
      label.style.paddingLeft = (s.depth * 14) + "px";
      label.textContent = s.name + (s.duration_ms === null ? " (never ended)" : "");
      const lane = el("div", {"class": "lane"});
      const bar = el("div", {"class": "bar", "title": (s.duration_ms === null ? "never ended" : s.duration_ms + " ms")});
      const width = s.duration_ms === null ? total - s.start_ms : s.duration_ms;
      bar.style.left = (100 * s.start_ms / total) + "%";
      bar.style.width = Math.max(0.2, 100 * width / total) + "%";
      lane.appendChild(bar);
      row.appendChild(label);
      row.appendChild(lane);
      box.appendChild(row);
    }
    traces.appendChild(box);
  }
  document.body.setAttribute("data-rendered", "true");
})();
"""


def render_html(report: SpanReport, *, title: str = "otel-sqla-doctor: span analysis") -> str:
    data = report.to_dict()
    data["traces"] = [t.to_dict() for t in report.traces[:_WATERFALL_TRACES]]
    for finding in data["findings"]:
        finding["fix"] = BY_CODE[finding["code"]].FIX if finding["code"] in BY_CODE else finding["fix"]
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    stats = report.stats
    summary = (
        f"{stats.spans} spans in {stats.traces} traces, {stats.db_spans} database spans, "
        f"{len(report.findings)} findings"
    )
    notes = "".join(f"<p class=\"muted\">{html.escape(n)}</p>" for n in report.notes)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p class="muted">{html.escape(summary)}</p>
{notes}
<noscript><p>This page draws its waterfalls with an inline script; enable JavaScript to see them.</p></noscript>
<h2>Findings</h2>
<div id="findings"></div>
<h2>Worst traces</h2>
<p class="legend muted"><span><i class="swatch" style="background:var(--n1)"></i>N+1 run (OSD601)</span><span><i class="swatch" style="background:var(--mark)"></i>other finding</span><span><i class="swatch" style="background:var(--db)"></i>database span</span><span><i class="swatch" style="background:var(--bar)"></i>other span</span></p>
<div id="waterfalls"></div>
<script type="application/json" id="doctor-data">{payload}</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""
