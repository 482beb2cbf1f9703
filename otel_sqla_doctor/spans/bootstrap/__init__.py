"""Prepare the environment that makes a child process record its spans (see `_sitecustomize`)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

OUT_ENV = "DOCTOR_TRACE_OUT"
INSTRUMENT_ENV = "DOCTOR_TRACE_INSTRUMENT"


def prepare(workdir: Path, *, instrument: bool, base_env: dict[str, str] | None = None) -> tuple[dict[str, str], Path]:
    """Write `sitecustomize.py` into workdir/boot and return (environment, spans directory)."""
    boot = workdir / "boot"
    out = workdir / "spans"
    boot.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    source = resources.files(__package__).joinpath("_sitecustomize.py").read_text(encoding="utf-8")
    (boot / "sitecustomize.py").write_text(source, encoding="utf-8")
    env = dict(os.environ if base_env is None else base_env)
    existing = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(boot) + (os.pathsep + existing if existing else "")
    env[OUT_ENV] = str(out)
    if instrument:
        env[INSTRUMENT_ENV] = "1"
    else:
        env.pop(INSTRUMENT_ENV, None)
    return env, out
