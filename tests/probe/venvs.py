"""Real virtualenvs for the `--python` tests: built once, cached between tests and runs.

A venv is keyed by its requirement set (and the Python that builds it) and lives under the pytest
cache, so a second run reuses it. It is built in place under a file lock, with a marker written
last: concurrent runs wait instead of seeing half a venv, and an interrupted build is redone
(a venv cannot be built elsewhere and renamed: its scripts name their interpreter by path).

The doctor itself is installed from a snapshot of this checkout (not editable, like a user's
`pip install otel-sqla-doctor`), and reinstalled whenever its sources change.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from probe_helpers import REPO

COMPLETE = ".doctor-test-venv-complete"
DOCTOR_STAMP = ".doctor-source.sha256"
PIP_TIMEOUT = 900


class BuildFailed(Exception):
    pass


OTEL = ("opentelemetry-api", "opentelemetry-sdk", "opentelemetry-instrumentation", "opentelemetry-instrumentation-sqlalchemy")


def tested_pins(names: tuple[str, ...] = OTEL) -> list[str]:
    """The pins of constraints/tested.txt for `names` (the versions the suite proves), so every
    venv gets the same instrumentation (0.66b1, which declares `sqlalchemy < 2.1.0`)."""
    pins = []
    for line in (REPO / "constraints" / "tested.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and line.split("==")[0].strip().lower() in names:
            pins.append(line)
    return pins


def doctor_dependencies() -> list[str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    return list(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pip(venv: Path, *args: str) -> None:
    # The test environment's pip installs into the venv (`pip --python`), so the venvs need no
    # pip of their own (ensurepip would add seconds to every build).
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python_of(venv)), "install", "--quiet", *args],
        capture_output=True, text=True, timeout=PIP_TIMEOUT,
    )
    if proc.returncode != 0:
        raise BuildFailed(f"pip install {' '.join(args)} failed:\n{proc.stderr[-3000:]}")


def doctor_source_hash() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "README.md"):
        digest.update((REPO / name).read_bytes())
    for path in sorted((REPO / "otel_sqla_doctor").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _install_doctor(venv: Path, source_hash: str) -> None:
    """A snapshot of the checkout, so that pip's in-tree build leaves nothing in the repository."""
    with tempfile.TemporaryDirectory(prefix="doctor-snapshot-") as tmp:
        snapshot = Path(tmp) / "otel-sqla-doctor"
        shutil.copytree(REPO / "otel_sqla_doctor", snapshot / "otel_sqla_doctor", ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, snapshot / name)
        _pip(venv, "--no-deps", "--force-reinstall", str(snapshot))
    (venv / DOCTOR_STAMP).write_text(source_hash)


def build_venv(root: Path, name: str, requirements: list[str], *, doctor: bool = False) -> Path:
    """The venv `name` with `requirements` installed (normal dependency resolution), built once."""
    key_source = json.dumps([sys.version_info[:3], sorted(requirements), doctor])
    venv = root / f"{name}-{hashlib.sha256(key_source.encode()).hexdigest()[:12]}"
    with _locked(root / f"{venv.name}.lock"):
        if not (venv / COMPLETE).is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True, timeout=120)
            _pip(venv, *requirements)
            (venv / COMPLETE).write_text("\n".join(requirements) + "\n")
        if doctor:
            source_hash = doctor_source_hash()
            stamp = venv / DOCTOR_STAMP
            if not stamp.is_file() or stamp.read_text() != source_hash:
                _install_doctor(venv, source_hash)
    return venv


def venv_root(config) -> Path:
    cache = getattr(config, "cache", None)  # absent under -p no:cacheprovider
    if cache is not None:
        return Path(cache.mkdir("probe-venvs"))
    return Path(tempfile.gettempdir()) / f"otel-sqla-doctor-probe-venvs-{os.getuid()}"
