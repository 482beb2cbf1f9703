"""The scan: find files, skip those that cannot matter, parse each once, run every rule in one
walk, build the project index, and decide the findings.

Cost model (see bench/): parsing with LibCST dominates, so the byte-level pre-filter decides
which files are parsed at all, results are cached by content hash, and parsing runs on every core.

The jobs live in their own modules; `Scanner` ties them together:
- `selection`: which files are read, which are parsed (three rounds), and their paths;
- `analysis`: one file's analysis (LibCST, the indexer, the file rules) and the worker pool;
- `cache`: the per-file outcomes and the decided result of the last scan;
- `projects` and `decide`: one project index per project of the repository, and the findings.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Optional

from otel_sqla_doctor import __version__
from otel_sqla_doctor.config import Config
from otel_sqla_doctor.findings import FileError, ScanResult
from otel_sqla_doctor.static import discovery, incremental, paths, suppressions
from otel_sqla_doctor.static.analysis import (
    CHANGED_DURING_SCAN,
    PATH_ROLES_KEY,
    FileJob,
    analyze_file,
    analyze_source,
    outcome_digest,
    run_jobs,
)
from otel_sqla_doctor.static.cache import FileCache, Result, base_key, code_digest, load_result, project_key, save_result
from otel_sqla_doctor.static.decide import Judge
from otel_sqla_doctor.static.progress import Progress
from otel_sqla_doctor.static.selection import (
    EXCLUDE_HINT,
    MAX_FILE_BYTES,
    ScanPaths,
    collect,
    imported_modules,
    importer_pattern,
    mentions_stack,
    module_names,
    names_stack,
)

__all__ = ["CHANGED_DURING_SCAN", "MAX_FILE_BYTES", "FileJob", "Scanner", "analyze_file", "analyze_source"]


class Scanner:
    def __init__(
        self,
        config: Config,
        *,
        use_cache: bool = True,
        jobs: Optional[int] = None,
        cwd: Optional[Path] = None,
    ) -> None:
        self.config = config
        self.root = (config.root or Path.cwd()).resolve()
        self.cwd = (cwd or Path.cwd()).resolve()
        self.paths = ScanPaths(self.root, self.cwd)
        self.use_cache = use_cache
        self.jobs = jobs
        self.codes = tuple(sorted(config.enabled_codes()))
        self.options = {code: config.rule_options(code) for code in self.codes}
        # Where each file runs (service, test, example, script, migration): the project's own
        # globs travel with the options to the workers.
        self.options[PATH_ROLES_KEY] = dict(config.path_roles)
        paths.configure(config.path_roles)
        self.fingerprint = hashlib.sha1(f"{__version__}:{code_digest()}:{config.fingerprint()}".encode()).hexdigest()[:16]
        self.notices: list[FileError] = []
        self.digests: dict[str, str] = {}
        self._progress: Optional[Progress] = None
        self._fresh: dict[str, tuple[str, dict]] = {}  # relative -> (content hash, outcome)

    # paths
    def display(self, relative: str) -> str:
        """A path relative to the project root, as reported (relative to the working directory)."""
        return self.paths.display(relative)

    def relative_path(self, path: Path) -> str:
        """The POSIX path of a file relative to the project root (its symbolic link kept)."""
        return self.paths.relative_path(path)

    def collect(self, targets: list[Path]) -> tuple[list[Path], dict[str, str], list[FileError]]:
        """Python files under the targets, and the project files (deps, launchers) at the root."""
        return collect(targets, self.config, self.paths)

    def scan(self, targets: list[Path], *, report_only: Optional[set[str]] = None) -> ScanResult:
        files, project_texts, errors = self.collect(targets)
        self.notices = []
        self.digests = {}
        suppression_texts: dict[str, str] = {}
        pending = self._read(files, errors, suppression_texts)

        # Nothing changed since the last scan (same files, same settings, same tool): the decided
        # findings are reused as they are, without loading any per-file facts.
        # (The key includes the working directory: reported paths are relative to it.)
        key = project_key(f"{self.fingerprint}:{self.cwd}", pending, project_texts)
        base = base_key(f"{self.fingerprint}:{self.cwd}", project_texts)
        previous = load_result(self.root, self.fingerprint) if self.use_cache else None
        if previous is not None and previous.key == key:
            return self._finish(previous.findings, errors + previous.errors, files, targets, report_only, suppression_texts)
        # A few files changed, and none of them changes what the decision reads (a comment, a body
        # edit that changes no fact): the decided findings still hold (see `incremental`).
        if previous is not None and previous.base == base:
            records = incremental.reuse(previous, pending, self._analyze_one)
            if records is not None:
                save_result(self.root, self.fingerprint, dataclasses.replace(previous, key=key, files=records))
                return self._finish(previous.findings, errors + previous.errors, files, targets, report_only, suppression_texts)

        outcomes, rounds, pattern = self._analyze_rounds(pending)
        records = incremental.file_records(pending, outcomes, rounds)
        findings, file_errors = Judge(self.config, self.codes, self.options, self.paths).judge(outcomes, pending, project_texts)
        if self.use_cache and not any(o.get("transient") for o in outcomes.values()):
            result = Result(key, findings, file_errors, base=base, files=records, pattern=incremental.pattern_text(pattern))
            save_result(self.root, self.fingerprint, result)
        return self._finish(findings, errors + file_errors, files, targets, report_only, suppression_texts)

    def _analyze_one(self, relative: str, path: Path, data: bytes) -> dict:
        """One changed file's outcome, kept for a full decision should the reuse fail."""
        outcome = self.analyze_jobs([self._job(relative, path, data)])[0]
        outcome.setdefault("digest", outcome_digest(outcome))
        self._fresh[relative] = (incremental.content_key(data), outcome)
        return outcome

    def _job(self, relative: str, path: Path, data: bytes) -> FileJob:
        module, is_package = discovery.module_name(path.resolve() if not path.is_symlink() else path, self.root)
        return FileJob(str(path), relative, module, is_package, incremental.content_key(data))

    def _read(self, files: list[Path], errors: list[FileError], suppression_texts: dict[str, str]) -> list[tuple[str, Path, bytes]]:
        """(relative, path, bytes) of every file to consider; the files over the size cap are
        reported (an error when they name the stack, else a notice) and left out."""
        pending: list[tuple[str, Path, bytes]] = []
        for path in files:
            relative = self.relative_path(path)
            try:
                size = path.stat().st_size
                if size > MAX_FILE_BYTES:
                    too_big = f"skipped: {size / 1_000_000:.1f} MB is over the {MAX_FILE_BYTES // 1_000_000} MB limit"
                    mentioned = mentions_stack(path)
                    if mentioned:  # it may hold the wiring: the scan is incomplete, and says so
                        errors.append(FileError(self.display(relative), f"{too_big}, and it mentions `{mentioned}`, so it was not checked; {EXCLUDE_HINT}"))
                    else:  # generated data, a vendored bundle: nothing the rules look at
                        self.notices.append(FileError(self.display(relative), f"{too_big} (it mentions neither SQLAlchemy nor OpenTelemetry); {EXCLUDE_HINT}"))
                    continue
                data = path.read_bytes()
            except OSError as exc:
                errors.append(FileError(self.display(relative), f"cannot read: {exc.strerror or exc}"))
                continue
            pending.append((relative, path, data))
            self.digests[self.display(relative)] = hashlib.blake2b(data, digest_size=16).hexdigest()  # what --fix may edit
            if suppressions.MARKER in data:
                suppression_texts[self.display(relative)] = data.decode("utf-8", errors="replace")
        return pending

    def _analyze_rounds(self, pending: list[tuple[str, Path, bytes]]):
        """The outcome of every file that can matter, analysed (or taken from the cache) in three
        rounds; the round of each, and the importer pattern of round two."""
        outcomes: dict[str, dict] = {}
        rounds: dict[str, int] = {}
        pattern = None
        cache = FileCache(self.root, self.fingerprint) if self.use_cache else None
        self._progress = Progress(len(pending))
        try:
            # Only files that name the stack start the index; the rest join through imports
            # (rounds two and three). A rule's own words then decide whether it visits a file.
            first = [(r, p, d) for r, p, d in pending if names_stack(d)]
            rest = [(r, p, d) for r, p, d in pending if not names_stack(d)]
            self._analyze(first, outcomes, cache, rounds, 1)
            # Second round: files that import a module the first round found (routes importing
            # `get_db` from `app.db`), so names resolve across modules.
            pattern = importer_pattern(outcomes)
            if pattern is not None and rest:
                second = [(r, p, d) for r, p, d in rest if pattern.search(d)]
                self._analyze(second, outcomes, cache, rounds, 2)
            # Third round: project modules those files import (a settings module holding the
            # database URL, a helper module returning SQL), so values resolve across modules.
            imported = imported_modules(outcomes)
            if imported:
                third = [(r, p, d) for r, p, d in rest if r not in outcomes and not imported.isdisjoint(module_names(r))]
                self._analyze(third, outcomes, cache, rounds, 3)
        finally:
            self._progress.close()
        if cache is not None:
            cache.save()
        return outcomes, rounds, pattern

    def _finish(self, findings, errors, files, targets, report_only, suppression_texts) -> ScanResult:
        # Dependency and launcher files are read from the whole project, but reported only where
        # the scan looks (`doctor scan src/` says nothing about ./pyproject.toml).
        findings = [f for f in findings if f.path.endswith(".py") or self.paths.under_targets(f.path, targets)]
        if report_only is not None:
            findings = [f for f in findings if f.path in report_only]
            errors = [e for e in errors if e.path in report_only]
        if report_only is not None:
            suppression_texts = {p: t for p, t in suppression_texts.items() if p in report_only}
        findings, unused = suppressions.apply(findings, suppression_texts)
        result = ScanResult(findings=sorted(set(findings)), files_scanned=len(files), errors=sorted(set(errors)))
        notices = list(self.notices)
        if report_only is not None:
            notices = [n for n in notices if n.path in report_only]
        result.notices = sorted(set(notices), key=lambda n: (n.path, n.message))
        result.unused_suppressions = unused
        result.digests = dict(self.digests)
        return result

    def _analyze(self, batch: list[tuple[str, Path, bytes]], outcomes: dict, cache: Optional[FileCache], rounds: dict, round_: int) -> None:
        todo: list[FileJob] = []
        fresh: list[tuple[FileJob, dict]] = []
        for relative, path, data in batch:
            rounds[relative] = round_
            key = incremental.content_key(data)
            cached = cache.get(relative, key) if cache else None
            if cached is not None:
                outcomes[relative] = cached
                cached.setdefault("digest", outcome_digest(cached))
                self._tick()
                continue
            job = self._job(relative, path, data)
            if self._fresh.get(relative, (None,))[0] == key:  # analysed while trying to reuse the last result
                fresh.append((job, self._fresh[relative][1]))
            else:
                todo.append(job)
        for job, outcome in [*fresh, *zip(todo, self.analyze_jobs(todo))]:
            outcome.setdefault("digest", outcome_digest(outcome))
            outcomes[job.relative] = outcome
            self._tick()
            # Internal errors are not cached: the next run (or version) may not have the bug.
            if cache is not None and not outcome.get("transient") and not (outcome.get("error") or "").startswith("internal error"):
                cache.put(job.relative, job.key, outcome)

    def _tick(self, shown_only: bool = False) -> None:
        """One more file analysed. `shown_only`: while parsing, only redraw (counted when collected)."""
        if self._progress is not None:
            self._progress.tick(0 if shown_only else 1, pending=1 if shown_only else 0)

    def analyze_jobs(self, todo: list[FileJob]) -> list[dict]:
        """The outcome of each job, in order (a subclass may answer some itself: stdin)."""
        return run_jobs(todo, self.codes, self.options, self.jobs, lambda: self._tick(shown_only=True))
