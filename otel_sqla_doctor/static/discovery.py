"""Which files a scan reads: Python sources, and the dependency/launcher files some rules need."""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import subprocess
from pathlib import Path
from typing import Iterable, Optional

SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".env",
        "env",
        ".tox",
        ".nox",
        "node_modules",
        "build",
        "dist",
        "site-packages",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".otel_sqla_doctor_cache",
        ".eggs",
    }
)

# Skipped names that are also ordinary package names: `build/` inside a package (a folder whose
# parent holds an `__init__.py`) is a sub-package, never an artefact folder.
PACKAGE_NAMES = frozenset({"build", "dist", "env"})


def is_subpackage_dir(directory: Path) -> bool:
    return directory.name in PACKAGE_NAMES and (directory.parent / "__init__.py").is_file()


def _skipped_dir(directory: Path) -> bool:
    return directory.name in SKIPPED_DIRS and not is_subpackage_dir(directory)


# Files that declare dependencies (OSD107) or start the service (the `opentelemetry-instrument`
# launcher, OSD104/OSD106/OSD202).
PROJECT_FILE_PATTERNS = (
    "pyproject.toml",
    "requirements*.txt",
    "requirements/*.txt",
    "requirements*.in",
    "requirements/*.in",
    "uv.lock",
    "poetry.lock",
    "pdm.lock",
    "Dockerfile*",
    "*.Dockerfile",
    "Procfile",
    "docker-compose*.yml",
    "docker-compose*.yaml",
    "compose*.yml",
    "compose*.yaml",
    "*.sh",
    "Makefile",
    "supervisord.conf",
    "fly.toml",
    "app.yaml",
)
MAX_PROJECT_FILE_BYTES = 2_000_000


def _is_venv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file()


def _git_files(root: Path) -> Optional[list[Path]]:
    """Tracked plus untracked-not-ignored files, when `root` is inside a git work tree."""
    try:
        proc = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    files = []
    for raw in proc.stdout.split(b"\0"):
        if raw:
            files.append(root / os.fsdecode(raw))
    return files


def _git_ignored(path: Path) -> bool:
    try:
        proc = subprocess.run(["git", "check-ignore", "-q", "."], cwd=path, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def _walk(root: Path) -> Iterable[Path]:
    seen_dirs: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        try:
            stat = here.stat()
            key = (stat.st_dev, stat.st_ino)
        except OSError:
            dirnames[:] = []
            continue
        if key in seen_dirs:  # a symlink loop
            dirnames[:] = []
            continue
        seen_dirs.add(key)
        dirnames[:] = sorted(
            d for d in dirnames if not _skipped_dir(here / d) and not d.endswith(".egg-info") and not _is_venv(here / d)
        )
        for name in sorted(filenames):
            yield here / name


def candidate_files(target: Path) -> list[Path]:
    """Every file under `target` (git's view inside a work tree, else a filtered walk)."""
    if target.is_file():
        return [target]
    # A folder git ignores (a vendored corpus, a build output) was named explicitly: walk it.
    files = None if _git_ignored(target) else _git_files(target)
    if files is None:
        return list(_walk(target))
    # git lists files inside skipped directories too when they are tracked (vendored code).
    skipped = functools.lru_cache(maxsize=None)(_skipped_dir)
    kept = []
    for f in files:
        parts = f.relative_to(target).parts[:-1]
        if any(part in SKIPPED_DIRS for part in parts):
            directory = target
            if any(skipped(directory := directory / part) for part in parts):
                continue
        kept.append(f)
    return kept


def matches_any(relative_posix: str, patterns: Iterable[str]) -> bool:
    """Glob match in the style of ruff's exclude: `pattern` against the path or any parent, and a
    bare name (`migrations`) against any component of the path."""
    whole, component = _compiled(tuple(patterns))
    if whole is not None and whole.match(relative_posix):
        return True
    return component is not None and any(component.match(part) for part in relative_posix.split("/"))


@functools.lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[Optional["re.Pattern[str]"], Optional["re.Pattern[str]"]]:
    # One regex per pattern set instead of three fnmatch calls per pattern and file (a warm scan
    # of a large tree spent a fifth of its time here). fnmatch.translate keeps fnmatch semantics.
    whole: list[str] = []
    component: list[str] = []
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        whole += [fnmatch.translate(pattern), fnmatch.translate(pattern + "/*")]
        if "/" not in pattern:
            component.append(fnmatch.translate(pattern))
    join = lambda items: re.compile("|".join(f"(?:{item})" for item in items)) if items else None  # noqa: E731
    return join(whole), join(component)


def is_project_file(relative_posix: str) -> bool:
    name = relative_posix.rsplit("/", 1)[-1]
    for pattern in PROJECT_FILE_PATTERNS:
        if "/" in pattern:
            if fnmatch.fnmatch(relative_posix, "*" + pattern) or fnmatch.fnmatch(relative_posix, pattern):
                return True
        elif fnmatch.fnmatch(name, pattern):
            return True
    return False


def module_name(path: Path, root: Path) -> tuple[str, bool]:
    """The dotted module name of a file (by its package chain), and whether it is a package.

    Folders without `__init__.py` between the file and a regular package above it are namespace
    sub-packages (PEP 420): `pkg/features/build/db/x.py` is `pkg.features.build.db.x`.
    """
    is_package = path.name == "__init__.py"
    parts = [] if is_package else [path.stem]
    ancestors = []
    directory = path.parent
    while directory != directory.parent:
        ancestors.append(directory)
        if directory == root:
            break
        directory = directory.parent
    regular = next((i for i, d in enumerate(ancestors) if (d / "__init__.py").is_file()), None)
    if regular is not None and all(d.name.isidentifier() for d in ancestors[:regular]):
        for i, directory in enumerate(ancestors):
            if i > regular and not (directory / "__init__.py").is_file():
                break
            parts.append(directory.name)
    if not parts:  # a bare `__init__.py` at the root
        parts = [path.parent.name]
    return ".".join(reversed(parts)), is_package
