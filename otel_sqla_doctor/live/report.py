"""The probe's two output formats: doctor-style text and JSON. Each is one small function."""

from __future__ import annotations

import json

from otel_sqla_doctor.live.model import ProbeReport, Status
from otel_sqla_doctor.report.style import MARK_STYLES, MARKS, Style


def render_json(report: ProbeReport) -> str:
    from otel_sqla_doctor import __version__

    data = report.to_dict()
    data["version"] = __version__  # the envelope of `scan` and `spans` too: the doctor's version, a string
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_text(report: ProbeReport, style: Style) -> str:
    lines = [f"{style('doctor probe', 'bold')} {report.target}"]
    environment = report.environment
    if environment is not None:
        whose = "the application's environment" if environment.application else style("the doctor's own environment", "yellow")
        packages = ", ".join(f"{name} {version or 'not installed'}" for name, version in environment.packages)
        lines.append(f"python: {environment.python} ({environment.python_version}), {whose}: {environment.reason}")
        lines.append(f"packages: {packages}")
    lines.append("")
    for check in report.checks:
        status = check.status.value
        mark = style(MARKS[status], MARK_STYLES[status])
        lines.append(f"{mark} {style(check.code, 'bold')} {check.name}: {check.detail}")
        if check.remediation and check.status in (Status.WARN, Status.FAIL):
            lines.append(f"      {style('fix:', 'cyan')} {check.remediation}")
    lines.append("")
    counts = ", ".join(
        f"{report.count(status)} {label}"
        for status, label in ((Status.PASS, "passed"), (Status.WARN, "warned"), (Status.FAIL, "failed"), (Status.SKIP, "skipped"))
    )
    issues = report.count(Status.WARN) + report.count(Status.FAIL)
    verdict = f"found issues in {issues} check{'s' if issues != 1 else ''}" if issues else "no issues found"
    colour = "red" if report.failed else ("yellow" if issues else "green")
    lines.append(f"{style(verdict, colour, 'bold')} ({counts})")
    return "\n".join(lines) + "\n"
