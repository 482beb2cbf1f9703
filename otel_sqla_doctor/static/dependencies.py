"""Dependency declarations and launchers, read from the project's non-Python files.

`index.files.texts` holds pyproject.toml, requirements*.txt, lock files, Dockerfiles, Procfiles,
compose files and scripts. This module turns them into `Dependency` records (which package, which
specifier or pinned version, on which line) and finds the `opentelemetry-instrument` launcher, for
the rules that judge versions (OSD107) or what a launcher enables (OSD105).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Iterator, Optional

@dataclass
class Dependency:
    path: str
    line: int
    column: int
    end_column: int
    name: str  # normalised (PEP 503)
    text: str  # as written, for messages
    specifier: str = ""  # PEP 440 specifier set ("" = any)
    pinned: Optional[str] = None  # an exact version (a lock entry or `==X`)
    locked: bool = False  # comes from a lock file
    extras: frozenset = frozenset()
    constraints_unknown: bool = False  # the file applies constraints the doctor cannot read
    overrides: list = field(default_factory=list)  # uv constraint/override specifiers of the same project


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_LOCK_NAMES = ("uv.lock", "poetry.lock", "pdm.lock")


def all_dependencies(texts: dict[str, str], wanted: Optional[set] = None) -> Iterator[Dependency]:
    """Every declaration or pin of the `wanted` packages (normalised names; None: all)."""
    for path in sorted(texts):
        name = PurePosixPath(path).name
        try:
            if name == "pyproject.toml":
                found = list(_pyproject(path, texts[path]))
            elif name in _LOCK_NAMES:
                found = list(_lock(path, texts[path]))
            elif is_requirements_file(path):
                found = list(_requirements(path, texts[path]))
            else:
                continue
        except Exception:  # a malformed file is someone else's problem; never stop the scan
            continue
        yield from (dep for dep in found if wanted is None or dep.name in wanted)


def is_requirements_file(path: str) -> bool:
    """requirements*.txt, requirements/*.txt, and pip-tools inputs (`requirements/_base.in`)."""
    pure = PurePosixPath(path)
    return pure.suffix in (".txt", ".in") and (pure.name.startswith("requirements") or pure.parent.name == "requirements")


def is_dependency_file(path: str) -> bool:
    return PurePosixPath(path).name in ("pyproject.toml", *_LOCK_NAMES) or is_requirements_file(path)


def groups(deps: list[Dependency]) -> dict[str, list[Dependency]]:
    """Dependencies by project directory (a `requirements/` folder belongs to its parent)."""
    groups: dict[str, list[Dependency]] = {}
    for dep in deps:
        parent = PurePosixPath(dep.path).parent
        if parent.name == "requirements":
            parent = parent.parent
        groups.setdefault(str(parent), []).append(dep)
    return groups


def _parse_requirement(text: str):
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def _pin_of(specifier: str) -> Optional[str]:
    from packaging.specifiers import SpecifierSet

    specs = list(SpecifierSet(specifier))
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


def _locate(path: str, lines: list[str], needle: str, name: str, start: int = 0) -> tuple[int, int, int]:
    """(line, column, end_column) of a quoted requirement string, else of the package name."""
    for quote in ('"', "'"):
        quoted = f"{quote}{needle}{quote}"
        for number in range(start, len(lines)):
            column = lines[number].find(quoted)
            if column >= 0:
                return number + 1, column + 2, column + 1 + len(quoted) - 1
    pattern = re.compile(rf"(?<![\w-]){re.escape(name).replace('-', '[-_.]')}(?![\w-])", re.I)
    for number in range(start, len(lines)):
        match = pattern.search(lines[number])
        if match:
            return number + 1, match.start() + 1, match.end() + 1
    return 1, 1, 1


def _pep508(path: str, lines: list[str], text: str, start: int = 0) -> Optional[Dependency]:
    requirement = _parse_requirement(text)
    if requirement is None:
        return None
    line, column, end_column = _locate(path, lines, text, requirement.name, start)
    specifier = str(requirement.specifier)
    return Dependency(
        path, line, column, end_column, normalise(requirement.name), text.strip(), specifier,
        pinned=_pin_of(specifier), extras=frozenset(requirement.extras),
    )


def _pyproject(path: str, text: str) -> Iterator[Dependency]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    data = tomllib.loads(text)
    lines = text.splitlines()
    project = data.get("project") or {}
    tool = data.get("tool") or {}
    strings: list[str] = list(project.get("dependencies") or [])
    for group in (project.get("optional-dependencies") or {}).values():
        strings.extend(group or [])
    for group in (data.get("dependency-groups") or {}).values():
        strings.extend(item for item in group or [] if isinstance(item, str))
    for group in ((tool.get("pdm") or {}).get("dev-dependencies") or {}).values():
        strings.extend(item for item in group or [] if isinstance(item, str))
    uv = tool.get("uv") or {}
    strings.extend(item for item in uv.get("dev-dependencies") or [] if isinstance(item, str))
    overrides: dict[str, list[str]] = {}
    for key in ("constraint-dependencies", "override-dependencies"):
        for item in uv.get(key) or []:
            requirement = _parse_requirement(item) if isinstance(item, str) else None
            if requirement is not None:
                overrides.setdefault(normalise(requirement.name), []).append(str(requirement.specifier))
    found: list[Dependency] = []
    for item in strings:
        if isinstance(item, str):
            dep = _pep508(path, lines, item)
            if dep is not None:
                found.append(dep)
    poetry = tool.get("poetry") or {}
    tables = [("tool.poetry.dependencies", poetry.get("dependencies")), ("tool.poetry.dev-dependencies", poetry.get("dev-dependencies"))]
    for group_name, group in (poetry.get("group") or {}).items():
        tables.append((f"tool.poetry.group.{group_name}.dependencies", (group or {}).get("dependencies")))
    for header, table in tables:
        for key, value in (table or {}).items():
            name = normalise(key)
            if name == "python":
                continue
            extras: frozenset = frozenset()
            if isinstance(value, dict):
                extras = frozenset(value.get("extras") or ())
                value = value.get("version")
            if not isinstance(value, str):
                continue  # git/path/url dependencies, or per-python lists
            specifier = _poetry_specifier(value)
            if specifier is None:
                continue
            start = next((i for i, line in enumerate(lines) if line.strip() == f"[{header}]"), 0)
            line, column, end_column = _poetry_line(lines, key, start)
            found.append(
                Dependency(path, line, column, end_column, name, f"{key} = {value!r}", specifier, pinned=_pin_of(specifier), extras=extras)
            )
    for dep in found:
        dep.overrides = overrides.get(dep.name, [])
        yield dep


def _poetry_line(lines: list[str], key: str, start: int) -> tuple[int, int, int]:
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=", re.I)
    for number in list(range(start, len(lines))) + list(range(0, start)):
        match = pattern.match(lines[number])
        if match:
            column = len(lines[number]) - len(lines[number].lstrip())
            return number + 1, column + 1, len(lines[number].rstrip()) + 1
    return 1, 1, 1


def _poetry_specifier(value: str) -> Optional[str]:
    """Poetry's constraint syntax (`^2.0`, `~2.0.30`, `2.0.*`, `2.1.9`, `>=2,<3`) as PEP 440."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    value = value.strip()
    if "||" in value or "|" in value:
        return None  # alternatives: not judged
    parts = []
    for part in re.split(r"\s*,\s*|\s+(?=[<>=!~^])", value):
        part = part.strip()
        if not part or part == "*":
            continue
        try:
            if part.startswith("^") or (part.startswith("~") and not part.startswith("~=")):
                bound = Version(part.lstrip("^~").strip())
                release = list(bound.release) + [0] * (3 - len(bound.release))
                given = len(part.lstrip("^~").strip().split("."))
                if part.startswith("^"):
                    index = next((i for i, n in enumerate(release[:given]) if n != 0), min(given, 3) - 1)
                else:
                    index = 1 if given >= 2 else 0
                upper = release[: index + 1]
                upper[-1] += 1
                parts += [f">={bound}", f"<{'.'.join(map(str, upper + [0] * (3 - len(upper))))}"]
            elif part[0].isdigit():
                parts.append(f"=={part}")
            else:
                parts.append(part)
        except InvalidVersion:
            return None
    specifier = ",".join(parts)
    try:
        SpecifierSet(specifier)
    except InvalidSpecifier:
        return None
    return specifier


def _requirements(path: str, text: str) -> Iterator[Dependency]:
    lines = text.splitlines()
    constraints_unknown = any(re.match(r"^\s*(-c|--constraint)\b", line) for line in lines)
    logical: list[tuple[int, str]] = []
    buffer, first = "", 0
    for number, raw in enumerate(lines):
        line = re.split(r"(?:^|\s)#", raw, maxsplit=1)[0].rstrip()
        if not buffer:
            first = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        logical.append((first, number, buffer.strip()))
        buffer = ""
    if buffer.strip():
        logical.append((first, len(lines) - 1, buffer.strip()))
    for first, last, line in logical:
        if not line or line.startswith("-"):
            continue
        line = re.split(r"\s+--?[A-Za-z]", line, maxsplit=1)[0].strip()
        requirement = _parse_requirement(line)
        if requirement is None or requirement.url:
            continue
        specifier = str(requirement.specifier)
        raw = lines[first]
        column = len(raw) - len(raw.lstrip())
        # A multi-line requirement (hashes) is reported on its last line, where a comment can sit.
        yield Dependency(
            path, last + 1, column + 1, len(lines[last].rstrip()) + 1, normalise(requirement.name), line, specifier,
            pinned=_pin_of(specifier), extras=frozenset(requirement.extras), constraints_unknown=constraints_unknown,
        )


def _lock(path: str, text: str) -> Iterator[Dependency]:
    """`[[package]]` entries of uv.lock, poetry.lock and pdm.lock: name and pinned version."""
    lines = text.splitlines()
    name: Optional[str] = None
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            name = None
            continue
        match = re.match(r'^name\s*=\s*"([^"]+)"', stripped)
        if match:
            name = normalise(match.group(1))
            continue
        match = re.match(r'^version\s*=\s*"([^"]+)"', stripped)
        if match and name:
            yield Dependency(
                path, number + 1, len(line) - len(line.lstrip()) + 1, len(line.rstrip()) + 1, name,
                f'{name} {match.group(1)}', f"=={match.group(1)}", pinned=match.group(1), locked=True,
            )
            name = None




# -- launchers ---------------------------------------------------------------------------------------
LAUNCHER = "opentelemetry-instrument"
BOOTSTRAP = "opentelemetry-bootstrap"


@dataclass(frozen=True)
class CommandLine:
    path: str
    line: int
    column: int
    end_column: int
    text: str


def command_lines(texts: dict[str, str], word: str) -> list[CommandLine]:
    """Lines of Dockerfiles, Procfiles, compose files, scripts and Makefiles that run `word`.

    Comment lines are skipped; `opentelemetry-instrument` does not match `opentelemetry-instrumentation-*`.
    """
    pattern = re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])")
    found = []
    for path in sorted(texts):
        if is_dependency_file(path):
            continue
        for number, line in enumerate(texts[path].splitlines(), start=1):
            if line.lstrip().startswith("#"):
                continue
            match = pattern.search(line)
            if match:
                found.append(CommandLine(path, number, match.start() + 1, match.end() + 1, line.strip()))
    return found


def disabled_instrumentations(texts: dict[str, str]) -> set[str]:
    """Names listed in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS anywhere in the launcher files."""
    names: set[str] = set()
    for path, text in texts.items():
        if is_dependency_file(path):
            continue
        for match in re.finditer(r"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS\W{1,4}([\w ,*-]+)", text):
            names |= {n.strip() for n in match.group(1).split(",") if n.strip()}
    return names
