"""The probe's entry point inside its own process (started by `isolated.run_in`), which runs in
the application's interpreter.

Reads the request (JSON) on stdin, runs the checks in this interpreter, and writes messages on
the original stdout, one per line, each RESULT_MARKER + JSON: progress for the doctor
({"step": {"what", "seconds"}}, {"step_done": true}, {"alive": true}), then one result:
{"report": ...}, {"missing": ...}, {"usage_error": ...}, {"user_error": ...} (the user's code
raised, exited or did not finish in time) or {"crash": ...}. Everything else printed while it
runs (the application's own output, a ConsoleSpanExporter) goes to stderr, so that the messages
stay parseable.

By hand: `PYTHONPATH=<dir holding a copy of otel_sqla_doctor> python -m otel_sqla_doctor.live.remote`.

Runs in an environment that has only what the application installed: this module and what it
imports use the standard library and the probe's own modules, never typer, libcst or rich.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

# Precedes every message on stdout: a sitecustomize or .pth file of the application's environment
# may print before this module runs, and that must not be taken for (or break) the report.
RESULT_MARKER = "@@otel-sqla-doctor-probe-result@@"
USER_CODE_STOPPED = 3  # the exit code after the watchdog stopped the user's code


class Channel:
    """The messages to the doctor. Thread-safe: the watchdog thread writes too. After the result,
    nothing more is written."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._done = False

    def _write(self, message: dict) -> None:
        self._stream.write(RESULT_MARKER + json.dumps(message) + "\n")
        self._stream.flush()

    def send(self, message: dict) -> None:
        with self._lock:
            if not self._done:
                self._write(message)

    def finish(self, result: dict) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            try:
                self._write(result)
            finally:
                self._stream.close()

    def stop_user_code(self, message: str) -> None:
        """The watchdog's verdict: report it, then end this process (a step of the user's code
        that does not return cannot be interrupted any other way)."""
        self.finish({"user_error": message})
        try:
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(USER_CODE_STOPPED)


def _run(request: dict, watchdog: Any):
    from otel_sqla_doctor.live.interpreter import Interpreter
    from otel_sqla_doctor.live.runner import run_here

    project = request.get("project")
    here = Interpreter(
        python=request["python"], reason=request["reason"], application=request["application"], current=True,
        project=Path(project) if project else None,
    )
    return run_here(
        request["dsn"], request["engine_ref"], request["setup_ref"], request.get("app_dirs") or None, request["timeout"], here,
        watchdog=watchdog, app_ref=request.get("app_ref"), lifespan=request.get("lifespan"),
    )


def main() -> int:
    # Keep the real stdout for the messages; from here on fd 1 is stderr, for the app's prints.
    sys.stdout.flush()
    channel = Channel(os.fdopen(os.dup(1), "w", encoding="utf-8"))
    os.dup2(2, 1)

    from otel_sqla_doctor.errors import UsageError
    from otel_sqla_doctor.live.packages import MissingPackage
    from otel_sqla_doctor.live.userapp import UserCodeError, Watchdog
    from otel_sqla_doctor.redact import Redactor

    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))  # as sent, whatever PYTHONIOENCODING says
    redactor = Redactor()
    if request.get("dsn"):
        redactor.add_url(request["dsn"])
    root = Path((request.get("app_dirs") or ["."])[0]).resolve()  # file names in messages are relative to it
    watchdog = Watchdog(float(request["timeout"]), root=root, send=channel.send, expire=channel.stop_user_code)
    try:
        report = _run(request, watchdog)
        from otel_sqla_doctor.live.checks import ALL_CHECKS

        payload: dict = {"report": report.to_dict(), "titles": {check.code: check.title for check in ALL_CHECKS}}
    except KeyboardInterrupt:
        return 130
    except MissingPackage as exc:
        payload = {"missing": {"package": exc.package, "why": exc.why}}
    except UserCodeError as exc:
        payload = {"user_error": str(exc)}
    except UsageError as exc:
        payload = {"usage_error": str(exc)}
    except Exception as exc:  # a bug of ours: one line for the parent, no traceback
        lines = str(exc).strip().splitlines()
        payload = {"crash": redactor.text(f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": "))}
    except SystemExit as exc:  # the application's code called sys.exit() where we did not expect it
        payload = {"user_error": f"the application's code called sys.exit({exc.code!r}) during the probe"}
    channel.finish(payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
