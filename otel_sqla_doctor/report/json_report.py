"""`--format json`: the shape other tools read (fixed in the foundation issue)."""

from __future__ import annotations

import json

from otel_sqla_doctor import __version__
from otel_sqla_doctor.findings import ScanResult


def render(result: ScanResult, **_: object) -> str:
    return json.dumps(result.to_dict(__version__), indent=2, ensure_ascii=False) + "\n"
