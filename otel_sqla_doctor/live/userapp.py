"""Load the user's own engine (`--engine pkg.mod:attr`) after running their setup (`--setup`).

The order mirrors how a service starts: the setup module is imported and its callable run
first, then the engine's module is imported. Whatever the setup imports on the way happens in
the user's order, which is exactly what decides whether their engine ends up instrumented.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otel_sqla_doctor.errors import UsageError
from otel_sqla_doctor.live.packages import MissingPackage, missing_module
from otel_sqla_doctor.redact import Redactor

_REFERENCE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


@dataclass
class LoadedApp:
    engine: Any  # AsyncEngine, or a sync Engine (reported, not probed)
    setup_error: str | None = None
    logs: list[str] = field(default_factory=list)


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


def _import(reference: str, option: str) -> Any:
    if not _REFERENCE.match(reference):
        raise UsageError(f"{option} {reference!r} must look like package.module:attribute")
    module_name, attr_path = reference.split(":")
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise UsageError(f"{option} {reference}: no module named {exc.name!r} (is --app-dir right?)") from None
        package = missing_module(exc.name)
        if package:  # the app needs a package this interpreter lacks: that is the finding
            raise MissingPackage(package, f"importing {module_name} ({option}) needs it") from None
        raise UsageError(f"{option} {reference}: importing {module_name} failed: {exc}") from None
    except Exception as exc:
        raise UsageError(f"{option} {reference}: importing {module_name} raised {type(exc).__name__}: {exc}") from None
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{option} {reference}: {module_name} has no attribute {attr_path!r}")
        obj = getattr(obj, part)
    return obj


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _resolve_engine(obj: Any, reference: str) -> Any:
    """An AsyncEngine from what `--engine` names: the engine, a sessionmaker, or a factory."""
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    for _ in range(2):  # a factory may return a sessionmaker
        if isinstance(obj, (AsyncEngine, Engine)):
            return obj
        if isinstance(obj, async_sessionmaker) and obj.kw.get("bind") is not None:
            obj = obj.kw["bind"]
            continue
        if isinstance(obj, AsyncSession) and obj.bind is not None:
            obj = obj.bind
            continue
        if callable(obj) and not isinstance(obj, type):
            try:
                obj = await _maybe_await(obj())
            except TypeError as exc:
                raise UsageError(f"--engine {reference} is a callable that needs arguments ({exc})") from None
            continue
        break
    raise UsageError(f"--engine {reference} is a {type(obj).__name__}, not an AsyncEngine (or a sessionmaker bound to one)")


async def load_user_app(engine_ref: str, setup_ref: str | None, app_dir: str | Path | None, redactor: Redactor) -> LoadedApp:
    root = str(Path(app_dir or ".").resolve())
    if app_dir is not None and not Path(root).is_dir():
        raise UsageError(f"--app-dir {app_dir} is not a directory")
    if root not in sys.path:
        sys.path.insert(0, root)

    keeper = _KeepOtelLogs()
    otel_logger = logging.getLogger("opentelemetry")
    otel_logger.addHandler(keeper)
    setup_error = None
    try:
        if setup_ref:
            setup = _import(setup_ref, "--setup")
            if not callable(setup):
                raise UsageError(f"--setup {setup_ref} is a {type(setup).__name__}, not a callable")
            try:
                await _maybe_await(setup())
            except Exception as exc:  # the user's setup crashing is a finding, not a usage error
                setup_error = redactor.text(f"{type(exc).__name__}: {exc}".splitlines()[0])
        engine = await _resolve_engine(_import(engine_ref, "--engine"), engine_ref)
    finally:
        otel_logger.removeHandler(keeper)
    password = engine.url.password
    redactor.add(password if isinstance(password, str) else None)
    return LoadedApp(engine=engine, setup_error=setup_error, logs=[redactor.text(m) for m in keeper.messages])
