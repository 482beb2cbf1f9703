"""Run the probe in a process of its own: the application's interpreter, and whenever the user's
code runs (`--app`/`--engine`/`--setup`), so that it can be stopped.

Only the doctor's own package directory is copied to a temporary directory and put first on that
interpreter's sys.path, never the doctor's site-packages: the application must import its own
SQLAlchemy, OpenTelemetry and driver, or the probe would judge the doctor's. There
`otel_sqla_doctor.live.remote` runs the same checks and writes the report as JSON on its stdout;
whatever the application prints goes to stderr, as in-process.

The doctor reads that process's messages as they come and bounds it: each step of the user's
code must finish within --timeout (the process's own watchdog stops it first and says where it
was; if even that cannot run, the doctor stops the process a few seconds later), the process
must stay responsive, and once its report is in, it gets a moment to exit before it is stopped
(an exporter retrying at exit must not hold the doctor).
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from otel_sqla_doctor.errors import UsageError
from otel_sqla_doctor.live.interpreter import Interpreter
from otel_sqla_doctor.live.model import ProbeReport
from otel_sqla_doctor.live.packages import MissingPackage
from otel_sqla_doctor.live.remote import RESULT_MARKER
from otel_sqla_doctor.redact import Redactor

MINIMUM_PYTHON = (3, 10)
GRACE = 3.0  # past a deadline, for the process's own watchdog to act before the doctor does
STARTUP = 15.0  # for the interpreter (and the environment's sitecustomize) to start and say so
EXIT_GRACE = 2.0  # after the report, for the process to end by itself

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
    app_dir: Any,
    timeout: float,
    app_ref: str | None = None,
    lifespan: bool | None = None,
) -> ProbeReport:
    redactor = Redactor()
    if dsn:
        redactor.add_url(dsn)
    # One directory or several; resolved here: the app's interpreter starts in the same
    # directory, but say it exactly.
    dirs = [] if app_dir is None else [app_dir] if isinstance(app_dir, (str, Path)) else list(app_dir)
    request = {
        "dsn": dsn,
        "engine_ref": engine_ref,
        "setup_ref": setup_ref,
        "app_ref": app_ref,
        "lifespan": lifespan,
        "app_dirs": [str(Path(d).absolute()) for d in dirs],
        "timeout": timeout,
        "python": interpreter.python,
        "reason": interpreter.reason,
        "application": interpreter.application,
        "project": str(interpreter.project) if interpreter.project is not None else None,
    }
    workdir = Path(tempfile.mkdtemp(prefix="doctor-probe-"))
    try:
        _copy_package(workdir)
        stderr = _stderr_fd()
        try:
            # The request (it holds the DSN) goes through stdin, never a file or argv.
            proc = subprocess.Popen(
                [interpreter.python, "-c", _BOOTSTRAP, str(workdir)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr if stderr is not None else subprocess.PIPE,
                text=True, encoding="utf-8", errors="replace",
            )
        except OSError as exc:
            raise UsageError(f"cannot run {interpreter.python} ({interpreter.reason}): {exc.strerror or exc}") from None
        outcome = _converse(proc, json.dumps(request), timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _report(outcome, interpreter, redactor, user_code=engine_ref is not None or app_ref is not None)


@dataclass
class _Outcome:
    returncode: int | None = None
    result: Optional[dict] = None
    step: Optional[str] = None  # the step of the user's code that was running when it ended
    stopped: Optional[str] = None  # why the doctor stopped the process, if it did
    heard: bool = False  # whether the probe's code in it said anything at all
    stderr: list[str] = field(default_factory=list)


def _drain(stream: Any, into: "queue.Queue[Optional[str]] | list[str]") -> None:
    try:
        for line in stream:
            into.put(line) if isinstance(into, queue.Queue) else into.append(line)
    except (OSError, ValueError):
        pass
    if isinstance(into, queue.Queue):
        into.put(None)


def _end(proc: subprocess.Popen, wait: float) -> None:
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _converse(proc: subprocess.Popen, request: str, timeout: float) -> _Outcome:
    """Send the request, then read the process's messages until its result, bounding each step of
    the user's code and the silences by the timeout (see the module docstring)."""
    outcome = _Outcome()
    lines: queue.Queue[Optional[str]] = queue.Queue()
    threading.Thread(target=_drain, args=(proc.stdout, lines), daemon=True).start()
    stderr_reader = None
    if proc.stderr is not None:
        stderr_reader = threading.Thread(target=_drain, args=(proc.stderr, outcome.stderr), daemon=True)
        stderr_reader.start()
    try:
        try:
            proc.stdin.write(request)
            proc.stdin.close()
        except OSError:  # it ended before reading the request: what it printed says why
            pass
        step_deadline = None
        last_heard, silence = time.monotonic(), STARTUP + timeout
        while True:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                line = ""
            now = time.monotonic()
            if line is None:  # its end of the messages: it exits (or has)
                _end(proc, EXIT_GRACE)
                break
            if line:
                before, marker, message = line.partition(RESULT_MARKER)
                if before.strip():  # printed by the application's environment before our code ran
                    sys.stderr.write(before if before.endswith("\n") else before + "\n")
                try:
                    data = json.loads(message) if marker else None
                except ValueError:
                    data = None
                if isinstance(data, dict):
                    outcome.heard = True
                    last_heard, silence = now, timeout + GRACE
                    if "step" in data:
                        outcome.step = data["step"]["what"]
                        step_deadline = now + float(data["step"]["seconds"]) + GRACE
                    elif "step_done" in data:
                        outcome.step = step_deadline = None
                    elif "alive" not in data:
                        outcome.result = data
                        _end(proc, EXIT_GRACE)  # an exporter retrying at exit must not hold the doctor
                        break
            if step_deadline is not None and now > step_deadline:
                outcome.stopped = f"{outcome.step} did not finish within --timeout {timeout:g}s; it was stopped"
            elif now - last_heard > silence:
                doing = f" while {outcome.step}" if outcome.step else ""
                outcome.stopped = f"the probe's process stopped answering for {silence:g}s{doing}; it was stopped (--timeout {timeout:g})"
            if outcome.stopped:
                proc.kill()
                proc.wait()
                break
    except KeyboardInterrupt:
        _end(proc, 1.0)  # Ctrl-C reached it too, through the terminal's process group; else stop it
        raise
    finally:
        outcome.returncode = proc.poll()
        if stderr_reader is not None:
            stderr_reader.join(1.0)
            if outcome.stderr:
                sys.stderr.write("".join(outcome.stderr))
    return outcome


def _report(outcome: _Outcome, interpreter: Interpreter, redactor: Redactor, *, user_code: bool) -> ProbeReport:
    from otel_sqla_doctor.live.userapp import UserCodeError

    payload = outcome.result or {}
    returncode = outcome.returncode
    if outcome.stopped:
        raise UserCodeError(redactor.text(outcome.stopped))
    if not payload and returncode in (130, -2):  # Ctrl-C reached the child (and only it)
        raise KeyboardInterrupt
    if not payload and outcome.step:
        raise UserCodeError(
            redactor.text(
                f"{outcome.step}: the process ended (exit code {returncode}) before it finished: the application's code "
                "ended it (os._exit(), a crash or a signal)"
            )
        )
    if not payload and not outcome.heard and returncode == 0:
        raise UserCodeError(
            redactor.text(
                f"{interpreter.python} exited (exit code 0) before the probe started: code that its environment runs at "
                "start-up (a sitecustomize or .pth file) ended it; its output is above"
            )
        )
    if not payload and user_code:
        raise UserCodeError(
            redactor.text(
                f"the probe's process ended (exit code {returncode}) without a report while it ran the application's code "
                "(os._exit(), a crash or a signal); its output is above"
            )
        )
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
    if "user_error" in payload:
        raise UserCodeError(redactor.text(payload["user_error"]))
    if "crash" in payload:
        raise RemoteFailed(redactor.text(f"in {interpreter.python}: {payload['crash']}"))
    return ProbeReport.from_dict(payload["report"], payload.get("titles"))
