"""Applying fixes: only to scanned files, re-parsed before writing, written atomically.

Encoding, BOM, line endings and file mode are preserved. A file that changed on disk between the
scan and the write is left alone and reported. A fix whose result does not parse is dropped.
"""

from __future__ import annotations

import difflib
import io
import os
import re
import stat
import tempfile
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from otel_sqla_doctor.findings import Edit, Finding


@dataclass
class FixOutcome:
    changed: dict[str, str] = field(default_factory=dict)  # path -> new text
    originals: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def read_source(path: Path) -> tuple[bytes, str, str]:
    """(raw bytes, decoded text with line endings kept, encoding) honouring BOM and coding cookie."""
    data = path.read_bytes()
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    text = data.decode(encoding)
    if encoding == "utf-8-sig" and text.startswith("\ufeff"):
        text = text[1:]
    return data, text, encoding


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


def plan_fixes(findings: list[Finding], cwd: Path, *, unsafe: bool) -> FixOutcome:
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
            _, text, _ = read_source(full)
        except (OSError, UnicodeDecodeError, SyntaxError) as exc:
            outcome.problems.append((path, f"not fixed: cannot read ({exc})"))
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
    return outcome


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


def write_fixes(outcome: FixOutcome, cwd: Path, allowed_roots: list[Path]) -> None:
    """Write each changed file atomically, if it is still what we read and inside the scan."""
    for path, new_text in sorted(outcome.changed.items()):
        full = cwd / path
        real = full.resolve()
        if full.is_symlink() and not any(_inside(real, root.resolve()) for root in allowed_roots):
            outcome.problems.append((path, "not fixed: a symbolic link to a file outside the scanned paths"))
            del outcome.counts[path]
            continue
        try:
            data, text, encoding = read_source(real)
        except (OSError, UnicodeDecodeError, SyntaxError) as exc:
            outcome.problems.append((path, f"not fixed: cannot read ({exc})"))
            outcome.counts.pop(path, None)
            continue
        if text != outcome.originals[path]:
            outcome.problems.append((path, "not fixed: the file changed while the scan ran"))
            outcome.counts.pop(path, None)
            continue
        bom = data.startswith(b"\xef\xbb\xbf")
        payload = new_text.encode("utf-8" if encoding == "utf-8-sig" else encoding)
        if bom:
            payload = b"\xef\xbb\xbf" + payload
        mode = stat.S_IMODE(real.stat().st_mode)
        fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".doctor-tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.chmod(tmp, mode)
            os.replace(tmp, real)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            outcome.problems.append((path, f"not fixed: cannot write ({exc.strerror or exc})"))
            outcome.counts.pop(path, None)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False
