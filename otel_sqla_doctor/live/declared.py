"""OSD502's verdict from the project's dependency files, for when the probe ran in the doctor's own
environment: the SQLAlchemy installed there is the doctor's, so what the application gets must be
read from what the project declares.

The files are read with the static side's reader (`static.dependencies`); the ranges each
instrumentation release declares come from `otel_sqla_doctor.versions`, as for the static rule
OSD107. Only the project root's own files are read (pyproject.toml, requirements*.txt and
requirements/*.txt, uv.lock, poetry.lock, pdm.lock), never the whole tree: the probe must stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

INSIDE, OUTSIDE, MAY_LEAVE, UNKNOWN = "inside", "outside", "may-leave", "unknown"


@dataclass(frozen=True)
class DeclaredVerdict:
    """`status`: inside (what the app gets is instrumented), outside (it is not), may-leave (an open
    requirement lets a fresh resolve pick a release outside), unknown (nothing to judge)."""

    status: str
    detail: str
    files: tuple[str, ...] = ()


def _dependency_texts(project: Path) -> dict[str, str]:
    from otel_sqla_doctor.static.dependencies import is_dependency_file

    candidates = [*sorted(project.glob("*")), *sorted(project.glob("requirements/*.txt"))]
    texts = {}
    for path in candidates:
        relative = path.relative_to(project).as_posix()
        if path.is_file() and is_dependency_file(relative):
            try:
                texts[relative] = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
    return texts


def _newest(specifiers: list[str], candidates: set[str]) -> tuple[str | None, list[str]]:
    """(the newest candidate every specifier allows, all allowed candidates)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import Version

    try:
        sets = [SpecifierSet(s) for s in specifiers]
    except InvalidSpecifier:
        return None, []
    allowed = [c for c in candidates if all(s.contains(Version(c), prereleases=True) for s in sets)]
    return (max(allowed, key=Version) if allowed else None), allowed


def _instrumentation_release(deps: list) -> tuple[str, str]:
    """The instrumentation release the application gets, and how that is known."""
    from otel_sqla_doctor import versions

    declared = [d for d in deps if d.name == versions.INSTRUMENTATION]
    for dep in sorted(declared, key=lambda d: not d.locked):
        if dep.pinned:
            return dep.pinned, f"{'locked' if dep.locked else 'pinned'} in {dep.path}"
    specifiers = [d.specifier for d in declared if d.specifier]
    newest, _ = _newest(specifiers, set(versions.instrumentation_releases()))
    if declared and newest:
        return newest, f"the newest release that {', '.join(sorted(f'`{d.text}`' for d in declared))} allows as of {versions.INSTRUMENTATION_TABLE_DATE}"
    return versions.NEWEST_INSTRUMENTATION, f"not pinned in the dependency files: the newest release as of {versions.INSTRUMENTATION_TABLE_DATE}"


def read_declared(project: Path | None) -> DeclaredVerdict | None:
    """The verdict for the application's SQLAlchemy from `project`'s dependency files; None when
    there are none."""
    if project is None or not project.is_dir():
        return None
    texts = _dependency_texts(project)
    if not texts:
        return None
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    from otel_sqla_doctor import versions
    from otel_sqla_doctor.static.dependencies import all_dependencies

    files = tuple(sorted(texts))
    named = ", ".join(files)
    deps = list(all_dependencies(texts, {versions.SQLALCHEMY, versions.INSTRUMENTATION}))
    sqlalchemy = [d for d in deps if d.name == versions.SQLALCHEMY]
    if not sqlalchemy:
        return DeclaredVerdict(UNKNOWN, f"{named} in {project} declare no sqlalchemy requirement", files)
    release, how = _instrumentation_release(deps)
    entry = versions.declared_range(release)
    if entry is None:
        return DeclaredVerdict(UNKNOWN, f"opentelemetry-instrumentation-sqlalchemy {release} ({how}) is newer than the ranges the doctor knows", files)
    source = f"opentelemetry-instrumentation-sqlalchemy {release} ({how})"
    if not entry.sqlalchemy:
        return DeclaredVerdict(INSIDE, f"{source} declares no SQLAlchemy bound", files)
    in_range = SpecifierSet(entry.sqlalchemy)
    where = f"{source} instruments 'sqlalchemy{entry.sqlalchemy}'"

    def inside(version: str) -> bool:
        try:
            return in_range.contains(Version(version), prereleases=True)
        except InvalidVersion:
            return True  # not judged

    pins = sorted((d for d in sqlalchemy if d.pinned), key=lambda d: not d.locked)
    if pins:
        # A lock entry or an `==` pin decides what gets installed.
        pin = pins[0]
        what = f"{pin.path}:{pin.line} {'locks' if pin.locked else 'pins'} SQLAlchemy {pin.pinned}"
        if inside(pin.pinned):
            return DeclaredVerdict(INSIDE, f"{what}, inside the range: {where}", files)
        return DeclaredVerdict(OUTSIDE, f"{what}, outside the range: {where}", files)

    guarded = any("instruments" in d.extras for d in deps if d.name == versions.INSTRUMENTATION)
    candidates = set(versions.SQLALCHEMY_NEWEST_BY_SERIES.values()) | {f"{s}.0" for s in versions.SQLALCHEMY_NEWEST_BY_SERIES}
    verdicts = []
    for dep in sqlalchemy:
        newest, allowed = _newest([s for s in (dep.specifier, *dep.overrides) if s], candidates)
        if newest is None:
            continue
        at = f"{dep.path}:{dep.line} `{dep.text}`"
        if not any(inside(v) for v in allowed):
            verdicts.append(DeclaredVerdict(OUTSIDE, f"{at} allows only SQLAlchemy releases outside the range: {where}", files))
        elif not inside(newest) and not guarded:
            verdicts.append(DeclaredVerdict(MAY_LEAVE, f"{at} lets a fresh resolve pick SQLAlchemy {newest}, outside the range: {where}", files))
        else:
            verdicts.append(DeclaredVerdict(INSIDE, f"{at} keeps SQLAlchemy inside the range: {where}", files))
    for status in (OUTSIDE, MAY_LEAVE, INSIDE):
        for verdict in verdicts:
            if verdict.status == status:
                return verdict
    return DeclaredVerdict(UNKNOWN, f"the sqlalchemy requirements in {named} could not be judged", files)
