"""Load the user's own engine (`--engine pkg.mod:attr`) after running their setup (`--setup`).

The order mirrors how a service starts: the setup module is imported and its callable run
first, then the engine's module is imported. Whatever the setup imports on the way happens in
the user's order, which is exactly what decides whether their engine ends up instrumented.

The user's code runs in the main thread of the probe's own process (a child of the doctor, see
`isolated`), while no event loop is running: a sync setup sees what it sees under `python -m app`
(no running loop), and an async setup or factory is awaited on the loop the probe then uses. Each
step is bounded by --timeout (`Watchdog`): a step that spins or waits forever is stopped and
reported with the place it was at. An exception, or a `sys.exit()`, of the user's code is
reported with its type, message and the user's own frame; it never ends the doctor.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import re
import sys
import sysconfig
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from otel_sqla_doctor.errors import UsageError
from otel_sqla_doctor.live.packages import MissingPackage, missing_module
from otel_sqla_doctor.redact import Redactor

_REFERENCE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
_DOCTOR = Path(__file__).resolve().parent.parent  # this package (or its copy in the app's interpreter)


class UserCodeError(UsageError):
    """The user's code could not be run to the end: it raised, exited, or did not finish in time.
    One line, exit code 2, like a bad reference: the probe has nothing to probe."""


@dataclass
class LoadedApp:
    engine: Any  # AsyncEngine, or a sync Engine (reported, not probed)
    setup_error: str | None = None
    logs: list[str] = field(default_factory=list)


# --- where in the user's code -------------------------------------------------------------------


_STDLIB = tuple({Path(p).resolve() for key in ("stdlib", "platstdlib") if (p := sysconfig.get_paths().get(key))})


def _is_stdlib(path: Path) -> bool:
    return any(path == root or root in path.parents for root in _STDLIB)


def _is_library(path: Path) -> bool:
    return "site-packages" in path.parts or "dist-packages" in path.parts


def user_location(frames: list[traceback.FrameSummary], root: Path | None) -> str | None:
    """`file:line in function` of the innermost frame in the user's own code (not the standard
    library, not an installed package, not the doctor), else of the innermost installed package's
    frame; the path relative to the application's directory when it is inside it."""

    def place(frame: traceback.FrameSummary) -> str:
        path = Path(frame.filename)
        shown = str(path)
        if root is not None:
            with contextlib.suppress(ValueError):
                shown = str(path.resolve().relative_to(root))
        return f"{shown}:{frame.lineno} in {frame.name}"

    kinds = []
    for frame in frames:
        path = Path(frame.filename)
        if not path.is_absolute():  # <frozen importlib._bootstrap>, <string>
            kinds.append("other")
            continue
        path = path.resolve()
        if path == _DOCTOR or _DOCTOR in path.parents or _is_stdlib(path):
            kinds.append("other")
        elif _is_library(path):
            kinds.append("library")
        else:
            kinds.append("user")
    for wanted in ("user", "library"):
        for frame, kind in zip(reversed(frames), reversed(kinds)):
            if kind == wanted:
                return place(frame)
    return None


def describe_exception(exc: BaseException, root: Path | None) -> str:
    """`Type: message (file:line in function)` for an exception of the user's code."""
    if isinstance(exc, SyntaxError) and exc.filename:
        frame = traceback.FrameSummary(exc.filename, exc.lineno or 0, "<module>")
        where = user_location([frame], root)
        return f"SyntaxError: {exc.msg} ({where})" if where else f"SyntaxError: {exc.msg}"
    where = user_location(traceback.extract_tb(exc.__traceback__), root)
    if isinstance(exc, SystemExit):
        what = f"SystemExit: sys.exit({exc.code!r})"
    else:
        lines = str(exc).strip().splitlines()
        what = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return f"{what} ({where})" if where else what


# --- bounding the user's code -------------------------------------------------------------------


class Watchdog:
    """Bounds each step of the user's code, and the probe's event loop, by the timeout.

    A daemon thread looks every 0.1 s: a step that has not finished within the timeout, or an
    event loop that has not turned for longer than it, is reported through `expire(message)`,
    which ends this process (the step cannot be interrupted otherwise). `send(message)` tells the
    doctor which step runs and that this process is alive, so that it can stop a process whose
    watchdog cannot run either (native code holding the interpreter). Without `expire` (the probe
    run in the caller's own process) nothing is bounded.
    """

    def __init__(
        self,
        timeout: float,
        *,
        root: Path | None = None,
        send: Callable[[dict], None] | None = None,
        expire: Callable[[str], None] | None = None,
    ) -> None:
        self.timeout = timeout
        self.root = root
        self._send = send
        self._expire = expire
        self._lock = threading.Lock()
        self._step: tuple[str, str, float] | None = None  # (subject, action, deadline)
        self._loop_subject: str | None = None
        self._beat = 0.0
        self._main = threading.get_ident()
        if expire is not None:
            threading.Thread(target=self._watch, name="otel-sqla-doctor watchdog", daemon=True).start()

    def _notify(self, message: dict) -> None:
        if self._send is not None:
            with contextlib.suppress(Exception):
                self._send(message)

    @contextlib.contextmanager
    def step(self, subject: str, action: str) -> Iterator[None]:
        """`subject` (e.g. "--setup app.otel:setup") does `action` ("running it"), within the timeout."""
        with self._lock:
            self._step = (subject, action, time.monotonic() + self.timeout)
        self._notify({"step": {"what": f"{subject}: {action}", "seconds": self.timeout}})
        try:
            yield
        finally:
            with self._lock:
                self._step = None
            self._notify({"step_done": True})

    @contextlib.asynccontextmanager
    async def loop_watched(self, subject: str):
        """While inside, an event loop that does not turn for longer than the timeout (something
        synchronous blocks it: an event listener, a span processor, an exporter) is stopped."""
        if self._expire is None:
            yield
            return

        async def heartbeat() -> None:
            while True:
                self._beat = time.monotonic()
                await asyncio.sleep(0.1)

        self._beat = time.monotonic()
        task = asyncio.ensure_future(heartbeat())
        with self._lock:
            self._loop_subject = subject
        try:
            yield
        finally:
            with self._lock:
                self._loop_subject = None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _where(self) -> str:
        frame = sys._current_frames().get(self._main)
        where = user_location(traceback.extract_stack(frame), self.root) if frame is not None else None
        return f"it was at {where}" if where else "where it was is not known"

    def _watch(self) -> None:
        last_alive = 0.0
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            with self._lock:
                step, subject, beat = self._step, self._loop_subject, self._beat
            if step is not None and now > step[2]:
                self._expire(
                    f"{step[0]}: {step[1]} did not finish within --timeout {self.timeout:g}s ({self._where()}); "
                    "it was stopped. Raise --timeout if it is only slow"
                )
                return
            if subject is not None and now - beat > self.timeout + 0.5:
                self._expire(
                    f"{subject}: the event loop was blocked for more than --timeout {self.timeout:g}s ({self._where()}): "
                    "something synchronous in the application (an event listener, a span processor, an exporter) "
                    "blocks it; it was stopped"
                )
                return
            if now - last_alive >= 1.0:
                last_alive = now
                self._notify({"alive": True})


_UNBOUNDED = Watchdog(0.0)


class EventLoop:
    """One event loop for the user's awaitables and the probe after them, run step by step: in
    between, no loop is running (as in a plain script), and what the user's async code left in the
    engine's pool belongs to the loop the probe then uses."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self._threads = set(threading.enumerate())

    def run(self, awaitable: Any) -> Any:
        async def wrapper() -> Any:
            return await awaitable

        return self.loop.run_until_complete(wrapper())

    def close(self) -> None:
        loop = self.loop
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            # A driver's worker thread (aiosqlite's) may still hand a result back to this loop
            # after a failed connect: let it, briefly, rather than have it fail on a closed loop.
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline and any(
                thread.is_alive() for thread in threading.enumerate() if thread not in self._threads
            ):
                loop.run_until_complete(asyncio.sleep(0.01))
        except Exception:
            pass
        finally:
            asyncio.set_event_loop(None)
            loop.close()


# --- loading ------------------------------------------------------------------------------------


class _KeepOtelLogs(logging.Handler):
    """Collects what the instrumentation logs while the user's code wires it up."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages.append(f"{record.levelname} {record.name}: {record.getMessage()}")
        except Exception:  # a bad log call in user code must not break the probe
            pass


def _required_parameters(func: Any) -> list[str]:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    return [
        name
        for name, parameter in signature.parameters.items()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]


class _Loader:
    def __init__(self, redactor: Redactor, guard: Watchdog, loop: EventLoop, root: Path) -> None:
        self.redactor = redactor
        self.guard = guard
        self.loop = loop
        self.root = root

    def describe(self, exc: BaseException) -> str:
        return self.redactor.text(describe_exception(exc, self.root))

    def run(self, subject: str, call: Callable[[], Any], what: str) -> Any:
        """Call the user's `call` within the timeout, then await what it returned if anything."""
        with self.guard.step(subject, f"running {what}"):
            value = call()
        if inspect.isawaitable(value):
            with self.guard.step(subject, f"awaiting {what}"):
                value = self.loop.run(value)
        return value

    def import_object(self, reference: str, option: str) -> Any:
        if not _REFERENCE.match(reference):
            raise UsageError(f"{option} {reference!r} must look like package.module:attribute")
        module_name, attr_path = reference.split(":")
        try:
            with self.guard.step(f"{option} {reference}", f"importing {module_name}"):
                obj = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                raise UsageError(f"{option} {reference}: no module named {exc.name!r} (is --app-dir right?)") from None
            package = missing_module(exc.name)
            if package:  # the app needs a package this interpreter lacks: that is the finding
                raise MissingPackage(package, f"importing {module_name} ({option}) needs it") from None
            raise UserCodeError(f"{option} {reference}: importing {module_name} raised {self.describe(exc)}") from None
        except SystemExit as exc:
            raise UserCodeError(
                f"{option} {reference}: importing {module_name} raised {self.describe(exc)}; "
                "the probe imports your modules as your service does, and they must not end the process"
            ) from None
        except Exception as exc:
            raise UserCodeError(f"{option} {reference}: importing {module_name} raised {self.describe(exc)}") from None
        for part in attr_path.split("."):
            if not hasattr(obj, part):
                raise UsageError(f"{option} {reference}: {module_name} has no attribute {attr_path!r}")
            obj = getattr(obj, part)
        return obj

    def run_setup(self, setup_ref: str) -> str | None:
        """Run the setup; what it raised (or its sys.exit), described, is a finding, not an error."""
        setup = self.import_object(setup_ref, "--setup")
        if not callable(setup):
            raise UsageError(f"--setup {setup_ref} is a {type(setup).__name__}, not a callable")
        needed = _required_parameters(setup)
        if needed:
            raise UsageError(f"--setup {setup_ref} takes arguments ({', '.join(needed)}); give a callable that takes none")
        try:
            self.run(f"--setup {setup_ref}", setup, f"{setup_ref.split(':')[1]}()")
        except SystemExit as exc:
            return self.describe(exc)
        except Exception as exc:  # the user's setup crashing is a finding, not a usage error
            return self.describe(exc)
        return None

    def resolve_engine(self, obj: Any, reference: str) -> Any:
        """An AsyncEngine from what `--engine` names: the engine, a sessionmaker, or a factory."""
        from sqlalchemy.engine import Engine
        from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
        from sqlalchemy.orm import Session, sessionmaker

        subject = f"--engine {reference}"
        for _ in range(3):  # a factory may return a sessionmaker
            if obj is None:
                raise UsageError(
                    f"{subject} is None after the setup ran: the engine is created later (on first use, or in the app's lifespan)"
                )
            if isinstance(obj, (AsyncEngine, Engine)):
                return obj
            if isinstance(obj, (async_sessionmaker, sessionmaker, AsyncSession, Session)):
                bind = obj.kw.get("bind") if isinstance(obj, (async_sessionmaker, sessionmaker)) else getattr(obj, "bind", None)
                if bind is None:
                    raise UsageError(
                        f"{subject} is an {type(obj).__name__} bound to no engine; name the engine itself "
                        f"(module:engine), or bind it: {type(obj).__name__}(engine)"
                    )
                obj = bind
                continue
            if callable(obj) and not isinstance(obj, type):
                needed = _required_parameters(obj)
                if needed:
                    raise UsageError(f"{subject} is a callable that needs arguments ({', '.join(needed)})")
                try:
                    obj = self.run(subject, obj, f"{reference.split(':')[1]}()")
                except SystemExit as exc:
                    raise UserCodeError(f"{subject}: calling it raised {self.describe(exc)}") from None
                except Exception as exc:
                    raise UserCodeError(f"{subject}: calling it raised {self.describe(exc)}") from None
                continue
            break
        raise UsageError(f"{subject} is a {type(obj).__name__}, not an AsyncEngine (or a sessionmaker bound to one)")


def app_root(app_dir: str | Path | None) -> Path:
    root = Path(app_dir or ".").resolve()
    if app_dir is not None and not root.is_dir():
        raise UsageError(f"--app-dir {app_dir} is not a directory")
    return root


def load_user_app(
    engine_ref: str,
    setup_ref: str | None,
    app_dir: str | Path | None,
    redactor: Redactor,
    *,
    loop: EventLoop,
    guard: Watchdog | None = None,
) -> LoadedApp:
    """Run the setup, import the engine, resolve it; call with no event loop running."""
    root = app_root(app_dir)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    loader = _Loader(redactor, guard or _UNBOUNDED, loop, root)

    keeper = _KeepOtelLogs()
    otel_logger = logging.getLogger("opentelemetry")
    otel_logger.addHandler(keeper)
    try:
        setup_error = loader.run_setup(setup_ref) if setup_ref else None
        engine = loader.resolve_engine(loader.import_object(engine_ref, "--engine"), engine_ref)
    finally:
        otel_logger.removeHandler(keeper)
    password = engine.url.password
    redactor.add(password if isinstance(password, str) else None)
    return LoadedApp(engine=engine, setup_error=setup_error, logs=[redactor.text(m) for m in keeper.messages])
