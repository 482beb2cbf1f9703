#!/usr/bin/env python
"""Refresh the version tables in otel_sqla_doctor/versions.py from the package registry.

    .venv/bin/python scripts/refresh_versions.py           # print the diff, change nothing
    .venv/bin/python scripts/refresh_versions.py --write   # apply it

What it does, through pip (so the configured index, proxies and certificates apply):
1. `pip index versions --pre opentelemetry-instrumentation-sqlalchemy` lists the releases.
2. Every release newer than the table's newest (at most --limit of them, oldest first) is
   downloaded as a wheel (`pip download --no-deps`), and the SQLAlchemy range it declares is read
   from the wheel itself: `_instruments` in `opentelemetry/instrumentation/sqlalchemy/package.py`,
   cross-checked with the `instruments` extra of its METADATA (Requires-Dist).
3. A release that declares the same range as the newest entry extends that entry; a different
   range starts a new entry. INSTRUMENTATION_TABLE_DATE becomes today.
4. `pip index versions sqlalchemy` gives the newest release of each SQLAlchemy series in the
   table (SQLALCHEMY_NEWEST_BY_SERIES); SQLALCHEMY_TABLE_DATE becomes today.

Then it prints a unified diff of versions.py. Review it, run the tests, commit.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import difflib
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
VERSIONS_PY = ROOT / "otel_sqla_doctor" / "versions.py"
sys.path.insert(0, str(ROOT))

INSTRUMENTATION = "opentelemetry-instrumentation-sqlalchemy"
PACKAGE_PY = "opentelemetry/instrumentation/sqlalchemy/package.py"


def pip(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"pip {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def available_versions(name: str) -> list[str]:
    """Every release the index lists for `name`, pre-releases included."""
    out = pip("index", "versions", "--pre", name)
    match = re.search(r"^Available versions:\s*(.+)$", out, re.MULTILINE)
    if not match:
        raise SystemExit(f"could not read the versions of {name} from pip's output:\n{out}")
    return [v.strip() for v in match.group(1).split(",") if v.strip()]


def declared_in_wheel(wheel: Path) -> str:
    """The SQLAlchemy specifier set a wheel declares, normalized (e.g. '<2.1.0,>=1.0.0'; '' for any)."""
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as zf:
        source = zf.read(PACKAGE_PY).decode()
        metadata = next((zf.read(n).decode() for n in zf.namelist() if n.endswith(".dist-info/METADATA")), "")
    instruments = None
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_instruments" for t in node.targets):
            instruments = ast.literal_eval(node.value)
    if not instruments:
        raise SystemExit(f"{wheel.name}: no `_instruments` in {PACKAGE_PY}")
    requirements = [Requirement(r) for r in instruments if Requirement(r).name.lower() == "sqlalchemy"]
    if len(requirements) != 1:
        raise SystemExit(f"{wheel.name}: expected one sqlalchemy requirement in _instruments, got {instruments}")
    declared = str(requirements[0].specifier)
    # The `instruments` extra must say the same thing (resolvers honour that one).
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" in line and "instruments" in line:
            req = Requirement(line.split(":", 1)[1].strip())
            if req.name.lower() == "sqlalchemy" and str(req.specifier) != declared:
                raise SystemExit(f"{wheel.name}: _instruments says {declared!r}, METADATA says {str(req.specifier)!r}")
    return declared


def download_declared(version: str, directory: Path) -> str:
    pip("download", "--quiet", "--no-deps", "--only-binary", ":all:", "--pre", f"{INSTRUMENTATION}=={version}", "-d", str(directory))
    wheels = sorted(directory.glob(f"opentelemetry_instrumentation_sqlalchemy-{version}-*.whl"))
    if not wheels:
        raise SystemExit(f"no wheel for {INSTRUMENTATION} {version} in {directory}")
    return declared_in_wheel(wheels[0])


def same_range(a: str, b: str) -> bool:
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(a) == SpecifierSet(b)


def newest_by_series(releases: list[str], series: list[str]) -> dict[str, str]:
    """The newest final release of each `major.minor` series."""
    from packaging.version import InvalidVersion, Version

    found: dict[str, Version] = {}
    for text in releases:
        try:
            v = Version(text)
        except InvalidVersion:
            continue
        key = f"{v.major}.{v.minor}"
        if key in series and not v.is_prerelease and (key not in found or v > found[key]):
            found[key] = v
    return {key: str(found[key]) for key in series if key in found}


def refreshed_text(text: str, new_releases: list[tuple[str, str]], series: dict[str, str], today: str) -> str:
    """versions.py with the newest entry extended or new entries appended, and the dates moved."""
    from otel_sqla_doctor import versions

    newest = versions.SQLALCHEMY_INSTRUMENTATION_RANGES[-1]
    last_range, last_release = newest.sqlalchemy, newest.last
    extend_to: Optional[str] = None
    new_entries: list[tuple[str, str, str]] = []  # first, last, range
    for release, declared in new_releases:
        if not new_entries and same_range(declared, last_range):
            extend_to = release
        elif new_entries and same_range(declared, new_entries[-1][2]):
            new_entries[-1] = (new_entries[-1][0], release, declared)
        else:
            new_entries.append((release, release, declared))
    if extend_to:
        pattern = re.compile(r'(last=")' + re.escape(last_release) + r'(",\s*\n\s*sqlalchemy="' + re.escape(last_range) + r'")')
        text, n = pattern.subn(lambda m: m.group(1) + extend_to + m.group(2), text, count=1)
        if n != 1:
            raise SystemExit("could not find the newest entry in versions.py")
    if new_entries:
        block = "".join(
            "    DeclaredRange(\n"
            f'        first="{first}",\n'
            f'        last="{last}",\n'
            f'        sqlalchemy="{declared}",\n'
            f'        source="`_instruments` in the {first}..{last} wheels\' package.py (read on {today} by scripts/refresh_versions.py)",\n'
            "    ),\n"
            for first, last, declared in new_entries
        )
        marker = "\n)\n\n# The day PyPI was last read"
        if marker not in text:
            raise SystemExit("could not find the end of SQLALCHEMY_INSTRUMENTATION_RANGES in versions.py")
        text = text.replace(marker, "\n" + block.rstrip("\n") + "\n)\n\n# The day PyPI was last read", 1)
    text = re.sub(r'^INSTRUMENTATION_TABLE_DATE = "[^"]*"', f'INSTRUMENTATION_TABLE_DATE = "{today}"', text, count=1, flags=re.MULTILINE)
    text = re.sub(r'^SQLALCHEMY_TABLE_DATE = "[^"]*"', f'SQLALCHEMY_TABLE_DATE = "{today}"', text, count=1, flags=re.MULTILINE)
    for key, newest_release in series.items():
        text = re.sub(rf'^(    "{re.escape(key)}": )"[^"]*"', rf'\g<1>"{newest_release}"', text, count=1, flags=re.MULTILINE)
    return text


def main(argv: Optional[list[str]] = None) -> int:
    from packaging.version import Version

    from otel_sqla_doctor import versions

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="apply the change to versions.py (default: print the diff only)")
    parser.add_argument("--limit", type=int, default=10, help="read at most this many new releases (default 10)")
    args = parser.parse_args(argv)

    newest_known = Version(versions.NEWEST_INSTRUMENTATION)
    releases = sorted((v for v in available_versions(INSTRUMENTATION) if Version(v) > newest_known), key=Version)
    if len(releases) > args.limit:
        print(f"{len(releases)} new releases; reading the oldest {args.limit} (--limit)", file=sys.stderr)
        releases = releases[: args.limit]
    new_releases = []
    with tempfile.TemporaryDirectory() as tmp:
        for release in releases:
            declared = download_declared(release, Path(tmp))
            print(f"{INSTRUMENTATION} {release}: sqlalchemy{declared or ' (any)'}", file=sys.stderr)
            new_releases.append((release, declared))
    series = newest_by_series(available_versions("sqlalchemy"), list(versions.SQLALCHEMY_NEWEST_BY_SERIES))

    before = VERSIONS_PY.read_text()
    after = refreshed_text(before, new_releases, series, datetime.date.today().isoformat())
    diff = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), "a/otel_sqla_doctor/versions.py", "b/otel_sqla_doctor/versions.py"))
    print(diff or "versions.py is up to date", end="" if diff else "\n")
    if args.write and diff:
        VERSIONS_PY.write_text(after)
        print("\nwritten; now run the tests and regenerate the docs: python -m otel_sqla_doctor.docs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
