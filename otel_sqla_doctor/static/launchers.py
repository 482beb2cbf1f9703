"""Auto-instrumentation started outside the code's own calls: the `opentelemetry-instrument`
launcher in a Dockerfile, Procfile, compose file or script, or `auto_instrumentation.initialize()`.

Either one runs every installed instrumentor's global `instrument()` before the application
imports anything, so the wiring rules treat it as the first `instrument()` of the processes it
starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from otel_sqla_doctor.static import paths

_LAUNCHER = re.compile(r"(?<![\w-])opentelemetry-instrument(?![\w-])|opentelemetry/instrumentation/auto_instrumentation")
_DISABLED_SQLALCHEMY = re.compile(r"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS\W[^\n]*sqlalchemy", re.I)
_DEPENDENCY_FILE = re.compile(r"(^|/)(requirements[^/]*\.txt|[^/]*\.lock)$")
# What puts opentelemetry-instrumentation-sqlalchemy into the image or environment.
_INSTRUMENTATION_INSTALLED = re.compile(
    r"opentelemetry-instrumentation-sqlalchemy|opentelemetry-bootstrap|opentelemetry-contrib-instrumentations", re.I
)
AUTO_INSTRUMENTATION_INITIALIZE = "opentelemetry.instrumentation.auto_instrumentation.initialize"


@dataclass(frozen=True)
class Launcher:
    """A line that starts the service under `opentelemetry-instrument` (auto-instrumentation)."""

    path: str
    line: int
    column: int
    end_column: int
    how: str = "`opentelemetry-instrument`"  # or the code that starts auto-instrumentation itself
    command: str = ""  # the rest of the line: what the launcher starts


def launchers(index) -> list[Launcher]:
    """`opentelemetry-instrument` in a Dockerfile, Procfile, compose file, script, Makefile or pyproject."""
    found = []
    for path, text in sorted(index.files.texts.items()):
        if _DEPENDENCY_FILE.search(path):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if line.lstrip().startswith("#"):
                continue
            match = _LAUNCHER.search(line)
            if match:
                found.append(Launcher(path, number, match.start() + 1, match.end() + 1, command=line[match.end():]))
    # `auto_instrumentation.initialize()` in the entry point does what the launcher does.
    for facts, site in index.all_calls():
        if site.callee == AUTO_INSTRUMENTATION_INITIALIZE and site.line and not paths.is_test(facts.path):
            found.append(Launcher(facts.path, site.line, site.column, site.end_column, how="`auto_instrumentation.initialize()`"))
    return found


def sqlalchemy_auto_instrumentation_disabled(index) -> bool:
    return any(_DISABLED_SQLALCHEMY.search(text) for text in index.files.texts.values())


def sqlalchemy_instrumentation_installed(index) -> bool:
    """The dependency files (or a `opentelemetry-bootstrap` step) install the SQLAlchemy
    instrumentation, or the code imports it."""
    return any(_INSTRUMENTATION_INSTALLED.search(text) for text in index.files.texts.values()) or any(
        site.module.startswith("opentelemetry.instrumentation.sqlalchemy") for facts in index.modules for site in facts.imports
    )


def launched_module(launcher: Launcher, entry) -> bool:
    """The launcher's command starts this entry module: `uvicorn app.main:app`, `python -m app`,
    `python app/main.py`, `celery -A app.worker worker`."""
    command = launcher.command
    if not command:
        return False
    module = entry.module[: -len(".__main__")] if entry.module.endswith(".__main__") else entry.module
    if re.search(rf"(?<![\w.]){re.escape(module)}(?![\w.])", command):
        return True
    return re.search(rf"(?<![\w/.]){re.escape(entry.path)}(?![\w])", command) is not None


def launcher_for(index, entry) -> Optional[Launcher]:
    """The text launcher that starts `entry` with the SQLAlchemy instrumentation active, if any."""
    cached = index.__dict__.get("_text_launchers")
    if cached is None:
        active = sqlalchemy_instrumentation_installed(index) and not sqlalchemy_auto_instrumentation_disabled(index)
        cached = index.__dict__["_text_launchers"] = [l for l in launchers(index) if l.command] if active else []
    return next((launcher for launcher in cached if launched_module(launcher, entry)), None)
