"""Applying fixes: against the exact bytes the scan read, in place, to scanned files only.

* Planned from the bytes whose digest the scan recorded (`ScanResult.digests`). A file that
  differs (an editor saved it while the scan ran) is left alone: "changed during the scan, run
  again". Just before writing, the bytes are read once more through the handle that is written.
* Written in place after a verified backup copy, so owner, group, mode, ACLs and hard links stay
  as they are; a failed write puts the original bytes back. A read-only file (no write bit) is
  never rewritten. Every problem is one line for that file, never a crash of the whole run.
* Encoding, BOM and line endings are preserved. A fix whose result does not parse is dropped.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import io
import os
import re
import stat
import tempfile
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Optional

from otel_sqla_doctor.findings import Edit, Finding

CHANGED = "not fixed: changed during the scan, run again"


@dataclass
class FixOutcome:
    changed: dict[str, str] = field(default_factory=dict)  # path -> new text
    originals: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    # path -> the exact bytes the fixes were planned against (what may be overwritten).
    scanned: dict[str, bytes] = field(default_factory=dict)


def source_digest(data: bytes) -> str:
    """The scan's content key of a file (engine.py keys its cache and `ScanResult.digests` so)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def decode_source(data: bytes) -> tuple[str, str]:
    """(decoded text with line endings kept, encoding) honouring BOM and coding cookie."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    text = data.decode(encoding)
    if encoding == "utf-8-sig" and text.startswith("\ufeff"):
        text = text[1:]
    return text, encoding


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _offsets(text: str) -> list[int]:
    # Only the breaks Python's tokenizer knows: str.splitlines also splits on \x0c, \u2028, ...
    starts = [0]
    for match in _LINE_BREAK.finditer(text):
        starts.append(match.end())
    return starts


def apply_edits(text: str, edits: Iterable[Edit]) -> tuple[str, int]:
    """Apply non-overlapping edits (later ones first); overlapping edits are skipped."""
    starts = _offsets(text)
    spans = []
    for edit in edits:
        s, e = edit.span, edit
        try:
            begin = starts[s.line - 1] + s.column - 1
            end = starts[s.end_line - 1] + s.end_column - 1
        except IndexError:
            continue
        spans.append((begin, end, e.replacement))
    spans.sort(key=lambda item: (item[0], item[1]))
    chosen = []
    last_end = -1
    for begin, end, replacement in spans:
        if begin < last_end:
            continue  # overlaps an earlier fix: the next --fix run will get it
        chosen.append((begin, end, replacement))
        last_end = end
    for begin, end, replacement in reversed(chosen):
        text = text[:begin] + replacement + text[end:]
    return text, len(chosen)


def plan_fixes(findings: list[Finding], cwd: Path, *, unsafe: bool, digests: Optional[Mapping[str, str]] = None) -> FixOutcome:
    """The fixed text of each file, computed from the bytes the scan read.

    `digests` (path -> `source_digest` of the scanned bytes, as in `ScanResult.digests`): a file
    whose bytes differ now is reported as changed and not planned. Without it (library use on a
    tree nobody edits), the current bytes are trusted; `write_fixes` still refuses to overwrite
    anything but the bytes that were planned against.
    """
    import libcst as cst

    outcome = FixOutcome()
    by_path: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.fix is None or not finding.fix.edits:
            continue
        if not finding.fix.safe and not unsafe:
            continue
        by_path.setdefault(finding.path, []).append(finding)
    for path, group in sorted(by_path.items()):
        full = cwd / path
        try:
            data = full.read_bytes()
        except FileNotFoundError:  # deleted or renamed since the scan read it
            outcome.problems.append((path, CHANGED))
            continue
        except OSError as exc:
            outcome.problems.append((path, f"not fixed: cannot read ({exc.strerror or exc})"))
            continue
        if digests is not None and digests.get(path) != source_digest(data):
            outcome.problems.append((path, CHANGED))
            continue
        try:
            text, _ = decode_source(data)
        except (UnicodeDecodeError, SyntaxError, LookupError) as exc:
            outcome.problems.append((path, f"not fixed: cannot decode ({exc})"))
            continue
        edits = [edit for finding in group for edit in finding.fix.edits]
        new_text, count = apply_edits(text, edits)
        if new_text == text:
            continue
        try:
            cst.parse_module(new_text)
        except Exception:
            outcome.problems.append((path, "not fixed: the fixed code would not parse (please report this)"))
            continue
        outcome.originals[path] = text
        outcome.changed[path] = new_text
        outcome.counts[path] = count
        outcome.scanned[path] = data
    return outcome


def take_changed(result) -> list[tuple[str, str]]:
    """The files the scan itself saw change (its per-file error), as fix problems: with --fix or
    --diff they are one "not fixed" line each, also when a rescan after the fixes reads them anew."""
    from otel_sqla_doctor.static.engine import CHANGED_DURING_SCAN

    changed = [e for e in result.errors if e.message == CHANGED_DURING_SCAN]
    result.errors = [e for e in result.errors if e.message != CHANGED_DURING_SCAN]
    return [(e.path, CHANGED) for e in changed]


def unified_diff(outcome: FixOutcome) -> str:
    chunks = []
    for path, new_text in sorted(outcome.changed.items()):
        chunks.extend(
            difflib.unified_diff(
                outcome.originals[path].splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                fromfile=f"a/{path}",
                tofile=f"b/{path}",
            )
        )
    return "".join(chunks)


class _NotFixed(Exception):
    """One file's reason for being left alone (a line for the user, not a crash)."""


def write_fixes(outcome: FixOutcome, cwd: Path, allowed_roots: list[Path]) -> None:
    """Write each changed file in place, if it is still the planned bytes and inside the scan."""
    for path, new_text in sorted(outcome.changed.items()):
        full = cwd / path
        try:
            real = full.resolve()
            if full.is_symlink() and not any(_inside(real, root.resolve()) for root in allowed_roots):
                raise _NotFixed("not fixed: a symbolic link to a file outside the scanned paths")
            original = outcome.scanned.get(path)
            if original is None:  # planned by an older caller: what it decoded is what it saw
                original = full.read_bytes()
                if decode_source(original)[0] != outcome.originals[path]:
                    raise _NotFixed(CHANGED)
            _, encoding = decode_source(original)
            payload = new_text.encode("utf-8" if encoding == "utf-8-sig" else encoding)
            if original.startswith(b"\xef\xbb\xbf"):
                payload = b"\xef\xbb\xbf" + payload
            _write_in_place(real, original, payload)
        except _NotFixed as reason:
            outcome.problems.append((path, str(reason)))
            outcome.counts.pop(path, None)
        except FileNotFoundError:  # deleted or renamed since the scan read it
            outcome.problems.append((path, CHANGED))
            outcome.counts.pop(path, None)
        except (OSError, UnicodeError, SyntaxError, LookupError) as exc:
            outcome.problems.append((path, f"not fixed: {_os_reason(exc)}"))
            outcome.counts.pop(path, None)


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied (you cannot write this file)"
    if isinstance(exc, OSError):
        return f"cannot write ({exc.strerror or exc})"
    return f"cannot decode ({exc})"


def _write_in_place(real: Path, original: bytes, payload: bytes) -> None:
    """Overwrite `real` (still exactly `original`) with `payload`, keeping its inode.

    Keeping the inode keeps owner, group, mode, ACLs, extended attributes and every hard link.
    Before the first byte is written, a copy of the original goes next to the file (or to the
    temporary directory when that directory is not writable) and is read back; it is removed once
    the new bytes are on disk, and named in the message when the original cannot be put back.
    """
    before = os.stat(real)
    if not stat.S_ISREG(before.st_mode):
        raise _NotFixed("not fixed: not a regular file")
    if not before.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise _NotFixed(f"not fixed: the file is read-only (mode {stat.S_IMODE(before.st_mode):04o}); make it writable to let --fix change it")
    flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(real, flags)
    except PermissionError:
        raise _NotFixed("not fixed: permission denied (you cannot write this file)") from None
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino) or not stat.S_ISREG(opened.st_mode):
            raise _NotFixed(CHANGED)
        if _read_all(fd) != original:
            raise _NotFixed(CHANGED)
        backup = _backup(real, original)
        if backup is None:
            raise _NotFixed("not fixed: no backup copy of the original could be made (no writable directory); the file is unchanged")
        try:
            _overwrite(fd, payload)
        except BaseException as exc:  # disk full, Ctrl-C: the original goes back first
            try:
                _overwrite(fd, original)
            except OSError:
                if isinstance(exc, OSError):
                    raise _NotFixed(f"not fixed: {_os_reason(exc)}, and the original could not be put back: it is saved in {backup}") from None
                raise exc from None
            _remove(backup)
            if isinstance(exc, OSError):
                raise _NotFixed(f"not fixed: {_os_reason(exc)}; the file is unchanged") from None
            raise
        _remove(backup)
    finally:
        os.close(fd)


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _overwrite(fd: int, data: bytes) -> None:
    os.lseek(fd, 0, os.SEEK_SET)
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.ftruncate(fd, len(data))
    os.fsync(fd)


def _backup(real: Path, original: bytes) -> Optional[Path]:
    """A verified copy of the original bytes (private, mode 0600), or None when none can be made."""
    for directory in (real.parent, Path(tempfile.gettempdir())):
        try:
            fd, name = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".doctor-backup", dir=directory)
        except OSError:
            continue
        try:
            _overwrite(fd, original)
            if _read_all(fd) != original:
                raise OSError("the backup copy did not read back equal")
        except OSError:
            os.close(fd)
            _remove(Path(name))
            continue
        os.close(fd)
        return Path(name)
    return None


def _remove(path: Optional[Path]) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False
