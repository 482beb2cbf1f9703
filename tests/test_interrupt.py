"""Ctrl-C: the doctor stops with exit code 130 and one line ("doctor: interrupted"), no traceback
and no partial report file, whatever it was doing: importing, parsing in one process or in a
pool, or waiting on a server that never answers.

The signal is sent once the process has demonstrably started working (CPU time consumed, or the
server saw the connection), never after a fixed sleep: on a loaded CI machine a sleep can end
before the interpreter has even imported the CLI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children (pool workers), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:  # it just ended
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS + sum(_cpu_seconds(int(c)) for c in children)


def _wait_until_busy(proc: subprocess.Popen, cpu_seconds: float, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"finished before it could be interrupted: {proc.communicate()}"
        if _cpu_seconds(proc.pid) >= cpu_seconds:
            return
        time.sleep(0.02)
    raise AssertionError("the process never got busy")


def _slow_tree(root: Path, files: int) -> None:
    # Distinct contents (the per-file work is not shared) and enough of them for minutes of parsing.
    for n in range(files):
        body = "".join(f"def f{i}(s):\n    return s.execute(text('SELECT {n}, {i}'))\n" for i in range(400))
        (root / f"m{n}.py").write_text("from sqlalchemy import text\n" + body)


def _assert_interrupted(proc: subprocess.Popen, report: Path, within: float) -> None:
    sent = time.monotonic()
    out, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - sent
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert err.strip() == "doctor: interrupted", err[-2000:]
    assert elapsed < within, f"took {elapsed:.1f}s to stop"
    assert not report.exists()
    assert not [p.name for p in report.parent.iterdir() if p.name.startswith(f".{report.name}")], "temporary report left behind"


def _scan(tmp_path: Path, jobs: int) -> tuple[subprocess.Popen, Path]:
    report = tmp_path / "report.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_sqla_doctor", "scan", ".", "--no-cache", "--jobs", str(jobs), "--format", "json", "--output", str(report)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    return proc, report


@pytest.mark.parametrize("jobs", [1, 2], ids=["one-process", "process-pool"])
def test_ctrl_c_during_a_scan_exits_130_without_partial_output(tmp_path, jobs):
    _slow_tree(tmp_path, files=60)
    proc, report = _scan(tmp_path, jobs)
    _wait_until_busy(proc, cpu_seconds=1.0)  # imports take a fraction of that: this is parsing
    proc.send_signal(signal.SIGINT)
    # Stops at the latest after the file being parsed (well under a second each).
    _assert_interrupted(proc, report, within=15)


def test_ctrl_c_while_the_cli_is_still_importing_is_clean(tmp_path):
    """The interrupt lands during start-up, while typer and the commands are importing."""
    _slow_tree(tmp_path, files=2)
    report = tmp_path / "report.json"
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "otel_sqla_doctor", "scan", ".", "--no-cache", "--output", str(report)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # -X importtime reports each import as it completes: once typer is in, the doctor's own
    # entry point has run and the CLI module is still importing.
    for line in proc.stderr:
        if line.split("|")[-1].strip() == "typer":
            break
    else:
        raise AssertionError("typer was never imported")
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=60)
    messages = [line for line in rest.splitlines() if not line.startswith("import time:")]
    assert proc.returncode == 130, (proc.returncode, rest[-2000:])
    assert messages == ["doctor: interrupted"], rest[-2000:]
    assert not report.exists()


def test_second_ctrl_c_stops_at_once(tmp_path):
    _slow_tree(tmp_path, files=60)
    proc, report = _scan(tmp_path, 1)
    _wait_until_busy(proc, cpu_seconds=1.0)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _assert_interrupted(proc, report, within=15)
