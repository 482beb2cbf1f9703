"""Run a reproduction script in a fresh interpreter and read back what it printed as JSON.

Instrumentation state is process-global (BaseInstrumentor is a singleton, the tracer provider can
be set once, and import order of `sqlalchemy.ext.asyncio` matters), so every reproduction of a
wiring mistake runs in its own process, exactly as an application would start.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

# Prepended to every script: an SDK provider with an in-memory exporter, and a helper that
# records which spans were started (even those never ended) and which were exported.
PREAMBLE = '''
import json, logging, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

class _StartRecorder(SpanProcessor):
    def __init__(self):
        self.started = []
    def on_start(self, span, parent_context=None):
        self.started.append(span.name)

EXPORTER = InMemorySpanExporter()
STARTS = _StartRecorder()
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(STARTS)
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))

_LOG_RECORDS = []
class _Keep(logging.Handler):
    def emit(self, record):
        _LOG_RECORDS.append(f"{record.levelname} {record.name}: {record.getMessage()}")
logging.getLogger().addHandler(_Keep())

def report(**extra):
    spans = EXPORTER.get_finished_spans()
    out = {
        "started": STARTS.started,
        "ended": [s.name for s in spans],
        "statements": [s.attributes.get("db.statement") for s in spans if s.attributes.get("db.statement")],
        "logs": _LOG_RECORDS,
    }
    out.update(extra)
    print("@@RESULT@@" + json.dumps(out, default=str))
'''


def run_script(body: str, *, cwd: Path | None = None, env: dict | None = None, timeout: float = 120) -> dict:
    """Run PREAMBLE + body in a new interpreter; the body must call report(...)."""
    code = PREAMBLE + "\n" + textwrap.dedent(body)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    for line in proc.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            result = json.loads(line[len("@@RESULT@@"):])
            result["stderr"] = proc.stderr
            result["returncode"] = proc.returncode
            return result
    raise AssertionError(f"script printed no result (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
