"""Issue 16, "Data safety": nothing a user owns is ever damaged by `--fix`, `-o`, `--html` or
`--save-spans`. Every test runs the real CLI (`python -m otel_sqla_doctor`) on real files and
asserts what the user sees: the bytes and metadata of their files, one clear line, the exit code.

Items:
1. `--fix` edits exactly the bytes that were scanned; a file saved while the scan ran is left as
   the user saved it, with one line "changed during the scan, run again" and a non-zero exit.
2. `--fix` keeps owner, group, mode, inode and hard links; a read-only file is not rewritten; a
   permission problem is a per-file line, never `internal error`.
3. Output files: devices, FIFOs, our own stdout and symbolic links are written through, never
   replaced; an input of the run is never overwritten; `doctor trace` checks its output paths
   before the command runs; no temporary file is left behind.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cli_support import run_doctor

BAD_WIRING = (
    "from sqlalchemy.ext.asyncio import create_async_engine\n"
    "from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor\n"
    "engine = create_async_engine('sqlite+aiosqlite://')\n"
    "SQLAlchemyInstrumentor().instrument(engine=engine)\n"
)
FIXED_WIRING = BAD_WIRING.replace("instrument(engine=engine)", "instrument(engine=engine.sync_engine)")
# What a user saves while the scan runs: a DSN line above the call, so every later line moves.
EDITED_WIRING = BAD_WIRING.replace(
    "SQLAlchemyInstrumentor()", "DSN = 'postgresql+asyncpg://app:secret@db/shop'\nSQLAlchemyInstrumentor()"
)
SCAN = ["scan", ".", "--select", "OSD101", "--no-cache"]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NOBODY = 65534


def _project(root: Path, **files: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("[tool.otel-sqla-doctor]\nroot = true\n")
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def _no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr + result.stdout, result.stderr


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp" in p.name or "doctor-backup" in p.name or "doctor-tmp" in p.name)


# -- item 1: the exact bytes that were scanned ---------------------------------------------------
# A concurrent editor at the worst moment, deterministically: this sitecustomize (on PYTHONPATH of
# the real doctor process) saves EDITED_WIRING over the file right after the doctor's Nth read.
EDITOR_HOOK = """
import os, pathlib
_target, _after = os.path.realpath(os.environ["EDIT_TARGET"]), int(os.environ["EDIT_AFTER_READ"])
_reads = 0
_read_bytes = pathlib.Path.read_bytes
def read_bytes(self):
    global _reads
    data = _read_bytes(self)
    if os.path.realpath(self) == _target:
        _reads += 1
        if _reads == _after:
            with open(_target, "w") as handle:  # an editor saving in place
                handle.write(os.environ["EDIT_CONTENT"])
            open(os.environ["EDIT_MARKER"], "w").close()
    return data
pathlib.Path.read_bytes = read_bytes
"""


@pytest.mark.parametrize("after_read", [1, 2, 3], ids=["after-the-scan-read-it", "after-it-was-parsed", "after-fixes-were-planned"])
def test_a_file_saved_during_the_scan_is_left_as_the_user_saved_it(tmp_path, after_read):
    root = _project(tmp_path / "p", **{"app.py": BAD_WIRING, "other.py": BAD_WIRING})
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(EDITOR_HOOK)
    marker = tmp_path / "edited"
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])),
        "EDIT_TARGET": str(root / "app.py"),
        "EDIT_AFTER_READ": str(after_read),
        "EDIT_CONTENT": EDITED_WIRING,
        "EDIT_MARKER": str(marker),
    }

    result = run_doctor([*SCAN, "--fix"], cwd=root, env=env)

    assert marker.exists(), "the simulated editor never ran: the doctor no longer reads files this way"
    _no_traceback(result)
    assert (root / "app.py").read_text() == EDITED_WIRING, "the user's save was overwritten or corrupted"
    assert (root / "other.py").read_text() == FIXED_WIRING, "the unchanged file is still fixed"
    shown = result.stdout + result.stderr
    assert shown.count("changed during the scan, run again") == 1, shown
    assert [line for line in shown.splitlines() if "changed during the scan" in line][0].count("app.py") == 1
    assert result.returncode == 1
    assert _leftovers(root) == []


def test_diff_of_a_file_saved_during_the_scan_shows_nothing_for_it(tmp_path):
    root = _project(tmp_path / "p", **{"app.py": BAD_WIRING})
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(EDITOR_HOOK)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])), "EDIT_TARGET": str(root / "app.py"), "EDIT_AFTER_READ": "2",
           "EDIT_CONTENT": EDITED_WIRING, "EDIT_MARKER": str(tmp_path / "edited")}

    result = run_doctor([*SCAN, "--diff"], cwd=root, env=env)

    _no_traceback(result)
    assert "secret@db" not in result.stdout, "a diff planned on the old positions was printed"
    assert result.stdout == ""
    assert "changed during the scan, run again" in result.stderr
    assert result.returncode == 1


# -- item 2: owner, group, mode, links, read-only, permissions ----------------------------------
def test_fix_keeps_owner_group_mode_inode_and_hard_links(tmp_path):
    root = _project(tmp_path / "p", **{"app.py": BAD_WIRING})
    target = root / "app.py"
    os.link(target, tmp_path / "hard-link.py")  # outside the scanned tree: only the inode is shared
    target.chmod(0o640)
    if IS_ROOT:
        os.chown(target, NOBODY, NOBODY)
    before = target.stat()

    result = run_doctor([*SCAN, "--fix"], cwd=root)

    _no_traceback(result)
    assert result.returncode == 0, result.stdout + result.stderr
    after = target.stat()
    assert target.read_text() == FIXED_WIRING
    assert (tmp_path / "hard-link.py").read_text() == FIXED_WIRING, "the hard link was split"
    assert (after.st_ino, after.st_nlink) == (before.st_ino, 2)
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert _leftovers(root) == [], "the verified backup copy was left behind"


def test_fix_never_rewrites_a_read_only_file(tmp_path):
    root = _project(tmp_path / "p", **{"app.py": BAD_WIRING, "writable.py": BAD_WIRING})
    (root / "app.py").chmod(0o444)
    before = (root / "app.py").stat()

    result = run_doctor([*SCAN, "--fix"], cwd=root)

    _no_traceback(result)
    after = (root / "app.py").stat()
    assert (root / "app.py").read_text() == BAD_WIRING
    assert (after.st_ino, after.st_mtime_ns, stat.S_IMODE(after.st_mode)) == (before.st_ino, before.st_mtime_ns, 0o444)
    assert (root / "writable.py").read_text() == FIXED_WIRING
    lines = [line for line in result.stderr.splitlines() if "app.py" in line]
    assert len(lines) == 1 and "read-only" in lines[0], result.stderr
    assert result.returncode == 1


def _without_root_powers():
    """Run the child as an ordinary user would: root keeps uid 0 but loses the capabilities that
    bypass file permissions (DAC override, read search, fowner) before it executes."""
    if not IS_ROOT:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 24, 1, 2, 3

    def drop() -> None:
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                os._exit(99)

    return drop


def test_fix_in_a_directory_the_user_cannot_write_is_a_per_file_message(tmp_path):
    root = _project(tmp_path / "p")
    locked = root / "locked"
    locked.mkdir()
    (locked / "mine.py").write_text(BAD_WIRING)  # writable by the user: fixed in place
    if IS_ROOT:
        (locked / "theirs.py").write_text(BAD_WIRING)  # another user's file: not writable
        os.chown(locked / "theirs.py", NOBODY, NOBODY)
        os.chown(locked, NOBODY, NOBODY)
    else:
        locked.chmod(0o555)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "otel_sqla_doctor", *SCAN, "--fix"],
            cwd=root, capture_output=True, text=True, timeout=120, preexec_fn=_without_root_powers(),
        )
    finally:
        locked.chmod(0o755)
    assert result.returncode != 99, "could not drop root's capabilities"

    _no_traceback(result)
    assert (locked / "mine.py").read_text() == FIXED_WIRING
    assert not [p for p in locked.iterdir() if p.name not in ("mine.py", "theirs.py")]
    if IS_ROOT:
        assert (locked / "theirs.py").read_text() == BAD_WIRING
        lines = [line for line in result.stderr.splitlines() if "theirs.py" in line]
        assert len(lines) == 1 and "permission denied" in lines[0], result.stderr
        assert result.returncode == 1
    else:
        assert result.returncode == 0, result.stderr


# -- item 3: output files ------------------------------------------------------------------------
def _report_project(tmp_path: Path) -> Path:
    return _project(tmp_path / "p", **{"app.py": BAD_WIRING})


def _char_device(path: Path, minor: int) -> None:
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))  # 1,3 is null; 1,7 is full
    except PermissionError:
        pytest.skip("creating device nodes needs root with CAP_MKNOD")


def test_output_to_a_character_device_writes_through_it(tmp_path):
    root = _report_project(tmp_path)
    null, full = tmp_path / "null", tmp_path / "full"
    _char_device(null, 3)
    _char_device(full, 7)

    to_null = run_doctor([*SCAN, "-o", str(null)], cwd=root)
    to_full = run_doctor([*SCAN, "-f", "json", "-o", str(full)], cwd=root)

    for node in (null, full):
        assert stat.S_ISCHR(os.lstat(node).st_mode), f"{node.name} was replaced by a regular file"
    _no_traceback(to_null)
    assert to_null.returncode == 1 and to_null.stdout == ""  # the report went to the device
    _no_traceback(to_full)
    assert to_full.returncode == 2
    assert to_full.stderr.strip().splitlines() == [f"doctor: error: cannot write the report to {full}: No space left on device"]
    assert _leftovers(tmp_path) == []


def test_output_to_a_fifo_writes_through_it(tmp_path):
    root = _report_project(tmp_path)
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    try:
        result = run_doctor([*SCAN, "-f", "json", "-o", str(fifo)], cwd=root, timeout=60)
    finally:
        if not stat.S_ISFIFO(os.lstat(fifo).st_mode):
            reader.kill()  # the doctor replaced the FIFO: nobody will ever write to the reader
        received, _ = reader.communicate(timeout=30)

    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a regular file"
    _no_traceback(result)
    assert result.returncode == 1
    assert [f["code"] for f in json.loads(received)["findings"]] == ["OSD101"]


@pytest.mark.parametrize("name", ["a link to /proc/self/fd/1 (as /dev/stdout is)", "/dev/fd/1"])
def test_output_to_our_own_stdout_writes_to_stdout(tmp_path, name):
    root = _report_project(tmp_path)
    if name.startswith("a link"):
        target = tmp_path / "stdout"
        target.symlink_to("/proc/self/fd/1")
    else:
        target = Path(name)

    result = run_doctor([*SCAN, "-f", "json", "-o", str(target)], cwd=root)

    _no_traceback(result)
    assert result.returncode == 1, result.stderr
    assert [f["code"] for f in json.loads(result.stdout)["findings"]] == ["OSD101"]
    if name.startswith("a link"):
        assert os.readlink(target) == "/proc/self/fd/1", "the link was replaced"
    assert _leftovers(tmp_path) == []


def test_output_through_a_symlink_writes_the_target_and_keeps_the_link(tmp_path):
    root = _report_project(tmp_path)
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "old.json").write_text("{}")
    (reports / "old.json").chmod(0o600)  # a private report stays private
    (tmp_path / "latest.json").symlink_to(reports / "old.json")
    (tmp_path / "dangling.json").symlink_to(reports / "new.json")

    first = run_doctor([*SCAN, "-f", "json", "-o", str(tmp_path / "latest.json")], cwd=root)
    second = run_doctor([*SCAN, "-f", "json", "-o", str(tmp_path / "dangling.json")], cwd=root)

    for result in (first, second):
        _no_traceback(result)
        assert result.returncode == 1, result.stderr
    assert (tmp_path / "latest.json").is_symlink() and (tmp_path / "dangling.json").is_symlink()
    for name in ("old.json", "new.json"):
        assert json.loads((reports / name).read_text())["findings"][0]["code"] == "OSD101"
    assert stat.S_IMODE((reports / "old.json").stat().st_mode) == 0o600
    assert _leftovers(reports) == [] and _leftovers(tmp_path) == []


@pytest.mark.parametrize("args", [["."], ["app.py"]], ids=["directory", "file"])
def test_output_never_overwrites_a_scanned_source_file(tmp_path, args):
    root = _report_project(tmp_path)
    os.link(root / "app.py", root / "report.txt")  # the same file under another name

    for output in ("app.py", "report.txt"):
        result = run_doctor(["scan", *args, "--select", "OSD101", "--no-cache", "-o", output], cwd=root)
        _no_traceback(result)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            f"doctor: error: refusing to write the report to {output}: it is an input of this run (app.py); choose another file"
        ]
    assert (root / "app.py").read_text() == BAD_WIRING


def test_span_outputs_never_overwrite_a_span_file_being_read(tmp_path):
    spans = tmp_path / "spans.jsonl"
    shutil.copy(Path(__file__).resolve().parent.parent / "spans" / "fixtures" / "n_plus_one.otlp.jsonl", spans)
    original = spans.read_bytes()

    for option in ("-o", "--html"):
        result = run_doctor(["spans", str(spans), option, str(spans)], cwd=tmp_path)
        _no_traceback(result)
        assert result.returncode == 2
        assert "it is an input of this run" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert spans.read_bytes() == original


@pytest.mark.parametrize(
    "option,path",
    [("-o", "missing/report.txt"), ("--html", "missing/page.html"), ("--save-spans", "missing/spans.jsonl"), ("-o", "a-directory")],
)
def test_trace_checks_its_output_paths_before_running_the_command(tmp_path, option, path):
    (tmp_path / "a-directory").mkdir()
    ran = tmp_path / "the-command-ran"

    result = run_doctor(["trace", option, path, "--", sys.executable, "-c", f"open({str(ran)!r}, 'w')"], cwd=tmp_path)

    _no_traceback(result)
    assert result.returncode == 2
    assert not ran.exists(), "the command ran although its results could not be saved"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("doctor: error:") and path in lines[0], result.stderr


def test_save_spans_through_a_symlink_writes_the_target(tmp_path):
    target = tmp_path / "kept" / "spans.jsonl"
    target.parent.mkdir()
    (tmp_path / "spans.jsonl").symlink_to(target)

    result = run_doctor(["trace", "--save-spans", "spans.jsonl", "--", sys.executable, "-c", "pass"], cwd=tmp_path)

    _no_traceback(result)
    assert (tmp_path / "spans.jsonl").is_symlink()
    assert target.is_file()
    assert _leftovers(tmp_path) == [] and _leftovers(target.parent) == []
