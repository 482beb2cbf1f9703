"""The probe's entry point inside the application's interpreter (started by `isolated.run_in`).

Reads the request (JSON) on stdin, runs the checks in this interpreter, and writes one JSON object
after RESULT_MARKER on the original stdout: {"report": ...}, {"missing": ...}, {"usage_error": ...}
or {"crash": ...}. Everything else printed while it runs (the application's own output, a
ConsoleSpanExporter) goes to stderr, so that the result stays parseable.

By hand: `PYTHONPATH=<dir holding a copy of otel_sqla_doctor> python -m otel_sqla_doctor.live.remote`.

Runs in an environment that has only what the application installed: this module and what it
imports use the standard library and the probe's own modules, never typer, libcst or rich.
"""

from __future__ import annotations

import json
import os
import sys

# Precedes the result on stdout: a sitecustomize or .pth file of the application's environment may
# print before this module runs, and that must not be taken for (or break) the report.
RESULT_MARKER = "@@otel-sqla-doctor-probe-result@@"


def _run(request: dict):
    from otel_sqla_doctor.live.interpreter import Interpreter
    from otel_sqla_doctor.live.runner import probe

    here = Interpreter(python=request["python"], reason=request["reason"], application=request["application"], current=True)
    return probe(
        request["dsn"],
        engine_ref=request["engine_ref"],
        setup_ref=request["setup_ref"],
        app_dir=request["app_dir"],
        timeout=request["timeout"],
        python=here,
    )


def main() -> int:
    # Keep the real stdout for the result; from here on fd 1 is stderr, for the app's prints.
    sys.stdout.flush()
    result = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)

    from otel_sqla_doctor.errors import UsageError
    from otel_sqla_doctor.live.packages import MissingPackage
    from otel_sqla_doctor.redact import Redactor

    request = json.loads(sys.stdin.read())
    redactor = Redactor()
    if request.get("dsn"):
        redactor.add_url(request["dsn"])
    try:
        report = _run(request)
        from otel_sqla_doctor.live.checks import ALL_CHECKS

        payload: dict = {"report": report.to_dict(), "titles": {check.code: check.title for check in ALL_CHECKS}}
    except KeyboardInterrupt:
        return 130
    except MissingPackage as exc:
        payload = {"missing": {"package": exc.package, "why": exc.why}}
    except UsageError as exc:
        payload = {"usage_error": str(exc)}
    except Exception as exc:  # a bug of ours: one line for the parent, no traceback
        lines = str(exc).strip().splitlines()
        payload = {"crash": redactor.text(f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": "))}
    result.write(RESULT_MARKER + json.dumps(payload))
    result.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
