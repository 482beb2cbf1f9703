"""The benchmark corpus: source distributions of large projects, fetched by pip at pinned versions,
and git snapshots of large applications at pinned commits (polar: not on PyPI).

Each corpus is the `.py` files of one sdist, unpacked under `bench/.cache/corpus/<name>-<version>/`.
Only Python sources are kept (no docs, no notebooks, no build files), so every tool sees exactly
the same files. Each corpus directory is made its own git work tree (`git init`, nothing committed)
and gets an empty `.semgrepignore`:

- the git work tree stops the doctor's configuration discovery at the corpus root (otherwise it
  would climb into this repository, whose pyproject.toml excludes `bench/**`) and gives the doctor
  its normal `git ls-files` file listing (this repository's .gitignore hides `bench/.cache/`);
- the empty `.semgrepignore` replaces semgrep's default ignore list, which skips `tests/`.

Stdlib only: this runs before the benchmark venv exists.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
CACHE_DIR = BENCH_DIR / ".cache"
SDIST_DIR = CACHE_DIR / "sdist"
CORPUS_DIR = CACHE_DIR / "corpus"

# Bump a version here and the corpus is fetched again under a new directory name.
# `role` says why it is here: prefect's server runs on async SQLAlchemy (the application corpus the
# issue's targets are quoted on); Django and SQLAlchemy are large library corpora.
@dataclasses.dataclass(frozen=True)
class Corpus:
    name: str  # the PyPI project name, as given to pip (or a name for a git snapshot)
    version: str  # the release, or for a git snapshot the first 12 hex digits of its commit
    role: str
    repo: str = ""  # "owner/name" on GitHub: a git snapshot at `commit` instead of an sdist
    commit: str = ""

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def directory(self) -> Path:
        return CORPUS_DIR / f"{self.key}-{self.version}"


CORPORA = (
    Corpus("prefect", "3.6.0", "application (server on async SQLAlchemy)"),
    Corpus(
        "polar", "c6c3645e639e", "application (large async SQLAlchemy service, git snapshot)",
        repo="polarsource/polar", commit="c6c3645e639ee8eeaa05aa0835cf8e39e330382f",
    ),
    Corpus("SQLAlchemy", "2.0.44", "library"),
    Corpus("Django", "5.2.8", "library (largest)"),
)
APPLICATION = "prefect"
APPLICATIONS = ("prefect", "polar")  # the targets are judged on each of these
# Where fetched snapshots live (the search tool's fetch puts them there); else `git clone`.
MIRRORS = Path(os.environ.get("BENCH_GIT_MIRRORS", "/work/.mirror"))

_MARKER = ".bench-corpus.json"


def _sdist_file(corpus: Corpus) -> Path | None:
    for candidate in sorted(SDIST_DIR.glob("*")):
        stem = candidate.name.lower().replace("-", "_")
        if stem.startswith(f"{corpus.key.replace('-', '_')}_{corpus.version}.") and candidate.name.endswith(
            (".tar.gz", ".zip")
        ):
            return candidate
    return None


def fetch(corpora: list[Corpus], log=print) -> None:
    """Download the missing sdists with pip (one call). `--no-binary` names only the corpus projects,
    so pip may still use wheels for their build backends while it prepares metadata (with
    `:all:` it compiles Cython & co. from source: minutes instead of seconds)."""
    missing = [c for c in corpora if not c.repo and not c.directory.joinpath(_MARKER).is_file() and _sdist_file(c) is None]
    if not missing:
        return
    SDIST_DIR.mkdir(parents=True, exist_ok=True)
    names = ",".join(c.name for c in missing)
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--no-binary", names, "-d", str(SDIST_DIR),
        *[f"{c.name}=={c.version}" for c in missing],
    ]  # fmt: skip
    log(f"fetching {', '.join(f'{c.name}=={c.version}' for c in missing)} with pip download (sdists) ...")
    subprocess.run(cmd, check=True)
    for c in missing:
        if _sdist_file(c) is None:
            raise SystemExit(f"bench: pip download did not produce an sdist for {c.name}=={c.version} in {SDIST_DIR}")


def _members(archive: Path):
    """(relative path inside the top directory, bytes) for every .py file of the sdist."""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.filename.endswith(".py") and not info.is_dir():
                    yield info.filename.split("/", 1)[-1], zf.read(info)
        return
    with tarfile.open(archive) as tf:
        for member in tf:
            if member.isfile() and member.name.endswith(".py"):
                handle = tf.extractfile(member)
                if handle is not None:
                    yield member.name.split("/", 1)[-1], handle.read()


def _git_dir(corpus: Corpus, log=print) -> Path:
    """A git directory holding the corpus's commit: a fetched mirror, else a clone of GitHub."""
    mirror = MIRRORS / corpus.repo.replace("/", "+") / "repo"
    for candidate in (mirror / ".git", mirror, CACHE_DIR / "git" / corpus.key):
        probe = subprocess.run(["git", f"--git-dir={candidate}", "cat-file", "-e", f"{corpus.commit}^{{commit}}"], capture_output=True)
        if probe.returncode == 0:
            return candidate
    clone = CACHE_DIR / "git" / corpus.key
    log(f"cloning {corpus.repo} (no blobs until needed) ...")
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(["git", "clone", "--quiet", "--bare", "--filter=blob:none", f"https://github.com/{corpus.repo}.git", str(clone)], check=True)
    subprocess.run(["git", f"--git-dir={clone}", "fetch", "--quiet", "origin", corpus.commit], check=False)
    return clone


def snapshot_blobs(git_dir: Path, commit: str, keep=lambda name: True):
    """(path, bytes) of every regular file of `commit` that `keep(path)` accepts and the snapshot
    holds. Snapshots lack files of 4 MiB and more (images, data), so `git archive` would stop at
    the first: `ls-tree` + `cat-file --batch` skip them. Symbolic links are skipped too (they
    could point anywhere). Shared with bench/realworld."""
    listing = subprocess.run(["git", f"--git-dir={git_dir}", "ls-tree", "-r", "-z", "--full-tree", commit], capture_output=True, check=False)
    if listing.returncode != 0:
        raise RuntimeError(f"git ls-tree {commit[:12]}: {listing.stderr.decode(errors='replace').strip()}")
    entries = []
    for record in listing.stdout.split(b"\0"):
        if not record:
            continue
        meta, _, raw_name = record.partition(b"\t")
        mode, kind, sha = meta.split()
        name = raw_name.decode("utf-8", errors="surrogateescape")
        if kind == b"blob" and mode != b"120000" and keep(name):
            entries.append((sha.decode(), name))
    batch = subprocess.Popen(["git", f"--git-dir={git_dir}", "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert batch.stdin is not None and batch.stdout is not None
    try:
        for sha, name in entries:
            batch.stdin.write(sha.encode() + b"\n")
            batch.stdin.flush()
            header = batch.stdout.readline().split()
            if len(header) < 3 or header[1] == b"missing":
                continue
            data = batch.stdout.read(int(header[2]))
            batch.stdout.read(1)  # the newline after each object
            yield name, data
    finally:
        batch.stdin.close()
        batch.wait()


def _git_members(corpus: Corpus, log=print):
    """(path, bytes) of every .py file at the pinned commit."""
    return snapshot_blobs(_git_dir(corpus, log), corpus.commit, keep=lambda name: name.endswith(".py"))


def unpack(corpus: Corpus, log=print) -> Path:
    target = corpus.directory
    if target.joinpath(_MARKER).is_file():
        return target
    if corpus.repo:
        members, source = _git_members(corpus, log), f"{corpus.repo}@{corpus.commit}"
    else:
        archive = _sdist_file(corpus)
        if archive is None:
            raise SystemExit(f"bench: no sdist for {corpus.name}=={corpus.version}; run without --offline")
        members, source = _members(archive), archive.name
    log(f"unpacking {source} (.py files only) ...")
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for relative, data in members:
        # No absolute paths, no `..`: the archive is from PyPI but stay careful.
        parts = Path(relative).parts
        if not parts or Path(relative).is_absolute() or ".." in parts:
            continue
        out = tmp.joinpath(*parts)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    (tmp / ".semgrepignore").write_text("# empty on purpose: semgrep's default list skips tests/\n")
    subprocess.run(["git", "init", "--quiet", str(tmp)], check=True)
    (tmp / _MARKER).write_text(json.dumps({"name": corpus.name, "version": corpus.version, "source": source}))
    # `.git` and the marker are ignored by every tool; hide the marker from git's untracked list too.
    with (tmp / ".git" / "info" / "exclude").open("a") as fh:
        fh.write(f"/{_MARKER}\n/.semgrepignore\n")
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def python_files(root: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", ".otel_sqla_doctor_cache", "__pycache__"))
        files.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py"))
    return files


def count(root: Path) -> dict:
    """Files, lines and bytes, and how many files mention sqlalchemy / opentelemetry at all."""
    files = lines = size = sqla = otel = 0
    for path in python_files(root):
        data = path.read_bytes()
        files += 1
        size += len(data)
        lines += data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        sqla += b"sqlalchemy" in data
        otel += b"opentelemetry" in data
    return {"files": files, "lines": lines, "bytes": size, "mention_sqlalchemy": sqla, "mention_opentelemetry": otel}


def changed_file_candidate(root: Path) -> Path:
    """The file edited in the 'one changed file' measurement: a deterministic, typical pick, the
    median-sized file among those that import sqlalchemy and define a coroutine (a query module of
    an async service), falling back to any file that mentions sqlalchemy, then to any file."""
    tiers: list[list[tuple[int, str, Path]]] = [[], [], []]
    for path in python_files(root):
        data = path.read_bytes()
        entry = (len(data), str(path), path)
        if (b"from sqlalchemy" in data or b"import sqlalchemy" in data) and b"async def" in data:
            tiers[0].append(entry)
        elif b"sqlalchemy" in data:
            tiers[1].append(entry)
        else:
            tiers[2].append(entry)
    for tier in tiers:
        if tier:
            tier.sort()
            return tier[len(tier) // 2][2]
    raise SystemExit(f"bench: no Python file under {root}")


def prepare(corpora: list[Corpus], offline: bool = False, log=print) -> dict[str, Path]:
    if not offline:
        fetch(corpora, log=log)
    return {c.key: unpack(c, log=log) for c in corpora}


if __name__ == "__main__":
    dirs = prepare(list(CORPORA))
    for c in CORPORA:
        print(c.name, c.version, dirs[c.key], count(dirs[c.key]))
