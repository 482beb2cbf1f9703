"""What a scan keeps between runs, under `.otel_sqla_doctor_cache/` at the project root: each
file's outcome keyed by its content hash (`FileCache`), and the decided result of the last scan
keyed by every input (`load_result` / `save_result`). Both are keyed by the analyser's own
sources (`code_digest`), so a cache written by other rule code is never reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from otel_sqla_doctor import __version__
from otel_sqla_doctor.findings import Edit, FileError, Finding, Fix, Severity, Span
from otel_sqla_doctor.static.analysis import one_line

CACHE_DIR = ".otel_sqla_doctor_cache"
CACHE_FORMAT = 2  # 2: call summaries stored as JSON text


def project_key(fingerprint: str, pending: list, project_texts: dict) -> str:
    """A digest of every input of a scan."""
    digest = hashlib.blake2b(fingerprint.encode(), digest_size=16)
    for relative, _, data in sorted(pending, key=lambda item: item[0]):
        digest.update(relative.encode() + b"\0" + hashlib.blake2b(data, digest_size=16).digest())
    for relative, text in sorted(project_texts.items()):
        digest.update(relative.encode() + b"\0" + text.encode("utf-8", "replace"))
    return digest.hexdigest()


def base_key(fingerprint: str, project_texts: dict) -> str:
    """A digest of the inputs of a scan other than its Python files."""
    return project_key(fingerprint, [], project_texts)


def _finding_to_json(finding: Finding) -> dict:
    data = finding.to_dict()
    data["hint"] = finding.hint
    data["fix"] = None
    if finding.fix is not None:
        data["fix"] = {
            "description": finding.fix.description,
            "safe": finding.fix.safe,
            "summary": finding.fix.summary,
            "edits": [[e.span.line, e.span.column, e.span.end_line, e.span.end_column, e.replacement] for e in finding.fix.edits],
        }
    return data


def _finding_from_json(data: dict) -> Finding:
    fix = None
    if data["fix"] is not None:
        f = data["fix"]
        fix = Fix(f["description"], f["safe"], tuple(Edit(Span(*e[:4]), e[4]) for e in f["edits"]), f["summary"])
    return Finding(
        path=data["path"], line=data["line"], column=data["column"], code=data["code"], name=data["name"],
        severity=Severity(data["severity"]), message=data["message"], end_line=data["end_line"],
        end_column=data["end_column"], hint=data["hint"], fix=fix,
    )


def _result_path(root: Path, fingerprint: str) -> Path:
    return root / CACHE_DIR / f"result-{fingerprint}.json"


@dataclass
class Result:
    """The decided result of a scan, with what it was decided from (see `incremental`)."""

    key: str  # every input: the files' bytes, the project files, the settings, the tool
    findings: list
    errors: list
    base: Optional[str] = None  # the inputs every file shares: settings, tool, working directory, project files
    files: dict = field(default_factory=dict)  # relative path -> [content hash, round, digest of what was derived from it]
    pattern: Optional[str] = None  # the second round's importer pattern (latin-1), None when there was none


def load_result(root: Path, fingerprint: str) -> Optional[Result]:
    try:
        data = json.loads(_result_path(root, fingerprint).read_text(encoding="utf-8"))
        return Result(
            key=data["key"],
            findings=[_finding_from_json(f) for f in data["findings"]],
            errors=[FileError(**e) for e in data["errors"]],
            base=data.get("base"),
            files=data.get("files") or {},
            pattern=data.get("pattern"),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # absent or unreadable: decide again (and rewrite it)


def save_result(root: Path, fingerprint: str, result: Result) -> None:
    target = _result_path(root, fingerprint)
    try:
        target.parent.mkdir(exist_ok=True)
        ignore = target.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# Created by otel-sqla-doctor\n*\n", encoding="utf-8")
        payload = {
            "key": result.key,
            "findings": [_finding_to_json(f) for f in result.findings],
            "errors": [e.to_dict() for e in result.errors],
            "base": result.base,
            "files": result.files,
            "pattern": result.pattern,
        }
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(payload, separators=(",", ":")))
        os.replace(tmp, target)
    except OSError:
        pass


def code_digest() -> str:
    """A digest of the static analyser's own sources: a cache written by other rule code (a
    pre-commit hook moved to another commit of the same version, an editable install) is never
    reused. Reading the ~80 files costs a few milliseconds."""
    global _CODE_DIGEST
    if _CODE_DIGEST is None:
        package = Path(__file__).resolve().parent.parent
        digest = hashlib.blake2b(digest_size=8)
        for path in sorted(package.rglob("*.py")):
            if "live" in path.relative_to(package).parts[:1] or "spans" in path.relative_to(package).parts[:1]:
                continue  # the probe and span analysis do not shape scan results
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
        _CODE_DIGEST = digest.hexdigest()
    return _CODE_DIGEST


_CODE_DIGEST: Optional[str] = None


class FileCache:
    """Per-file outcomes keyed by content hash, in one JSON file under the project root.

    Written atomically (temporary file + rename), so two scans at once never leave a torn file; a
    corrupt or foreign cache is discarded with a notice, never fatal.
    """

    def __init__(self, root: Path, fingerprint: str) -> None:
        self.directory = root / CACHE_DIR
        self.path = self.directory / f"scan-{fingerprint}.json"
        self.entries: dict[str, list] = {}
        self.dirty = False
        self.notice: Optional[str] = None
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("files"), dict):
                    raise ValueError("unknown format")
                self.entries = data["files"]
            except (OSError, ValueError) as exc:
                self.notice = f"discarded an unreadable cache ({self.path.name}: {one_line(exc)})"
                print(f"doctor: notice: {self.notice}", file=sys.stderr)
                self.entries = {}
                self.dirty = True

    def get(self, relative: str, key: str) -> Optional[dict]:
        entry = self.entries.get(relative)
        if isinstance(entry, list) and len(entry) == 2 and entry[0] == key and isinstance(entry[1], dict):
            return entry[1]
        return None

    def put(self, relative: str, key: str, outcome: dict) -> None:
        self.entries[relative] = [key, outcome]
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            self.directory.mkdir(exist_ok=True)
            ignore = self.directory / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# Created by otel-sqla-doctor\n*\n", encoding="utf-8")
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                # json.dumps runs the C encoder; json.dump to a file falls back to pure Python.
                handle.write(json.dumps({"format": CACHE_FORMAT, "version": __version__, "files": self.entries}, separators=(",", ":")))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only checkout still scans; it just does not cache
