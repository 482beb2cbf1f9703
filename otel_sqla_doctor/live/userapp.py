"""Start the user's application as it starts in production, then find the engine it holds.

The order mirrors how a service starts: the `--setup` module is imported (and a setup that takes
no argument is run) first; then the `--app` module is imported and, if it names a factory
(`create_app`), the factory is called; then a setup that takes the app is called with it; then
the app's ASGI lifespan starts (`lifespan`); only then is the engine resolved (`--engine
module:attr`, a path into the app such as `app.state.engine`, or found in the app), so that an
engine created lazily in the lifespan is the one probed. Whatever the user's code imports on
the way happens in the user's order, which is what decides whether the engine is instrumented.

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
import importlib.util
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
from otel_sqla_doctor.live.model import Startup, UserModule
from otel_sqla_doctor.live.packages import MissingPackage, missing_module
from otel_sqla_doctor.redact import Redactor

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
        self._step: tuple[str, str, float, Any] | None = None  # (subject, action, deadline, where)
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
    def step(
        self, subject: str, action: str, *, seconds: float | None = None, where: Callable[[], list] | None = None
    ) -> Iterator[None]:
        """`subject` (e.g. "--setup app.otel:setup") does `action` ("running it"), within the timeout
        (or `seconds`). `where` gives the frames of a suspended coroutine (a lifespan waiting on
        something), for the message when the main thread is only waiting in the event loop."""
        seconds = self.timeout if seconds is None else seconds
        with self._lock:
            self._step = (subject, action, time.monotonic() + seconds, where)
        self._notify({"step": {"what": f"{subject}: {action}", "seconds": seconds}})
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

    def _where(self, awaited: Callable[[], list] | None = None) -> str:
        frame = sys._current_frames().get(self._main)
        where = user_location(traceback.extract_stack(frame), self.root) if frame is not None else None
        if where is None and awaited is not None:  # the loop only waits: where is the coroutine?
            with contextlib.suppress(Exception):
                where = user_location(awaited(), self.root)
                where = f"{where}, awaiting" if where else None
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
                    f"{step[0]}: {step[1]} did not finish within --timeout {self.timeout:g}s ({self._where(step[3])}); "
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


# --- references -----------------------------------------------------------------------------------

_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
# `--engine app.state.engine` (a path into the --app object) or `state.engine` (the lifespan state).
APP_PATH_ROOTS = ("app", "state")


@dataclass(frozen=True)
class Reference:
    """What `--app`/`--setup`/`--engine` names: `package.module[:attr]` or `path/to/file.py[:attr]`."""

    text: str
    module: str | None = None
    file: Path | None = None
    attr: str | None = None  # a dotted attribute path, or None (import only)

    @property
    def name(self) -> str:
        return (self.attr or "").rsplit(".", 1)[-1]


def is_app_path(text: str) -> bool:
    """`app.state.engine` or `state.engine`: a path into the started app, not a module."""
    return ":" not in text and bool(re.fullmatch(_DOTTED, text)) and text.split(".")[0] in APP_PATH_ROOTS and "." in text


def parse_reference(text: str, option: str, *, import_only: bool = False) -> Reference:
    """Parse a reference; a file path must exist. Raises UsageError with the accepted forms."""
    text = text.strip()
    body, attr = text, None
    head, colon, tail = text.rpartition(":")
    if colon and re.fullmatch(_DOTTED, tail):
        body, attr = head, tail
    forms = "package.module:attribute" + (", package.module or path/to/file.py[:callable]" if import_only else " or path/to/file.py:attribute")
    if "/" in body or "\\" in body or body.endswith(".py"):
        path = Path(body).expanduser()
        if path.suffix != ".py":
            raise UsageError(f"{option} {text}: {body} is not a Python file (.py); give {forms}")
        if not path.is_file():
            raise UsageError(f"{option} {text}: no such file {body}")
        if attr is None and not import_only:
            raise UsageError(f"{option} {text} must name an attribute: {body}:NAME")
        return Reference(text, file=path.resolve(), attr=attr)
    if not re.fullmatch(_DOTTED, body) or (colon and attr is None) or (attr is None and not import_only):
        raise UsageError(f"{option} {text!r} must look like {forms}")
    return Reference(text, module=body, attr=attr)


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


def _is_factory(obj: Any) -> bool:
    """A function that makes the app (`create_app()`), not the ASGI app itself, which takes
    (scope, receive, send)."""
    if not callable(obj):
        return False
    try:
        inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    return not _required_parameters(obj)


def _module_file(module_name: str | None) -> str | None:
    module = sys.modules.get(module_name or "")
    file = getattr(module, "__file__", None)
    return str(Path(file).resolve()) if isinstance(file, str) else None


class _Loader:
    def __init__(self, redactor: Redactor, guard: Watchdog, loop: EventLoop, root: Path, paths: list[Path]) -> None:
        self.redactor = redactor
        self.guard = guard
        self.loop = loop
        self.root = root
        self.paths = paths  # the application's directories, first on sys.path

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

    def _dotted_name(self, path: Path) -> str | None:
        """The module name of a file inside an application directory (`src/shop/otel.py` ->
        `shop.otel`), so that it is imported once, under the name the app's own imports use."""
        for root in sorted(self.paths, key=lambda p: len(p.parts), reverse=True):
            if root not in path.parents:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if parts and all(part.isidentifier() for part in parts):
                return ".".join(parts)
        return None

    def import_module(self, ref: Reference, option: str) -> str:
        """Import what `ref` names (a module, or a file); returns the module's name."""
        subject = f"{option} {ref.text}"
        module_name = ref.module or (self._dotted_name(ref.file) if ref.file else None)
        try:
            if module_name is not None:
                with self.guard.step(subject, f"importing {module_name}"):
                    importlib.import_module(module_name)
                return module_name
            assert ref.file is not None
            # A file outside the application's directories: loaded under its own name, with its
            # directory on sys.path (after the app's) for the modules beside it, as `python file.py` has.
            module_name = ref.file.stem if ref.file.stem not in sys.modules else f"_doctor_user_{ref.file.stem}"
            if str(ref.file.parent) not in sys.path:
                sys.path.append(str(ref.file.parent))
            spec = importlib.util.spec_from_file_location(module_name, ref.file)
            if spec is None or spec.loader is None:
                raise UsageError(f"{subject}: cannot import {ref.file}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            with self.guard.step(subject, f"importing {ref.file.name}"):
                spec.loader.exec_module(module)
            return module_name
        except ModuleNotFoundError as exc:
            if exc.name and module_name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                raise UsageError(f"{subject}: no module named {exc.name!r} (is --app-dir right?)") from None
            package = missing_module(exc.name)
            if package:  # the app needs a package this interpreter lacks: that is the finding
                raise MissingPackage(package, f"importing {module_name} ({option}) needs it") from None
            raise UserCodeError(f"{subject}: importing {module_name} raised {self.describe(exc)}") from None
        except SystemExit as exc:
            raise UserCodeError(
                f"{subject}: importing {module_name} raised {self.describe(exc)}; "
                "the probe imports your modules as your service does, and they must not end the process"
            ) from None
        except UsageError:
            raise
        except Exception as exc:
            raise UserCodeError(f"{subject}: importing {module_name} raised {self.describe(exc)}") from None

    def attribute(self, ref: Reference, module_name: str, option: str) -> Any:
        obj: Any = sys.modules[module_name]
        for part in (ref.attr or "").split("."):
            if not hasattr(obj, part):
                raise UsageError(f"{option} {ref.text}: {module_name} has no attribute {ref.attr!r}")
            obj = getattr(obj, part)
        return obj

    def import_object(self, reference: str, option: str) -> Any:
        ref = parse_reference(reference, option)
        return self.attribute(ref, self.import_module(ref, option), option)

    # -- the steps ----------------------------------------------------------------------------

    def prepare_setup(self, setup_ref: str) -> tuple[Reference, str, Any, bool]:
        """Import the setup's module; returns (reference, module, callable or None, takes the app)."""
        ref = parse_reference(setup_ref, "--setup", import_only=True)
        module_name = self.import_module(ref, "--setup")
        if ref.attr is None:
            return ref, module_name, None, False
        setup = self.attribute(ref, module_name, "--setup")
        if not callable(setup):
            raise UsageError(f"--setup {setup_ref} is a {type(setup).__name__}, not a callable")
        needed = _required_parameters(setup)
        if len(needed) > 1:
            raise UsageError(
                f"--setup {setup_ref} takes arguments ({', '.join(needed)}); give a callable that takes none, or only the app"
            )
        return ref, module_name, setup, bool(needed)

    def run_setup(self, ref: Reference, setup: Any, app: Any = None, *, with_app: bool = False) -> str | None:
        """Run the setup; what it raised (or its sys.exit), described, is a finding, not an error."""
        what = f"{ref.name}(app)" if with_app else f"{ref.name}()"
        try:
            self.run(f"--setup {ref.text}", (lambda: setup(app)) if with_app else setup, what)
        except SystemExit as exc:
            return self.describe(exc)
        except Exception as exc:  # the user's setup crashing is a finding, not a usage error
            return self.describe(exc)
        return None

    def load_app(self, app_ref: str) -> tuple[Any, UserModule]:
        """The ASGI app `--app` names, made by its factory if it names one."""
        ref = parse_reference(app_ref, "--app")
        module_name = self.import_module(ref, "--app")
        app = self.attribute(ref, module_name, "--app")
        how = "the ASGI app"
        if _is_factory(app):
            subject = f"--app {app_ref}"
            try:
                app = self.run(subject, app, f"{ref.name}()")
            except (SystemExit, Exception) as exc:
                raise UserCodeError(f"{subject}: calling {ref.name}() raised {self.describe(exc)}") from None
            how = f"made by {ref.name}()"
        if not callable(app):
            raise UsageError(f"--app {app_ref} is a {type(app).__name__}, not an ASGI app (or a factory that returns one)")
        return app, UserModule("app", app_ref, how, module_name, _module_file(module_name))

    def resolve_engine(self, obj: Any, reference: str, *, none_hint: str) -> Any:
        """An AsyncEngine from what `--engine` names: the engine, a sessionmaker, or a factory."""
        from sqlalchemy.engine import Engine
        from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
        from sqlalchemy.orm import Session, sessionmaker

        subject = f"--engine {reference}"
        for _ in range(3):  # a factory may return a sessionmaker
            if obj is None:
                raise UsageError(f"{subject} is None {none_hint}")
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
                name = reference.rsplit(":", 1)[-1].rsplit(".", 1)[-1]
                try:
                    obj = self.run(subject, obj, f"{name}()")
                except (SystemExit, Exception) as exc:
                    raise UserCodeError(f"{subject}: calling it raised {self.describe(exc)}") from None
                continue
            break
        raise UsageError(f"{subject} is a {type(obj).__name__}, not an AsyncEngine (or a sessionmaker bound to one)")


# --- finding the engine in a started app ----------------------------------------------------------


def _async_engine_of(value: Any) -> Any:
    """The AsyncEngine `value` is or is bound to (an async_sessionmaker, an AsyncSession), else None."""
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    if isinstance(value, AsyncEngine):
        return value
    if isinstance(value, async_sessionmaker):
        bind = value.kw.get("bind")
        return bind if isinstance(bind, AsyncEngine) else None
    if isinstance(value, AsyncSession):
        return value.bind if isinstance(value.bind, AsyncEngine) else None
    return None


def _members(obj: Any) -> dict[str, Any]:
    """The attributes an app, a Starlette `State` or a plain holder object carries."""
    if isinstance(obj, dict):
        return {str(k): v for k, v in obj.items()}
    try:
        members = dict(vars(obj))
    except TypeError:
        return {}
    inner = members.get("_state")  # starlette.datastructures.State keeps its values there
    return {str(k): v for k, v in inner.items()} if isinstance(inner, dict) else members


def _is_user_file(file: Any, paths: list[Path]) -> bool:
    if not isinstance(file, str):
        return False
    path = Path(file).resolve()
    if path == _DOCTOR or _DOCTOR in path.parents or _is_library(path) or _is_stdlib(path):
        return False
    return any(root in path.parents for root in paths)


def find_engines(app: Any, state: dict, app_module: str | None, paths: list[Path]) -> tuple[list[tuple[list[str], Any]], list[str]]:
    """The distinct AsyncEngines a started app holds, each with the names it was found by, first
    first (app.state.X, state.X (the lifespan state), app.X, module:X, and one level into holder
    objects), and the names of module globals that look like an engine but are None."""
    found: dict[int, tuple[list[str], Any]] = {}
    still_none: list[str] = []

    def look(name: str, value: Any, depth: int) -> None:
        engine = _async_engine_of(value)
        if engine is not None:
            found.setdefault(id(engine), ([], engine))[0].append(name)
        elif depth > 0 and not isinstance(value, (type, str, bytes, int, float)) and not inspect.ismodule(value) and not callable(value):
            for key, inner in _members(value).items():
                if not key.startswith("_"):
                    look(f"{name}.{key}", inner, depth - 1)

    holder = getattr(app, "state", None)
    for key, value in (_members(holder) if holder is not None else {}).items():
        look(f"app.state.{key}", value, 1)
    for key, value in state.items():
        look(f"state.{key}", value, 1)
    for key, value in _members(app).items():
        if not key.startswith("_") and key != "state":
            look(f"app.{key}", value, 0)
    package = (app_module or "").split(".")[0]
    for module_name, module in sorted(sys.modules.copy().items()):
        in_app = package and (module_name == package or module_name.startswith(package + "."))
        if module is None or not (in_app or _is_user_file(getattr(module, "__file__", None), paths)):
            continue
        for key, value in _members(module).items():
            if key.startswith("__"):
                continue
            if value is None and "engine" in key.lower():
                still_none.append(f"{module_name}:{key}")
            look(f"{module_name}:{key}", value, 0)
    return list(found.values()), still_none


# --- where the user's modules come from -----------------------------------------------------------


def search_paths(app_dirs: list[Path], cwd: Path) -> list[Path]:
    """The directories put first on sys.path: the --app-dir ones, else the current directory and,
    for a project with the src/ layout, its src/."""
    if app_dirs:
        return app_dirs
    from otel_sqla_doctor.live.interpreter import project_root

    paths = [cwd]
    root = project_root(cwd) or cwd
    if (root / "src").is_dir():
        paths.append(root / "src")
    return paths


def installed_copy_warning(module: UserModule, tree: list[Path]) -> str | None:
    """A warning when `module` was imported from site-packages while the working tree has the
    same package: the probe then checks what `pip install .` copied, not the code being edited."""
    if not module.file or not module.module or not _is_library(Path(module.file)):
        return None
    top = module.module.split(".")[0]
    for directory in tree:
        for candidate in (directory / top, directory / f"{top}.py"):
            if candidate.exists():
                return (
                    f"{module.role} module {module.module} was imported from {module.file}, an installed copy in "
                    f"site-packages, but the working tree has {candidate}: the probe checked the installed copy; "
                    f"pass --app-dir {candidate.parent} (or install the project with pip install -e .)"
                )
    return None


# --- the whole start-up ---------------------------------------------------------------------------


@dataclass
class LoadedApp:
    engine: Any  # AsyncEngine, or a sync Engine (reported, not probed)
    engine_name: str  # as given to --engine, or the name it was found by
    setup_error: str | None = None
    logs: list[str] = field(default_factory=list)
    modules: list[UserModule] = field(default_factory=list)
    lifespan: str | None = None  # what the lifespan did (None: no --app)
    warnings: list[str] = field(default_factory=list)
    _lifespan: Any = None
    _loader: Any = None
    _app_subject: str = ""

    def shutdown(self) -> None:
        """The app's lifespan shutdown, after the probe: its outcome goes into the report."""
        if self._lifespan is not None and self._lifespan.started:
            # A shutdown that awaits forever is abandoned at --timeout (the report is kept); one
            # that blocks the thread is stopped by the watchdog a little later, like any step.
            loader = self._loader
            with loader.guard.step(self._app_subject, "running its lifespan shutdown", seconds=loader.guard.timeout + 1.5, where=self._lifespan.frames):
                outcome = self._lifespan.stop(loader.describe)
            self.lifespan = f"{self.lifespan}; {outcome}" if outcome else self.lifespan
            if outcome.startswith("shutdown failed") or "abandoned" in outcome:
                self.warnings.append(f"the app's lifespan {outcome}")

    def startup(self) -> Startup:
        return Startup(modules=tuple(self.modules), lifespan=self.lifespan, warnings=tuple(self.warnings))


def app_dirs(app_dir: Any) -> list[Path]:
    """--app-dir as a list of resolved directories (one, several, or none)."""
    if app_dir is None:
        return []
    given = [app_dir] if isinstance(app_dir, (str, Path)) else list(app_dir)
    dirs = []
    for item in given:
        path = Path(item).resolve()
        if not path.is_dir():
            raise UsageError(f"--app-dir {item} is not a directory")
        dirs.append(path)
    return dirs


def app_root(app_dir: Any) -> Path:
    """The directory file names in messages are shown relative to: the first --app-dir, else the
    current directory."""
    dirs = app_dirs(app_dir)
    return dirs[0] if dirs else Path.cwd().resolve()


def load_user_app(
    engine_ref: str | None,
    setup_ref: str | None,
    app_dir: Any,
    redactor: Redactor,
    *,
    loop: EventLoop,
    guard: Watchdog | None = None,
    app_ref: str | None = None,
    lifespan: bool | None = None,
    timeout: float = 5.0,
) -> LoadedApp:
    """Start the application (see the module docstring for the order) and resolve its engine;
    call with no event loop running. With a started lifespan, call `shutdown()` afterwards."""
    cwd = Path.cwd().resolve()
    given = app_dirs(app_dir)
    paths = search_paths(given, cwd)
    for path in reversed(paths):
        if str(path) in sys.path:
            sys.path.remove(str(path))
        sys.path.insert(0, str(path))
    loader = _Loader(redactor, guard or _UNBOUNDED, loop, app_root(app_dir), paths)
    run_lifespan = bool(app_ref) if lifespan is None else lifespan

    keeper = _KeepOtelLogs()
    otel_logger = logging.getLogger("opentelemetry")
    otel_logger.addHandler(keeper)
    loaded = LoadedApp(engine=None, engine_name=engine_ref or "", _loader=loader)
    try:
        # 1. The setup's module (a setup that takes no argument runs now, as at the top of main.py).
        setup = setup_module = None
        takes_app = False
        if setup_ref:
            ref, setup_module, setup, takes_app = loader.prepare_setup(setup_ref)
            if takes_app and not app_ref:
                raise UsageError(f"--setup {setup_ref} takes the app ({_required_parameters(setup)[0]}); give --app module:app too")
            if setup is None:
                how = "imported only"
            elif takes_app:
                how = f"{ref.name}(app) called with the --app object"
            else:
                how = f"{ref.name}() called"
                loaded.setup_error = loader.run_setup(ref, setup)
            setup_entry = UserModule("setup", setup_ref, how, setup_module, _module_file(setup_module))
        # 2. The app, made by its factory; 3. a setup that takes it.
        app = app_module = None
        if app_ref:
            app, app_entry = loader.load_app(app_ref)
            app_module = app_entry.module
            loaded.modules.append(app_entry)
        if setup_ref:
            if takes_app:
                loaded.setup_error = loader.run_setup(ref, setup, app, with_app=True)
            loaded.modules.append(setup_entry)
        # 4. The lifespan startup: engines created in it exist from here on.
        state: dict = {}
        if app_ref and run_lifespan:
            loaded._app_subject = f"--app {app_ref}"
            loaded._lifespan, loaded.lifespan = _start_lifespan(loader, app, app_ref, timeout)
            state = loaded._lifespan.state
        elif app_ref:
            loaded.lifespan = "not run (--no-lifespan)"
        # 5. The engine, resolved only now.
        loaded.engine, loaded.engine_name, engine_entry = _resolve_engine(
            loader, engine_ref, app, app_ref, app_module, state, paths, setup_ran=bool(setup_ref), lifespan=loaded.lifespan
        )
        loaded.modules.append(engine_entry)
    except BaseException:
        loaded.shutdown()
        raise
    finally:
        otel_logger.removeHandler(keeper)
    tree = [*paths, cwd]
    from otel_sqla_doctor.live.interpreter import project_root

    root = project_root(cwd)
    if root is not None:
        tree += [root, root / "src"]
    warned: set[str] = set()
    for module in loaded.modules:  # one warning per installed package, at its first module
        warning = installed_copy_warning(module, tree)
        top = (module.module or "").split(".")[0]
        if warning and top not in warned:
            warned.add(top)
            loaded.warnings.append(warning)
    password = loaded.engine.url.password
    redactor.add(password if isinstance(password, str) else None)
    loaded.logs = [redactor.text(m) for m in keeper.messages]
    return loaded


def _start_lifespan(loader: _Loader, app: Any, app_ref: str, timeout: float) -> tuple[Any, str]:
    from otel_sqla_doctor.live.lifespan import Lifespan, LifespanFailed

    lifespan = Lifespan(app, loader.loop.run, timeout)
    subject = f"--app {app_ref}"
    try:
        with loader.guard.step(subject, "running its lifespan startup", where=lifespan.frames):
            outcome = lifespan.start(loader.describe)
    except LifespanFailed as exc:
        raise UserCodeError(f"{subject}: the app's lifespan startup failed: {loader.redactor.text(exc.reason)}") from None
    return lifespan, outcome


def _resolve_engine(
    loader: _Loader, engine_ref: str | None, app: Any, app_ref: str | None, app_module: str | None, state: dict,
    paths: list[Path], *, setup_ran: bool, lifespan: str | None,
) -> tuple[Any, str, UserModule]:
    started = lifespan is not None and lifespan.startswith("startup complete")
    if app_ref is None:
        none_hint = (
            f"after the setup ran and its module was imported: it is None at import, so the application creates it "
            "later (in its ASGI lifespan, or on first use); pass --app module:app so that the probe starts the app "
            "(and runs its lifespan) first, or name the function that creates the engine"
        )
    elif started:
        none_hint = (
            "after the app's lifespan startup: the app creates it later still (on first use?); name the function that "
            "creates it, or the object that holds it (e.g. --engine app.state.engine)"
        )
    elif lifespan and lifespan.startswith("not run"):
        none_hint = "at import, and the lifespan was not run (--no-lifespan): drop --no-lifespan so that the probe starts the app first"
    else:
        none_hint = "after --app was loaded (the app has no lifespan the probe could run); name the function that creates the engine"

    if engine_ref and is_app_path(engine_ref):
        root, *parts = engine_ref.split(".")
        obj: Any = app if root == "app" else state
        walked = root
        for part in parts:
            members = obj if isinstance(obj, dict) else None
            if members is not None and part in members:
                obj = members[part]
            elif members is None and hasattr(obj, part):
                obj = getattr(obj, part)
            else:
                known = ", ".join(sorted(k for k in _members(obj) if not k.startswith("_"))[:10]) or "nothing"
                raise UsageError(f"--engine {engine_ref}: {walked} has no {part!r} after start-up (it has: {known})")
            walked += f".{part}"
        engine = loader.resolve_engine(obj, engine_ref, none_hint=none_hint)
        how = "after start-up" if started else "from the app"
        return engine, engine_ref, UserModule("engine", engine_ref, how)
    if engine_ref:
        ref = parse_reference(engine_ref, "--engine")
        module_name = loader.import_module(ref, "--engine")
        obj = loader.attribute(ref, module_name, "--engine")
        engine = loader.resolve_engine(obj, engine_ref, none_hint=none_hint)
        how = "read after start-up" if started else ("read after the setup" if setup_ran else "imported")
        return engine, engine_ref, UserModule("engine", engine_ref, how, module_name, _module_file(module_name))

    candidates, still_none = find_engines(app, state, app_module, paths)
    if len(candidates) == 1:
        names, engine = candidates[0]
        # The file it comes from: the module that holds it (`shop.db:engine`), if one does.
        module_name = next((n.split(":")[0] for n in names if ":" in n), None)
        how = "found in the app " + ("after start-up" if started else "as loaded") + ": the only AsyncEngine it holds"
        if len(names) > 1:
            how += f"; also {', '.join(names[1:4])}"
        return engine, names[0], UserModule("engine", names[0], how, module_name, _module_file(module_name))
    if candidates:
        listed = ", ".join(
            f"{names[0]} ({loader.redactor.text(engine.url.render_as_string(hide_password=True))})" for names, engine in candidates
        )
        raise UsageError(f"--app {app_ref} holds {len(candidates)} AsyncEngines after start-up: {listed}; choose one with --engine NAME")
    if still_none:
        raise UsageError(
            f"--app {app_ref}: no AsyncEngine found in the app; {', '.join(still_none[:5])} is None {none_hint}"
        )
    raise UsageError(
        f"--app {app_ref}: no AsyncEngine (or async_sessionmaker bound to one) is reachable from app.state, the lifespan "
        "state or the app's modules after start-up; name it with --engine module:attr (or app.state.NAME)"
    )
