"""Run the probe inside another interpreter: the application's.

Only the doctor's own package directory is copied to a temporary directory and put first on that
interpreter's sys.path, never the doctor's site-packages: the application must import its own
SQLAlchemy, OpenTelemetry and driver, or the probe would judge the doctor's. There
`otel_sqla_doctor.live.remote` runs the same checks and writes the report as JSON on its stdout;
whatever the application prints goes to stderr, as in-process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from otel_sqla_doctor.errors import UsageError
from otel_sqla_doctor.live.interpreter import Interpreter
from otel_sqla_doctor.live.model import ProbeReport
from otel_sqla_doctor.live.packages import MissingPackage
from otel_sqla_doctor.live.remote import RESULT_MARKER
from otel_sqla_doctor.redact import Redactor

MINIMUM_PYTHON = (3, 10)

# `-c` rather than `-m`: with `-m` the current directory comes before our copy on sys.path, and a
# checkout of the doctor there would be imported instead. The version test runs before any of
# our code, which needs 3.10.
_BOOTSTRAP = f"""\
import sys
if sys.version_info < {MINIMUM_PYTHON!r}:
    sys.stdout.write('{RESULT_MARKER}{{"too_old": "%d.%d.%d"}}' % sys.version_info[:3])
    sys.exit(0)
sys.path.insert(0, sys.argv[1])
from otel_sqla_doctor.live.remote import main
sys.exit(main())
"""


class RemoteFailed(RuntimeError):
    """The probe in the other interpreter crashed: a bug of ours (reported as an internal error)."""


def _copy_package(into: Path) -> None:
    package = Path(__file__).resolve().parent.parent
    shutil.copytree(package, into / package.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _stderr_fd() -> int | None:
    """Our real stderr, for the child to write to directly (live, unbuffered); None when
    sys.stderr is not a file descriptor (an embedding or a test runner capturing it)."""
    try:
        if sys.stderr is not None and sys.stderr is sys.__stderr__:
            sys.stderr.flush()
            return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        pass
    return None


def run_in(
    interpreter: Interpreter,
    *,
    dsn: str | None,
    engine_ref: str | None,
    setup_ref: str | None,
    app_dir: str | Path | None,
    timeout: float,
) -> ProbeReport:
    redactor = Redactor()
    if dsn:
        redactor.add_url(dsn)
    request = {
        "dsn": dsn,
        "engine_ref": engine_ref,
        "setup_ref": setup_ref,
        # Resolved here: the app's interpreter starts in the same directory, but say it exactly.
        "app_dir": str(Path(app_dir).absolute()) if app_dir is not None else None,
        "timeout": timeout,
        "python": interpreter.python,
        "reason": interpreter.reason,
        "application": interpreter.application,
    }
    workdir = Path(tempfile.mkdtemp(prefix="doctor-probe-"))
    try:
        _copy_package(workdir)
        stderr = _stderr_fd()
        try:
            # The request (it holds the DSN) goes through stdin, never a file or argv.
            proc = subprocess.run(
                [interpreter.python, "-c", _BOOTSTRAP, str(workdir)],
                input=json.dumps(request), stdout=subprocess.PIPE, stderr=stderr if stderr is not None else subprocess.PIPE,
                text=True,
            )
        except OSError as exc:
            raise UsageError(f"cannot run {interpreter.python} ({interpreter.reason}): {exc.strerror or exc}") from None
        if stderr is None and proc.stderr:
            sys.stderr.write(proc.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _report(proc.stdout, proc.returncode, interpreter, redactor)


def _report(stdout: str, returncode: int, interpreter: Interpreter, redactor: Redactor) -> ProbeReport:
    before, marker, result = stdout.rpartition(RESULT_MARKER)
    if not marker:
        before, result = stdout, ""
    if before.strip():  # printed by the application's environment before our code ran
        sys.stderr.write(before)
    if not marker and returncode in (130, -2):  # Ctrl-C reached the child (and only it)
        raise KeyboardInterrupt
    try:
        payload: dict[str, Any] = json.loads(result) if marker else {}
    except ValueError:
        payload = {}
    if not payload:
        raise RemoteFailed(
            redactor.text(f"the probe in {interpreter.python} ended with exit code {returncode} and no report (its output is above)")
        )
    if "too_old" in payload:
        needed = ".".join(map(str, MINIMUM_PYTHON))
        raise UsageError(f"{interpreter.python} is Python {payload['too_old']}; the probe needs {needed} or newer ({interpreter.reason})")
    if "missing" in payload:
        missing = payload["missing"]
        raise MissingPackage(missing["package"], missing["why"], interpreter.python, f"{interpreter.whose}: {interpreter.reason}")
    if "usage_error" in payload:
        raise UsageError(payload["usage_error"])
    if "crash" in payload:
        raise RemoteFailed(redactor.text(f"in {interpreter.python}: {payload['crash']}"))
    return ProbeReport.from_dict(payload["report"], payload.get("titles"))
