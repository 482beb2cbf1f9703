"""The one atomic writer (`report.atomic.write_atomically`, under `write_report`): the target is
replaced whole or left as it was, and no temporary file stays behind, whatever fails."""

from __future__ import annotations

import os
import stat

import pytest

from otel_sqla_doctor.errors import UsageError
from otel_sqla_doctor.report import atomic


def _listing(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_writes_a_new_file_with_an_ordinary_mode(tmp_path):
    target = tmp_path / "out.json"
    atomic.write_atomically(target, lambda handle: handle.write(b"{}"))
    assert target.read_bytes() == b"{}"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert _listing(tmp_path) == ["out.json"]


def test_replaces_a_file_and_keeps_the_given_mode(tmp_path):
    target = tmp_path / "cache.json"
    target.write_bytes(b"old")
    atomic.write_atomically(target, lambda handle: handle.write(b"new"), mode=0o600)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert _listing(tmp_path) == ["cache.json"]


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()], ids=["disk-full", "ctrl-c"])
def test_a_failure_while_writing_leaves_the_old_file_and_no_temporary(tmp_path, failure):
    target = tmp_path / "report.sarif"
    target.write_bytes(b"old")

    def produce(handle):
        handle.write(b"half of it")
        raise failure

    with pytest.raises(type(failure)):
        atomic.write_atomically(target, produce)
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["report.sarif"]


def test_a_failing_rename_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "new.txt"

    def refuse(src, dst):
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(OSError):
        atomic.write_atomically(target, lambda handle: handle.write(b"x"))
    assert _listing(tmp_path) == []


def test_no_temporary_when_the_directory_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic.write_atomically(tmp_path / "missing" / "x.txt", lambda handle: handle.write(b"x"))
    assert _listing(tmp_path) == []


def test_write_report_goes_through_it_and_cleans_up(tmp_path):
    target = tmp_path / "report.txt"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o640)
    atomic.write_report(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # an existing report keeps its mode

    def produce(handle):
        raise OSError(28, "No space left on device")

    with pytest.raises(UsageError, match="No space left on device"):
        atomic.write_output(target, produce)
    assert target.read_text(encoding="utf-8") == "new"
    assert _listing(tmp_path) == ["report.txt"]
