"""Run the user's command with the recording bootstrap, passing its I/O and exit code through."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from otel_sqla_doctor.errors import UsageError
from otel_sqla_doctor.spans.bootstrap import prepare
from otel_sqla_doctor.spans.model import SpanReport


@dataclass
class TraceOutcome:
    returncode: int
    span_files: list[Path]
    workdir: Path

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def annotate(self, report: SpanReport, *, instrument: bool) -> SpanReport:
        """Say why nothing was recorded, in terms of what `doctor trace` did, and that a command
        that failed was analysed only as far as it ran."""
        errors = report.errors
        if self.returncode != 0:
            how = (
                f"was killed by signal {self.returncode - 128}" if self.returncode > 128 else f"failed with exit code {self.returncode}"
            )
            covered = (
                "only the spans it recorded before it ended were analysed" if report.stats.spans else "it recorded no spans, so nothing was checked"
            )
            errors = (*errors, f"the command {how}: {covered}")
        if report.stats.spans:
            notes = report.notes
        elif self.returncode != 0:
            notes = ()
        elif instrument:
            notes = (
                "no spans were recorded: the command ran no Python with opentelemetry-sdk, or its queries "
                "ran in a process that does not inherit PYTHONPATH",
            )
        else:
            notes = (
                "no spans were recorded: the program never created an SDK TracerProvider (as configured, it "
                "traces nothing); run with --instrument to let the doctor set one up and instrument SQLAlchemy",
            )
        return replace(report, notes=tuple(n for n in notes if n != "no spans were read"), errors=errors)


def run_traced(command: list[str], *, instrument: bool, save_spans: Path | None = None) -> TraceOutcome:
    workdir = Path(tempfile.mkdtemp(prefix="doctor-trace-"))
    env, out_dir = prepare(workdir, instrument=instrument)
    try:
        process = subprocess.Popen(command, env=env)
    except FileNotFoundError:
        shutil.rmtree(workdir, ignore_errors=True)
        raise UsageError(f"command not found: {command[0]}") from None
    except PermissionError:
        shutil.rmtree(workdir, ignore_errors=True)
        raise UsageError(f"command is not executable: {command[0]}") from None

    # Ctrl-C reaches the command through the terminal's process group; the doctor waits for it to
    # finish (and write its spans) instead of dying first. SIGTERM sent to the doctor is passed on.
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, lambda signum, frame: process.send_signal(signum))
    try:
        returncode = process.wait()
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
    if returncode < 0:  # killed by a signal: the shell's convention
        returncode = 128 - returncode
    span_files = sorted(out_dir.glob("spans-*.jsonl"), key=lambda p: p.stat().st_mtime)
    if save_spans is not None:
        from otel_sqla_doctor.report.atomic import write_output

        def copy(target) -> None:
            for path in span_files:
                with open(path, "rb") as source:
                    shutil.copyfileobj(source, target)

        try:
            write_output(save_spans, copy, what="the recorded spans")
        except UsageError:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
    return TraceOutcome(returncode, span_files, workdir)


__all__ = ["TraceOutcome", "run_traced"]
