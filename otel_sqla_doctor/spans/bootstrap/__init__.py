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
    _write_launcher_hook(boot)
    env = dict(os.environ if base_env is None else base_env)
    existing = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(boot) + (os.pathsep + existing if existing else "")
    env[OUT_ENV] = str(out)
    if instrument:
        env[INSTRUMENT_ENV] = "1"
    else:
        env.pop(INSTRUMENT_ENV, None)
    return env, out


HOOK_MODULE = "_doctor_trace_hook"
_HOOK_SOURCE = '''"""Loads the doctor's bootstrap under its own name (the launcher's sitecustomize owns that one)."""
import importlib.util
import os


def attach():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sitecustomize.py")
    spec = importlib.util.spec_from_file_location("_doctor_trace_bootstrap", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.attach_from_launcher()
'''


def _write_launcher_hook(boot: Path) -> None:
    """`opentelemetry-instrument` shadows our sitecustomize with its own, which runs every
    `opentelemetry_pre_instrument` entry point on sys.path: declare one in a dist-info here."""
    (boot / f"{HOOK_MODULE}.py").write_text(_HOOK_SOURCE, encoding="utf-8")
    dist = boot / "otel_sqla_doctor_trace_hook-0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: otel-sqla-doctor-trace-hook\nVersion: 0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(f"[opentelemetry_pre_instrument]\ndoctor_trace = {HOOK_MODULE}:attach\n", encoding="utf-8")
