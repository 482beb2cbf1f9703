"""Ctrl-C during `doctor probe`: exit 130, one line, no traceback, no partial report file and no
password, even while the driver is blocked on a server that never answers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from probe_helpers import REPO, clean_env

pytestmark = pytest.mark.live

SECRET = "s3cr%40t"


@pytest.mark.parametrize("scheme", ["postgresql+asyncpg", "mysql+aiomysql"])
def test_ctrl_c_while_waiting_on_a_silent_server(tmp_path, silent_server, scheme):
    report = tmp_path / "probe.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_sqla_doctor", "probe", f"{scheme}://app:{SECRET}@127.0.0.1:{silent_server.port}/test",
         "--timeout", "120", "--format", "json", "--output", str(report)],
        cwd=REPO, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert silent_server.wait_for_connection(60), proc.communicate(timeout=5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert err.strip() == "doctor: interrupted", err[-2000:]
    assert out == ""
    assert time.monotonic() - sent < 10
    assert list(tmp_path.iterdir()) == []  # neither the report nor its temporary file
