"""Long scans show `scanning N/M files` on a terminal's stderr after ~1 s; never in pipes or CI."""

from __future__ import annotations

import io

from cli_support import run_doctor

from otel_sqla_doctor.static.progress import Progress

WIRING = "from sqlalchemy.ext.asyncio import create_async_engine\nengine = create_async_engine('sqlite+aiosqlite://')\n"


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _progress(stream, total=3):
    progress = Progress(total, stream=stream)
    now = [0.0]
    progress._clock = lambda: now[0]
    progress.start = 0.0
    return progress, now


def test_progress_on_a_terminal_after_the_delay(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    stream = FakeTTY()
    progress, now = _progress(stream)
    progress.tick()
    assert stream.getvalue() == "", "nothing during the first second"
    now[0] = 1.5
    progress.tick()
    assert stream.getvalue() == "\rscanning 2/3 files"
    progress.close()
    assert stream.getvalue().endswith("\r" + " " * len("scanning 2/3 files") + "\r")


def test_no_progress_with_ci_set_or_off_a_terminal(monkeypatch):
    monkeypatch.setenv("CI", "true")
    tty = FakeTTY()
    progress, now = _progress(tty)
    now[0] = 5.0
    progress.tick()
    progress.close()
    assert tty.getvalue() == ""

    monkeypatch.delenv("CI", raising=False)
    pipe = io.StringIO()
    progress, now = _progress(pipe)
    now[0] = 5.0
    progress.tick()
    progress.close()
    assert pipe.getvalue() == ""


def test_scan_writes_nothing_extra_to_a_piped_stderr(tmp_path, monkeypatch):
    monkeypatch.setattr(Progress, "DELAY", 0.0)
    (tmp_path / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    for i in range(30):
        (tmp_path / f"m{i}.py").write_text(WIRING)
    result = run_doctor(["scan", ".", "--no-cache", "--jobs", "1"], cwd=tmp_path, env={"CI": ""})
    assert "scanning" not in result.stderr and "\r" not in result.stderr, result.stderr
    assert "\r" not in result.stdout

    from otel_sqla_doctor.api import load_config, scan_paths

    import sys

    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    scan_paths([tmp_path], config=load_config([tmp_path]), use_cache=False, cwd=tmp_path)
    assert captured.getvalue() == ""
