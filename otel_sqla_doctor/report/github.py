"""`--format github`: GitHub Actions workflow commands, one annotation per finding."""

from __future__ import annotations

from otel_sqla_doctor.findings import ScanResult

LEVELS = {"error": "error", "warning": "warning", "info": "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(result: ScanResult, **_: object) -> str:
    lines = []
    for f in result.findings:
        props = f"file={_escape_property(f.path)},line={f.line},col={f.column}"
        if f.end_line:
            props += f",endLine={f.end_line}"
        if f.end_column and f.end_line == f.line:
            props += f",endColumn={f.end_column}"
        props += f",title={_escape_property(f'{f.code} {f.name}')}"
        message = f.message + (f"\n{f.hint}" if f.hint else "")
        lines.append(f"::{LEVELS[f.severity.value]} {props}::{_escape_data(message)}")
    for e in result.errors:
        lines.append(f"::error file={_escape_property(e.path)},title=cannot%20scan::{_escape_data(e.message)}")
    return "\n".join(lines) + ("\n" if lines else "")
