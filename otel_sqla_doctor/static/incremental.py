"""Reuse the decided findings when the files that changed change nothing the decision reads.

The findings of a scan are a function of: the settings and the tool (the fingerprint), the
working directory, the project files (pyproject, Dockerfile, ...), and for each Python file only
what the scan derives from its bytes:
- in which round it is analysed, if at all (`selection`: it names the stack, it matches the
  importer pattern of round two, its module is imported: round three);
- its outcome when analysed (facts and candidates: `analysis`), else the modules its import lines
  name (`projects.imports_by_regex`);
- whether it holds an `async def`, and the `module:app` strings it names (`projects.APP_STRING`).

The last decided result stores, per file, its content hash, its round and a digest of the rest.
When files changed since (a comment, a body edit that changes no fact), each changed file is
derived again on its own, assuming every other file derives what it did last time; when the
round and digest of each come out the same, so does every input of the decision, and the stored
findings are the findings. Anything else (a file added or removed, another project file, more
than MAX_CHANGED files) decides again from scratch.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Callable, Optional

from otel_sqla_doctor.static.cache import Result
from otel_sqla_doctor.static.projects import APP_STRING, imports_by_regex
from otel_sqla_doctor.static.selection import names_stack

MAX_CHANGED = 16  # more changed files than this: a full decision is about as fast
NOT_ANALYSED = 0


def content_key(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def derived_digest(relative: str, data: bytes, round_: int, outcome: Optional[dict]) -> str:
    """A digest of everything the decision reads from one file, besides its round."""
    derived = [
        outcome["digest"] if outcome is not None else None,
        b"async def" in data,
        sorted({m.decode() for m in APP_STRING.findall(data)}) if b":" in data else [],
        sorted(imports_by_regex([(relative, data)])) if round_ == NOT_ANALYSED else [],
    ]
    return hashlib.blake2b(json.dumps(derived, separators=(",", ":")).encode(), digest_size=16).hexdigest()


def file_records(pending: list, outcomes: dict[str, dict], rounds: dict[str, int]) -> dict[str, list]:
    """What the result stores per file: [content hash, round, derived digest]."""
    records = {}
    for relative, _, data in pending:
        round_ = rounds.get(relative, NOT_ANALYSED)
        outcome = outcomes.get(relative) if round_ != NOT_ANALYSED else None
        records[relative] = [content_key(data), round_, derived_digest(relative, data, round_, outcome)]
    return records


def pattern_text(pattern: Optional["re.Pattern[bytes]"]) -> Optional[str]:
    return None if pattern is None else pattern.pattern.decode("latin-1")


def reuse(
    previous: Result,
    pending: list,
    analyse: Callable[[str, object, bytes], dict],
) -> Optional[dict[str, list]]:
    """The file records of this scan when `previous`'s findings hold for it, else None.

    `previous` must have been decided from the same settings, tool, working directory and
    project files (its `base`). `analyse(relative, path, data)` analyses one changed file."""
    stored = previous.files
    if len(stored) != len(pending) or any(relative not in stored for relative, _, _ in pending):
        return None  # a file added, removed or renamed: the rounds and projects may differ
    changed = [(r, p, d, k) for r, p, d in pending if (k := content_key(d)) != stored[r][0]]
    if len(changed) > MAX_CHANGED:
        return None
    pattern = re.compile(previous.pattern.encode("latin-1")) if previous.pattern is not None else None
    records = dict(stored)
    for relative, path, data, key in changed:
        _, old_round, old_digest = stored[relative]
        # Every other file derives what it did, so the pattern of round two and the modules of
        # round three are the ones stored: only this file's own bytes can change its round.
        if names_stack(data):
            round_ = 1
        elif pattern is not None and pattern.search(data):
            round_ = 2
        else:
            round_ = 3 if old_round == 3 else NOT_ANALYSED  # round three goes by the file's path
        if round_ != old_round:
            return None
        outcome = None
        if round_ != NOT_ANALYSED:
            outcome = analyse(relative, path, data)
            if outcome.get("transient"):
                return None
        digest = derived_digest(relative, data, round_, outcome)
        if digest != old_digest:
            return None
        records[relative] = [key, round_, digest]
    return records
