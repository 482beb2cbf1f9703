"""Ctrl-C: `doctor scan` stops with exit 130, one line, no traceback and no partial report file."""

from __future__ import annotations

import signal
import subprocess
import sys
import time


def test_ctrl_c_exits_130_without_partial_output(tmp_path):
    module = "from sqlalchemy import text\n" + "".join(f"def f{i}(s):\n    return s.execute(text('SELECT {i}'))\n" for i in range(400))
    for n in range(150):
        (tmp_path / f"m{n}.py").write_text(module)
    report = tmp_path / "report.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_sqla_doctor", "scan", ".", "--no-cache", "--jobs", "1", "--format", "json", "--output", str(report)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(1.5)  # well into parsing (150 files of 800 lines take far longer)
    assert proc.poll() is None, "the scan finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 1, err
    assert not report.exists()
