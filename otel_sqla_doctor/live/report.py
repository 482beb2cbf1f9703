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


def render_text(report: ProbeReport, style: Style, *, quiet: bool = False) -> str:
    if quiet:  # -q: only the checks that warned or failed (no banner, no fixes) and the verdict, the last line
        verdict = render_text(report, style).rstrip("\n").rsplit("\n", 1)[-1]
        shown = [c for c in report.checks if c.status in (Status.WARN, Status.FAIL)]
        marks = [style(MARKS[c.status.value], MARK_STYLES[c.status.value]) for c in shown]
        return "".join(f"{mark} {style(c.code, 'bold')} {c.name}: {c.detail}\n" for mark, c in zip(marks, shown)) + verdict + "\n"
    lines = [f"{style('doctor probe', 'bold')} {report.target}"]
    if report.scope:
        lines.append(f"scope: {report.scope}")
    environment = report.environment
    if environment is not None:
        whose = "the application's environment" if environment.application else style("the doctor's own environment", "yellow")
        packages = ", ".join(f"{name} {version or 'not installed'}" for name, version in environment.packages)
        lines.append(f"python: {environment.python} ({environment.python_version}), {whose}: {environment.reason}")
        lines.append(f"packages: {packages}")
    if report.startup is not None:  # in start-up order: app, setup, lifespan, engine
        for module in report.startup.modules:
            if module.role == "engine" and report.startup.lifespan:
                lines.append(f"lifespan: {report.startup.lifespan}")
            source = f" from {module.file}" if module.file else ""
            lines.append(f"{module.role}: {module.reference} ({module.how}){source}")
        lines.extend(f"{style('warning:', 'yellow')} {warning}" for warning in report.startup.warnings)
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
