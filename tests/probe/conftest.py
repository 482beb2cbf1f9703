"""Fixtures for the probe tests."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

import pytest
from typer.testing import CliRunner

from probe_helpers import INTERPRETER_CHOICE, Run

# Variables that would change what the probe sees; tests set what they need explicitly.
_OTEL_NOISE = [name for name in os.environ if name.startswith("OTEL_")]


@pytest.fixture
def invoke(monkeypatch):
    """`doctor probe ...` through typer's CliRunner, in this process."""
    from otel_sqla_doctor.cli import app

    for name in (*_OTEL_NOISE, *INTERPRETER_CHOICE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")

    def run(*args: str, env: dict[str, str] | None = None) -> Run:
        result = CliRunner().invoke(app, ["probe", *args], env=env)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(result.exit_code, result.stdout, result.stderr)

    return run


class SilentServer:
    """Accepts TCP connections and never says a word: a hung server or a black-holing proxy."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                self.accepted.append(self.listener.accept()[0])
            except OSError:
                continue

    def wait_for_connection(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        return bool(self.accepted)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.accepted:
            conn.close()
        self.listener.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


# -- virtualenvs for `--python` (built once, cached under the pytest cache) ------------------------
def _venv(request, name: str, requirements: list[str], *, doctor: bool = False):
    from venvs import BuildFailed, build_venv, venv_root

    try:
        return build_venv(venv_root(request.config), name, requirements, doctor=doctor)
    except (BuildFailed, OSError, subprocess.SubprocessError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"could not build the {name} virtualenv, and CI never skips: {exc}")
        pytest.skip(f"could not build the {name} virtualenv (is PyPI reachable?): {exc}")


@pytest.fixture(scope="session")
def tool_venv(request):
    """The doctor installed (not editable) beside SQLAlchemy 2.1, which its instrumentation refuses:
    the doctor's own SQLAlchemy must never be mistaken for the application's."""
    from venvs import doctor_dependencies, tested_pins

    return _venv(request, "tool-sqlalchemy21", [*doctor_dependencies(), "sqlalchemy[asyncio]>=2.1", *tested_pins()], doctor=True)


@pytest.fixture(scope="session")
def app_venv(request):
    """An application's environment: SQLAlchemy 2.0 (inside the range), the SDK, the
    instrumentation, aiosqlite and asyncpg; no doctor, no typer, no libcst."""
    from venvs import tested_pins

    return _venv(request, "app-sqlalchemy20", ["sqlalchemy[asyncio]<2.1", "aiosqlite", "asyncpg", *tested_pins()])


@pytest.fixture(scope="session")
def app_venv_sqlalchemy21(request):
    from venvs import tested_pins

    return _venv(request, "app-sqlalchemy21", ["sqlalchemy[asyncio]>=2.1", "aiosqlite", *tested_pins()])


@pytest.fixture(scope="session")
def app_venv_without_otel(request):
    return _venv(request, "app-without-otel", ["sqlalchemy[asyncio]<2.1", "aiosqlite"])
