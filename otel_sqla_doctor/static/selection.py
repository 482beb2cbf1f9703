"""Which files a scan reads and which it parses.

A file is parsed when it names the stack (INDEX_WORDS), then in two more rounds when it imports a
module the first round found to export something built from the stack, or is a project module
those files import. Everything else is read (hashed, searched with regular expressions) but never
parsed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional

from otel_sqla_doctor.config import Config
from otel_sqla_doctor.findings import FileError
from otel_sqla_doctor.static import discovery

# A file is parsed for the index when it mentions one of these (most files mention none).
INDEX_WORDS = (
    b"sqlalchemy",
    b"sqlmodel",
    b"opentelemetry",
    b"asyncpg",
    b"aiosqlite",
    b"aiomysql",
    b"asyncmy",
)
MAX_FILE_BYTES = 4_000_000
# `extend-exclude` hint shown for a file over MAX_FILE_BYTES.
EXCLUDE_HINT = 'add it to `extend-exclude` under [tool.otel-sqla-doctor] if it is generated or vendored'


def mentions_stack(path: Path, chunk: int = 1 << 20) -> Optional[str]:
    """The first INDEX_WORDS word a file mentions (any case), read in chunks; None when it names none.

    A file that cannot be read counts as mentioning the stack: better a failed run than a silent gap."""
    overlap = max(len(w) for w in INDEX_WORDS) - 1
    tail = b""
    try:
        with path.open("rb") as handle:
            while True:
                block = handle.read(chunk)
                if not block:
                    return None
                window = (tail + block).lower()
                for word in INDEX_WORDS:
                    if word in window:
                        return word.decode()
                tail = window[-overlap:]
    except OSError:
        return "sqlalchemy"


def imported_modules(outcomes: dict[str, dict]) -> set[str]:
    names: set[str] = set()
    for outcome in outcomes.values():
        for site in (outcome.get("facts") or {}).get("imports", ()):
            module = site["module"]
            names.add(module)
            names.update(f"{module}.{name}" for name in site["names"] if name != "*")
    return names


def module_names(relative: str) -> set[str]:
    """Every dotted suffix of a file's module path (`src/app/db.py`: app.db, db, src.app.db)."""
    parts = relative[:-3].split("/") if relative.endswith(".py") else relative.split("/")
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return {".".join(parts[i:]) for i in range(len(parts)) if parts[i:]}


_STACK_REF = re.compile(r'"ref", "(?:sqlalchemy|sqlmodel|opentelemetry|asyncpg|aiosqlite|aiomysql|asyncmy)\b')


def _exports_stack_values(facts: dict) -> bool:
    """The module defines something built from the stack (an engine, a session factory, a
    dependency yielding a session, an instrumentor): only its importers need indexing."""
    if any(call.get("line") for call in facts.get("calls", ())):
        return True
    if _STACK_REF.search(json.dumps(facts.get("symbols", {}))):
        return True
    for function in facts.get("functions", {}).values():
        if _STACK_REF.search(json.dumps([function.get("returns"), function.get("yields")])):
            return True
    return False


def importer_pattern(outcomes: dict[str, dict]) -> Optional["re.Pattern[bytes]"]:
    tails: set[str] = set()
    for outcome in outcomes.values():
        facts = outcome.get("facts")
        if not facts or not _exports_stack_values(facts):
            continue
        module = facts["module"]
        tails.add(module.rsplit(".", 1)[-1])
    tails.discard("__init__")
    if not tails:
        return None
    names = b"|".join(re.escape(t.encode()) for t in sorted(tails))
    return re.compile(rb"^[ \t]*(?:from[ \t]+[\w.]*\b(?:" + names + rb")\b|from[ \t]+[\w.]+[ \t]+import[^\n]*\b(?:" + names + rb")\b|import[ \t]+[^\n]*\b(?:" + names + rb")\b)", re.M)


def names_stack(data: bytes) -> bool:
    """Whether a file starts the index (first round): it names the stack, in its own case."""
    return any(w in data for w in INDEX_WORDS)


class ScanPaths:
    """Paths of one scan: relative to the project root (how files are keyed), and as displayed
    (relative to the working directory)."""

    def __init__(self, root: Path, cwd: Path) -> None:
        self.root = root
        self.cwd = cwd
        self._resolved_dirs: dict[Path, Path] = {}

    def display(self, relative: str) -> str:
        absolute = self.root / relative
        try:
            return absolute.relative_to(self.cwd).as_posix()
        except ValueError:
            return os.path.relpath(absolute, self.cwd).replace(os.sep, "/")

    def relative_path(self, path: Path) -> str:
        # Resolve the directory, not the file: a symlinked file keeps its own name. Directories
        # are resolved once each (realpath walks every component: a tenth of a warm scan).
        parent = self._resolved_dirs.get(path.parent)
        if parent is None:
            parent = self._resolved_dirs[path.parent] = path.parent.resolve()
        try:
            return (parent / path.name).relative_to(self.root).as_posix()
        except ValueError:
            return path.absolute().as_posix()

    def relative_of_display(self, display: str) -> str:
        return self.relative_path(self.cwd / display)

    def under_targets(self, display: str, targets: list[Path]) -> bool:
        path = (self.cwd / display).resolve()
        for target in targets:
            target = target.resolve()
            if path == target or target in path.parents:
                return True
        return False

    def excluded(self, relative: str, config: Config) -> bool:
        patterns = (*config.exclude, *config.extend_exclude)
        if not discovery.matches_any(relative, patterns):
            return False
        parts = relative.split("/")
        if discovery.PACKAGE_NAMES.isdisjoint(parts[:-1]):
            return True
        # `build`/`dist` inside a package is a sub-package: excluded only if it matches as itself.
        renamed = [
            "\0" if part in discovery.PACKAGE_NAMES and discovery.is_subpackage_dir(self.root.joinpath(*parts[: i + 1])) else part
            for i, part in enumerate(parts[:-1])
        ]
        return discovery.matches_any("/".join([*renamed, parts[-1]]), patterns)


def collect(targets: list[Path], config: Config, where: ScanPaths) -> tuple[list[Path], dict[str, str], list[FileError]]:
    """Python files under the targets, and the project files (deps, launchers) at the root."""
    python: dict[str, Path] = {}
    project_texts: dict[str, str] = {}
    errors: list[FileError] = []
    for target in targets:
        if not target.exists() and not target.is_symlink():
            errors.append(FileError(target.as_posix(), "no such file or directory"))
            continue
        explicit_file = target.is_file()
        for path in discovery.candidate_files(target):
            relative = where.relative_path(path)
            if not explicit_file and where.excluded(relative, config):
                continue
            if path.suffix == ".py":
                if path.is_symlink() and not path.exists():
                    errors.append(FileError(where.display(relative), "dangling symbolic link"))
                    continue
                if not path.is_file():
                    continue
                python.setdefault(relative, path)
    # Dependency and launcher files are read from the whole project, whatever was scanned.
    for path in discovery.candidate_files(where.root):
        relative = where.relative_path(path)
        if discovery.is_project_file(relative) and not where.excluded(relative, config):
            try:
                if path.is_file() and path.stat().st_size <= discovery.MAX_PROJECT_FILE_BYTES:
                    project_texts[relative] = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
    return [python[k] for k in sorted(python)], project_texts, errors
