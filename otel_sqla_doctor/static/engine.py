"""The scan: find files, skip those that cannot matter, parse each once, run every rule in one
walk, build the project index, and decide the findings.

Cost model (see bench/): parsing with LibCST dominates, so the byte-level pre-filter decides
which files are parsed at all, results are cached by content hash, and parsing runs on every core.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from otel_sqla_doctor import __version__, interrupts
from otel_sqla_doctor.config import Config
from otel_sqla_doctor.findings import Edit, FileError, Finding, Fix, ScanResult, Severity, Span
from otel_sqla_doctor.redact import mask_url
from otel_sqla_doctor.static import discovery, paths, suppressions

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
_EXCLUDE_HINT = 'add it to `extend-exclude` under [tool.otel-sqla-doctor] if it is generated or vendored'
PARALLEL_THRESHOLD = 24  # below this many files to parse, a process pool costs more than it saves
PATH_ROLES_KEY = "path-roles"  # in the options handed to workers, beside the rule codes
CACHE_DIR = ".otel_sqla_doctor_cache"
CACHE_FORMAT = 2  # 2: call summaries stored as JSON text
CHANGED_DURING_SCAN = "changed during the scan, run again"


@dataclass
class FileJob:
    path: str  # absolute
    relative: str  # relative to the project root, POSIX
    module: str
    is_package: bool
    key: str  # content hash + tool version + configuration


@dataclass
class _Prepared:
    jobs: list[FileJob] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    skipped: list[tuple[str, bytes]] = field(default_factory=list)  # (relative, bytes) not parsed yet


def _rule_classes(codes: Iterable[str]):
    from otel_sqla_doctor.static.rules import all_rules

    wanted = set(codes)
    return [r for r in all_rules() if r.CODE in wanted]


# -- per-file analysis (runs in worker processes) ------------------------------------------------
def analyze_file(job: FileJob, codes: tuple[str, ...], options: dict) -> dict:
    """Parse one file and run the indexer and every enabled file rule over it, in one walk."""
    try:
        data = Path(job.path).read_bytes()
    except OSError as exc:
        return {"error": f"cannot read: {exc.strerror or exc}"}
    if hashlib.blake2b(data, digest_size=16).hexdigest() != job.key:
        # Saved since the scan read it: positions (and fixes) must come from the bytes it keyed.
        return {"error": CHANGED_DURING_SCAN, "transient": True}
    return analyze_source(data, job.relative, job.module, job.is_package, codes, options)


def analyze_source(data: bytes, relative: str, module_name: str, is_package: bool, codes, options: dict) -> dict:
    import libcst as cst

    from otel_sqla_doctor.static.context import FileContext
    from otel_sqla_doctor.static.facts import ModuleFacts
    from otel_sqla_doctor.static.indexer import MENTION_WORDS, Indexer
    from otel_sqla_doctor.static.walker import Walker

    paths.configure(options.get(PATH_ROLES_KEY))
    if b"\0" in data:
        return {"error": "contains NUL bytes; not a Python source file"}
    nesting = _too_deep_for_libcst(data)
    if nesting:
        return {"error": nesting}
    try:
        module = cst.parse_module(data)
    except cst.ParserSyntaxError as exc:
        return {"error": _syntax_error(data, exc)}
    except (UnicodeDecodeError, LookupError, SyntaxError) as exc:
        return {"error": f"cannot decode: {_one_line(exc)} (save it as UTF-8 or declare its coding)"}
    except RecursionError:
        return {"error": "too deeply nested to parse"}
    except Exception as exc:  # LibCST's own CSTLogicError / validation errors on valid Python
        return {"error": f"internal error in the LibCST parser: {type(exc).__name__}: {_one_line(exc)} (please report this)"}

    facts = ModuleFacts(path=relative, module=module_name, is_package=is_package)
    facts.mentions = tuple(word for word in MENTION_WORDS if word.encode() in data)
    ctx = FileContext(module, module_name, relative, is_package)
    ctx.options = options
    indexer = Indexer(ctx, facts)
    rules = []
    for rule_class in _rule_classes(codes):
        if rule_class.has_file_visitor() and rule_class.applies_to(data):
            rules.append(rule_class(ctx, options.get(rule_class.CODE)))
    errors: list[str] = []
    try:
        from otel_sqla_doctor.static.walker import Walker

        Walker([ctx, indexer, *rules]).walk(module)
    except RecursionError:
        return {"error": "too deeply nested to analyse"}
    except Exception as exc:  # a bug in one rule must not stop the scan
        culprit = _culprit(exc, rules)
        return {"error": f"internal error in {culprit}: {type(exc).__name__}: {_one_line(exc)} (please report this)"}

    try:
        return _collect(module, data, facts, indexer, rules, errors)
    except RecursionError:
        return {"error": "too deeply nested to analyse"}
    except Exception as exc:  # positions and fixes of one file must not stop the scan either
        return {"error": f"internal error while locating findings: {type(exc).__name__}: {_one_line(exc)} (please report this)"}


def _collect(module, data: bytes, facts, indexer, rules, errors: list[str]) -> dict:
    """Source positions for the indexer's facts and the rules' reports; the file's outcome."""
    from otel_sqla_doctor.static.positions import locate

    reports = [(rule, report) for rule in rules for report in rule.reports]
    requests = [(node, chain) for node, _, chain in indexer.positioned] + [(r["node"], r["chain"]) for _, r in reports]
    # A fix may rewrite another node (`replaces=`); its statements are unknown, so it takes the slow path.
    requests += [(r["replaces"], ()) for _, r in reports if r.get("replaces") is not None]
    requests += [(edit[0], ()) for _, r in reports for edit in r.get("extra_edits", ())]
    positions = locate(module, data, requests)
    for node, target, _ in indexer.positioned:
        span = positions.get(id(node))
        if span is None:
            continue
        if isinstance(target, tuple) and target[0] == "symbol":
            facts.symbol_lines[target[1]] = list(span)
        elif isinstance(target, tuple) and target[0] == "function":
            target[1].line = span[0]
        else:
            target.line, target.column, target.end_line, target.end_column = span[0], span[1], span[2], span[3]
            if hasattr(target, "text"):
                target.text = _shorten(module.code_for_node(node))
    candidates = []
    for rule, report in reports:
        span = positions.get(id(report["node"]))
        if span is None:
            continue
        fix = None
        replacement = report["replacement"]
        # The fix may rewrite another node of the file than the one reported (`replaces=`).
        fix_span = span if report.get("replaces") is None else positions.get(id(report["replaces"]))
        extra_edits = _extra_edits(module, report, positions)
        if replacement is not None and fix_span is not None and extra_edits is not None:
            text = replacement if isinstance(replacement, str) else module.code_for_node(replacement)
            fix = {
                "description": report["fix_description"] or f"Replace with `{_shorten(text)}`",
                "safe": not report["unsafe"],
                "edits": [[*fix_span, text], *extra_edits],
                "summary": _shorten(text, 200),
            }
        candidates.append(
            {
                "code": rule.CODE,
                "span": list(span),
                "message": report["message"],
                "hint": report["hint"],
                "requires": [r.to_json() for r in report["requires"]],
                "fix": fix,
            }
        )
    return {"facts": facts.to_json(), "candidates": candidates, "errors": errors}


# LibCST's native parser recurses once per level of an expression: an 8,000-term `1 + 1 + ...`
# takes it a minute and then kills the process (SIGSEGV), losing every other file's findings.
# CPython's own parser refuses such nesting cheaply (RecursionError, about 3,000 levels), and a
# file Python cannot compile cannot run. Nesting needs bytes, so small files are never at risk.
DEEP_NESTING_MIN_BYTES = 12_000


class _Progress:
    """`scanning N/M files` on stderr, redrawn in place with \\r.

    Only on a terminal, never when the CI environment variable is set (CI logs keep every \\r), and
    only once the scan has run for DELAY seconds: short scans print nothing extra."""

    DELAY = 1.0
    INTERVAL = 0.1

    def __init__(self, total: int, stream=None) -> None:
        import time

        self._clock = time.monotonic
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.done = 0
        self.running = 0
        self.start = self._clock()
        self.last = 0.0
        self.width = 0
        try:
            tty = bool(self.stream.isatty())
        except (AttributeError, ValueError, OSError):
            tty = False
        self.enabled = total > 0 and tty and not os.environ.get("CI")

    def tick(self, done: int = 1, pending: int = 0) -> None:
        self.done += done
        self.running = self.running + pending if pending else 0
        if not self.enabled:
            return
        now = self._clock()
        if now - self.start < self.DELAY or now - self.last < self.INTERVAL:
            return
        self.last = now
        text = f"scanning {min(self.done + self.running, self.total)}/{self.total} files"
        self._write("\r" + text.ljust(self.width))
        self.width = len(text)

    def close(self) -> None:
        if self.width:
            self._write("\r" + " " * self.width + "\r")
            self.width = 0

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False


def _mentions_stack(path: Path, chunk: int = 1 << 20) -> Optional[str]:
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


def _too_deep_for_libcst(data: bytes) -> Optional[str]:
    if len(data) < DEEP_NESTING_MIN_BYTES:
        return None
    import ast
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like
            ast.parse(data)
    except (RecursionError, MemoryError):
        return "not analysed: an expression nests too deeply for Python itself to compile (split it up, or exclude the file)"
    except (SyntaxError, ValueError, UnicodeDecodeError):
        return None  # reported by the LibCST parse, with a better message
    return None


def _syntax_error(data: bytes, exc: Exception) -> str:
    # Python's own compiler names the problem more precisely than LibCST's parser does.
    try:
        compile(data, "<file>", "exec", flags=0x400, dont_inherit=True)  # ast.PyCF_ONLY_AST
    except SyntaxError as error:
        return f"syntax error at line {error.lineno}, column {error.offset or 1}: {error.msg}"
    except (ValueError, UnicodeDecodeError):
        pass
    else:
        return f"LibCST cannot parse this file (syntax newer than it supports?): {_one_line(exc)}"
    return f"syntax error at line {getattr(exc, 'raw_line', '?')}: {_one_line(exc)}"


def _extra_edits(module, report: dict, positions: dict) -> Optional[list]:
    edits = []
    for node, replacement, whole_lines in report.get("extra_edits", ()):
        span = positions.get(id(node))
        if span is None:
            return None  # a node outside the tree: no fix rather than half of one
        if whole_lines:
            span = (span[0], 1, span[2] + 1, 1)
        text = replacement if isinstance(replacement, str) else module.code_for_node(replacement)
        edits.append([*span, text])
    return edits


def _culprit(exc: BaseException, rules) -> str:
    tb = exc.__traceback__
    names = {type(r).__module__: r.CODE for r in rules}
    culprit = "the indexer"
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module in names:
            culprit = f"rule {names[module]}"
        tb = tb.tb_next
    return culprit


def _internal(culprit: str, exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return f"internal error in {culprit}: names resolve in a cycle too deep to follow (please report this)"
    return f"internal error in {culprit}: {type(exc).__name__}: {_one_line(exc)} (please report this)"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return text[:300] or type(exc).__name__


def _shorten(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the whole scan -------------------------------------------------------------------------------
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
        self.use_cache = use_cache
        self._resolved_dirs: dict[Path, Path] = {}
        self.jobs = jobs
        self.codes = tuple(sorted(config.enabled_codes()))
        self.options = {code: config.rule_options(code) for code in self.codes}
        # Where each file runs (service, test, example, script, migration): the project's own
        # globs travel with the options to the workers.
        self.options[PATH_ROLES_KEY] = dict(config.path_roles)
        paths.configure(config.path_roles)
        self.fingerprint = hashlib.sha1(f"{__version__}:{_code_digest()}:{config.fingerprint()}".encode()).hexdigest()[:16]

    # paths
    def display(self, relative: str) -> str:
        absolute = self.root / relative
        try:
            return absolute.relative_to(self.cwd).as_posix()
        except ValueError:
            return os.path.relpath(absolute, self.cwd).replace(os.sep, "/")

    def _relative(self, path: Path) -> str:
        # Resolve the directory, not the file: a symlinked file keeps its own name. Directories
        # are resolved once each (realpath walks every component: a tenth of a warm scan).
        parent = self._resolved_dirs.get(path.parent)
        if parent is None:
            parent = self._resolved_dirs[path.parent] = path.parent.resolve()
        try:
            return (parent / path.name).relative_to(self.root).as_posix()
        except ValueError:
            return path.absolute().as_posix()

    def _excluded(self, relative: str) -> bool:
        patterns = (*self.config.exclude, *self.config.extend_exclude)
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

    def collect(self, targets: list[Path]) -> tuple[list[Path], dict[str, str], list[FileError]]:
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
                relative = self._relative(path)
                if not explicit_file and self._excluded(relative):
                    continue
                if path.suffix == ".py":
                    if path.is_symlink() and not path.exists():
                        errors.append(FileError(self.display(relative), "dangling symbolic link"))
                        continue
                    if not path.is_file():
                        continue
                    python.setdefault(relative, path)
        # Dependency and launcher files are read from the whole project, whatever was scanned.
        for path in discovery.candidate_files(self.root):
            relative = self._relative(path)
            if discovery.is_project_file(relative) and not self._excluded(relative):
                try:
                    if path.is_file() and path.stat().st_size <= discovery.MAX_PROJECT_FILE_BYTES:
                        project_texts[relative] = path.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
        return [python[k] for k in sorted(python)], project_texts, errors

    def scan(self, targets: list[Path], *, report_only: Optional[set[str]] = None) -> ScanResult:
        from otel_sqla_doctor.static.facts import ModuleFacts
        from otel_sqla_doctor.static.index import ProjectFiles, ProjectIndex

        files, project_texts, errors = self.collect(targets)
        self.notices: list[FileError] = []
        self.digests: dict[str, str] = {}
        outcomes: dict[str, dict] = {}
        suppression_texts: dict[str, str] = {}
        pending: list[tuple[str, Path, bytes]] = []
        for path in files:
            relative = self._relative(path)
            try:
                size = path.stat().st_size
                if size > MAX_FILE_BYTES:
                    too_big = f"skipped: {size / 1_000_000:.1f} MB is over the {MAX_FILE_BYTES // 1_000_000} MB limit"
                    mentioned = _mentions_stack(path)
                    if mentioned:  # it may hold the wiring: the scan is incomplete, and says so
                        errors.append(FileError(self.display(relative), f"{too_big}, and it mentions `{mentioned}`, so it was not checked; {_EXCLUDE_HINT}"))
                    else:  # generated data, a vendored bundle: nothing the rules look at
                        self.notices.append(FileError(self.display(relative), f"{too_big} (it mentions neither SQLAlchemy nor OpenTelemetry); {_EXCLUDE_HINT}"))
                    continue
                data = path.read_bytes()
            except OSError as exc:
                errors.append(FileError(self.display(relative), f"cannot read: {exc.strerror or exc}"))
                continue
            pending.append((relative, path, data))
            self.digests[self.display(relative)] = hashlib.blake2b(data, digest_size=16).hexdigest()  # what --fix may edit
            if suppressions.MARKER in data:
                suppression_texts[self.display(relative)] = data.decode("utf-8", errors="replace")

        # Nothing changed since the last scan (same files, same settings, same tool): the decided
        # findings are reused as they are, without loading any per-file facts.
        # (The key includes the working directory: reported paths are relative to it.)
        project_key = _project_key(f"{self.fingerprint}:{self.cwd}", pending, project_texts)
        reused = _load_result(self.root, self.fingerprint, project_key) if self.use_cache else None
        if reused is not None:
            findings, file_errors = reused
            return self._finish(findings, errors + file_errors, files, targets, report_only, suppression_texts)
        cache = _Cache(self.root, self.fingerprint) if self.use_cache else None

        def wanted_first(data: bytes) -> bool:
            # Only files that name the stack start the index; the rest join through imports
            # (rounds two and three). A rule's own words then decide whether it visits a file.
            return any(w in data for w in INDEX_WORDS)

        self._progress = _Progress(len(pending))
        try:
            first = [(r, p, d) for r, p, d in pending if wanted_first(d)]
            rest = [(r, p, d) for r, p, d in pending if not wanted_first(d)]
            self._analyze(first, outcomes, cache)
            # Second round: files that import a module the first round found (routes importing
            # `get_db` from `app.db`), so names resolve across modules.
            pattern = _importer_pattern(outcomes)
            if pattern is not None and rest:
                second = [(r, p, d) for r, p, d in rest if pattern.search(d)]
                self._analyze(second, outcomes, cache)
            # Third round: project modules those files import (a settings module holding the
            # database URL, a helper module returning SQL), so values resolve across modules.
            imported = _imported_modules(outcomes)
            if imported:
                third = [(r, p, d) for r, p, d in rest if r not in outcomes and not imported.isdisjoint(_module_names(r))]
                self._analyze(third, outcomes, cache)
        finally:
            self._progress.close()
        if cache is not None:
            cache.save()
            cache = None

        modules = []
        candidates: list[tuple[str, dict]] = []
        file_errors: list[FileError] = []
        for relative, outcome in sorted(outcomes.items()):
            if outcome.get("error"):
                file_errors.append(FileError(self.display(relative), outcome["error"]))
                continue
            # Popped: the JSON form is not needed once the cache is written, and holding both
            # forms of every module doubled the peak memory of a large scan.
            modules.append(ModuleFacts.from_json(outcome.pop("facts")))
            candidates.extend((relative, c) for c in outcome["candidates"])
        unparsed = [(r, d) for r, _, d in pending if r not in outcomes]
        findings: list[Finding] = []
        app_references = frozenset(m.decode() for _, _, d in pending if b":" in d for m in _APP_STRING.findall(d))
        for part in _partition(modules, candidates, project_texts, [r for r, _, _ in pending]):
            index = ProjectIndex(
                part.modules,
                ProjectFiles(part.texts),
                imported_elsewhere=_imports_by_regex([(r, d) for r, d in unparsed if part.owns(r)]),
            )
            index.async_paths = tuple(r for r, _, d in pending if b"async def" in d and part.owns(r))
            index.library_paths = frozenset(part.library)  # a shared library's modules start nothing here
            index.app_references = app_references
            found, problems = self._decide(index, part.candidates, project_rules=part.mentions_tracing())
            # A shared library's module is judged in its own project, with its own dependencies.
            findings += [f for f in found if part.owns(self._relative_of_display(f.path))]
            file_errors += problems
        findings = list(dict.fromkeys(findings))  # a shared library's finding, seen from two services
        if self.use_cache and not any(o.get("transient") for o in outcomes.values()):
            _save_result(self.root, self.fingerprint, project_key, findings, file_errors)
        return self._finish(findings, errors + file_errors, files, targets, report_only, suppression_texts)

    def _finish(self, findings, errors, files, targets, report_only, suppression_texts) -> ScanResult:
        # Dependency and launcher files are read from the whole project, but reported only where
        # the scan looks (`doctor scan src/` says nothing about ./pyproject.toml).
        findings = [f for f in findings if f.path.endswith(".py") or self._under_targets(f.path, targets)]
        if report_only is not None:
            findings = [f for f in findings if f.path in report_only]
            errors = [e for e in errors if e.path in report_only]
        if report_only is not None:
            suppression_texts = {p: t for p, t in suppression_texts.items() if p in report_only}
        findings, unused = suppressions.apply(findings, suppression_texts)
        result = ScanResult(findings=sorted(set(findings)), files_scanned=len(files), errors=sorted(set(errors)))
        notices = list(getattr(self, "notices", []))
        if report_only is not None:
            notices = [n for n in notices if n.path in report_only]
        result.notices = sorted(set(notices), key=lambda n: (n.path, n.message))
        result.unused_suppressions = unused
        result.digests = dict(getattr(self, "digests", {}))
        return result

    def _analyze(self, batch: list[tuple[str, Path, bytes]], outcomes: dict, cache: Optional["_Cache"]) -> None:
        todo: list[FileJob] = []
        for relative, path, data in batch:
            key = hashlib.blake2b(data, digest_size=16).hexdigest()
            cached = cache.get(relative, key) if cache else None
            if cached is not None:
                outcomes[relative] = cached
                self._tick()
                continue
            module, is_package = discovery.module_name(path.resolve() if not path.is_symlink() else path, self.root)
            todo.append(FileJob(str(path), relative, module, is_package, key))
        for job, outcome in zip(todo, self._run(todo)):
            outcomes[job.relative] = outcome
            self._tick()
            # Internal errors are not cached: the next run (or version) may not have the bug.
            if cache is not None and not outcome.get("transient") and not (outcome.get("error") or "").startswith("internal error"):
                cache.put(job.relative, job.key, outcome)

    def _tick(self, shown_only: bool = False) -> None:
        """One more file analysed. `shown_only`: while parsing, only redraw (counted when collected)."""
        progress = getattr(self, "_progress", None)
        if progress is not None:
            progress.tick(0 if shown_only else 1, pending=1 if shown_only else 0)

    def _run(self, todo: list[FileJob]) -> list[dict]:
        workers = self.jobs or os.cpu_count() or 1
        if workers <= 1 or len(todo) < PARALLEL_THRESHOLD:
            outcomes = []
            for job in todo:
                outcomes.append(analyze_file(job, self.codes, self.options))
                self._tick(shown_only=True)
                interrupts.check()
            return outcomes
        import multiprocessing

        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        chunk = max(1, len(todo) // (workers * 8))
        # multiprocessing.Pool rather than ProcessPoolExecutor: on Ctrl-C, terminate() stops the
        # workers at once, where the executor would finish every chunk already handed out.
        pool = context.Pool(workers, initializer=interrupts.ignore_in_worker)
        try:
            outcomes = []
            for outcome in pool.imap(_analyze_star, [(job, self.codes, self.options) for job in todo], chunksize=chunk):
                outcomes.append(outcome)  # imap keeps the order, and lets the progress line move
                self._tick(shown_only=True)
        except BaseException:
            pool.terminate()
            pool.join()
            raise
        pool.close()
        pool.join()
        interrupts.check()
        return outcomes

    def _decide(self, index, candidates: list[tuple[str, dict]], project_rules: bool = True) -> tuple[list[Finding], list[FileError]]:
        from otel_sqla_doctor.static.rule import Requirement
        from otel_sqla_doctor.static.rules import all_rules
        from otel_sqla_doctor.static.summary import from_json

        rules = {r.CODE: r for r in all_rules() if r.CODE in self.codes}
        findings: list[Finding] = []
        problems: list[FileError] = []  # a rule's bug while deciding: an error entry, not a dead scan
        for relative, candidate in candidates:
            rule = rules.get(candidate["code"])
            if rule is None:
                continue
            requirements = [Requirement(from_json(s), p, tuple(a)) for s, p, a in candidate["requires"]]
            try:
                if not all(r.holds(index) for r in requirements):
                    continue
            except Exception as exc:  # RecursionError included: one finding's question, not the scan
                problems.append(FileError(self.display(relative), _internal(f"rule {rule.CODE} (project index)", exc)))
                continue
            line, column, end_line, end_column = candidate["span"]
            fix = None
            if candidate["fix"]:
                f = candidate["fix"]
                fix = Fix(
                    description=f["description"],
                    safe=f["safe"],
                    edits=tuple(Edit(Span(*e[:4]), e[4]) for e in f["edits"]),
                    summary=f["summary"],
                )
            findings.append(self._finding(rule, relative, (line, column, end_line, end_column), candidate["message"], candidate["hint"], fix))
        # A rule may report a place from its file visitor (with a fix) and from its project check:
        # one finding, with the project check's message (it sees more) and the file visitor's fix.
        from_files = {(f.path, f.line, f.column, f.code): i for i, f in enumerate(findings)}
        for code, rule in (rules.items() if project_rules else ()):
            try:
                reports = list(rule.check_project(index, self.options.get(code, {})))
            except Exception as exc:  # one project rule's bug: an error naming it, the others still report
                problems.append(FileError(".", _internal(f"rule {code} (project check)", exc)))
                continue
            for report in reports:
                span = (report.line, report.column, report.end_line or report.line, report.end_column or report.column)
                finding = self._finding(
                    rule, report.path, span, report.message or rule.MESSAGE, report.hint or rule.HINT, None,
                    severity=getattr(report, "severity", None),
                )
                same = from_files.get((finding.path, finding.line, finding.column, finding.code))
                if same is None:
                    findings.append(finding)
                else:
                    findings[same] = dataclasses.replace(finding, fix=findings[same].fix)
        def role(relative: str):
            found = paths.role_of(relative)
            if found is paths.PathRole.SERVICE and relative in index.script_paths and not paths.configured_for(relative):
                return paths.PathRole.SCRIPT
            return found

        kept = [
            f for f in findings
            if f.code not in self.config.ignored_for(self._relative_of_display(f.path))
            and (not f.path.endswith(".py") or role(self._relative_of_display(f.path)) in rules[f.code].REPORTS_IN)
        ]
        return kept, problems

    def _under_targets(self, display: str, targets: list[Path]) -> bool:
        path = (self.cwd / display).resolve()
        for target in targets:
            target = target.resolve()
            if path == target or target in path.parents:
                return True
        return False

    def _relative_of_display(self, display: str) -> str:
        return self._relative(self.cwd / display)

    def _finding(self, rule, relative: str, span, message: str, hint: str, fix, severity: Optional[Severity] = None) -> Finding:
        severity = Severity(self.config.severity.get(rule.CODE, (severity or rule.SEVERITY).value))
        if fix is not None:  # what is shown masks URL passwords; the edits keep the code as it is
            fix = dataclasses.replace(fix, description=mask_url(fix.description), summary=fix.summary and mask_url(fix.summary))
        return Finding(
            path=self.display(relative),
            line=span[0],
            column=span[1],
            code=rule.CODE,
            name=rule.NAME,
            severity=severity,
            message=mask_url(message),
            end_line=span[2],
            end_column=span[3],
            hint=mask_url(hint) if hint else None,
            fix=fix,
        )


# -- one index per project of a repository -----------------------------------------------------------
# A directory with one of these is a project of its own (a service of a monorepo, an example with
# its own dependencies): its modules, dependency files and start-up are judged together, apart
# from the others. Two services may each have an `app` package; merged, one would shadow the other.
_PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "Pipfile")


@dataclass
class _Project:
    root: str  # "" for the scan root, else "services/api/"
    inner: tuple  # roots of the projects nested inside this one
    modules: list = field(default_factory=list)
    candidates: list = field(default_factory=list)
    texts: dict = field(default_factory=dict)
    library: set = field(default_factory=set)  # paths of other projects' modules it imports

    def owns(self, relative: str) -> bool:
        return relative.startswith(self.root) and not any(relative.startswith(r) for r in self.inner)

    def mentions_tracing(self) -> bool:
        """Whether the project's own code or files touch OpenTelemetry: every project rule is about
        tracing, so a project of a repository that does not (its tests, a tool) needs none of them."""
        if self.root == "" and not self.inner:
            return True
        for facts in self.modules:
            if self.owns(facts.path) and any(s.module.split(".", 1)[0] in ("opentelemetry", "logfire") for s in facts.imports):
                return True
        return any("opentelemetry" in text or "logfire" in text for text in self.texts.values())


def _partition(modules: list, candidates: list, texts: dict, paths: list) -> list[_Project]:
    """The scanned files split by the nearest project root. Each project also sees the modules
    of the others that it imports and does not define itself (a shared library of the repository)."""
    roots = {""}
    for relative in [*texts, *paths]:
        directory, _, name = relative.rpartition("/")
        root = f"{directory}/" if directory else ""
        # Only a directory with Python code of its own: a `docker/Dockerfile` belongs to the
        # project around it.
        if (name in _PROJECT_MARKERS or name.startswith("Dockerfile")) and any(p.startswith(root) for p in paths):
            roots.add(root)
    # Without marker files, two directories that each hold a package (or script) of the same
    # name are two programs (`svc_a/app/`, `svc_b/app/`; `examples/x/main.py`, `examples/y/main.py`).
    sources: dict[str, set[str]] = {}
    for facts in modules:
        sources.setdefault(facts.module.split(".", 1)[0], set()).add(_source_root(facts))
    for found in sources.values():
        if len(found) > 1:
            roots |= found
    if len(roots) == 1:
        return [_Project("", (), list(modules), list(candidates), dict(texts))]
    ordered = sorted(roots, key=len, reverse=True)  # the nearest root first
    projects = {r: _Project(r, tuple(o for o in roots if o != r and o.startswith(r))) for r in roots}

    def home(relative: str) -> _Project:
        return projects[next(r for r in ordered if relative.startswith(r))]

    for facts in modules:
        home(facts.path).modules.append(facts)
    for relative, candidate in candidates:
        home(relative).candidates.append((relative, candidate))
    for relative, text in texts.items():
        home(relative).texts[relative] = text
    by_name: dict[str, list] = {}
    for facts in modules:
        by_name.setdefault(facts.module, []).append(facts)
    for project in projects.values():
        own_tops = {m.module.split(".", 1)[0] for m in project.modules}
        seen: set[str] = set()
        frontier = list(project.modules)
        while frontier:
            wanted: set[str] = set()
            for facts in frontier:
                for site in facts.imports:
                    if site.module.split(".", 1)[0] in own_tops:
                        continue
                    # The module, the packages above it (their __init__ runs first), and for
                    # `from pkg import mod` the submodule.
                    parts = site.module.split(".")
                    wanted.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
                    wanted.update(f"{site.module}.{name}" for name in site.names)
            frontier = []
            for name in sorted(wanted - seen):
                seen.add(name)
                library = [m for m in by_name.get(name, ()) if not project.owns(m.path)]
                project.modules += library
                project.library.update(m.path for m in library)
                frontier += library
    return [p for p in projects.values() if p.candidates or any(p.owns(m.path) for m in p.modules)]


# "svc.web.application:get_app" in a call to a server (uvicorn.run, gunicorn's wsgi_app, ...).
_APP_STRING = re.compile(rb"""["']([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+):[A-Za-z_]\w*(?:\(\))?["']""")


def _source_root(facts) -> str:
    """The directory a module's top-level package (or the script itself) sits in: "svc_a/"."""
    parts = facts.path.split("/")
    depth = len(facts.module.split(".")) + (1 if facts.path.endswith("/__init__.py") or facts.path == "__init__.py" else 0)
    kept = parts[: max(0, len(parts) - depth)]
    return "/".join(kept) + "/" if kept else ""


def _analyze_star(args) -> dict:
    return analyze_file(*args)


_IMPORT_LINE = re.compile(
    rb"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]*)|import[ \t]+([^\n#]+))", re.M
)


def _imports_by_regex(files: list[tuple[str, bytes]]) -> set[str]:
    """Module names imported by files we did not parse, found without parsing them (cheap, approximate)."""
    names: set[str] = set()
    for relative, data in files:
        if b"import" not in data:
            continue
        package = relative[:-3].split("/")[:-1] if relative.endswith(".py") else []
        for match in _IMPORT_LINE.finditer(data):
            source, imported, plain = match.groups()
            if plain is not None:
                for item in plain.decode("utf-8", "replace").split(","):
                    module = item.strip().split(" as ")[0].strip()
                    if module:
                        names.add(module)
                continue
            module = source.decode("utf-8", "replace")
            if module.startswith("."):
                level = len(module) - len(module.lstrip("."))
                base = package[: len(package) - (level - 1)] if level - 1 <= len(package) else []
                rest = module.lstrip(".")
                module = ".".join([*base, rest] if rest else base)
            names.add(module)
            for item in imported.decode("utf-8", "replace").strip("()").replace("\n", " ").split(","):
                name = item.strip().split(" as ")[0].strip()
                if name and name != "*":
                    names.add(f"{module}.{name}" if module else name)
    return names


def _project_key(fingerprint: str, pending: list, project_texts: dict) -> str:
    digest = hashlib.blake2b(fingerprint.encode(), digest_size=16)
    for relative, _, data in sorted(pending, key=lambda item: item[0]):
        digest.update(relative.encode() + b"\0" + hashlib.blake2b(data, digest_size=16).digest())
    for relative, text in sorted(project_texts.items()):
        digest.update(relative.encode() + b"\0" + text.encode("utf-8", "replace"))
    return digest.hexdigest()


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


def _load_result(root: Path, fingerprint: str, key: str):
    try:
        data = json.loads(_result_path(root, fingerprint).read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        return [_finding_from_json(f) for f in data["findings"]], [FileError(**e) for e in data["errors"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or unreadable: decide again (and rewrite it)


def _save_result(root: Path, fingerprint: str, key: str, findings: list, errors: list) -> None:
    target = _result_path(root, fingerprint)
    try:
        target.parent.mkdir(exist_ok=True)
        ignore = target.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# Created by otel-sqla-doctor\n*\n", encoding="utf-8")
        payload = {"key": key, "findings": [_finding_to_json(f) for f in findings], "errors": [e.to_dict() for e in errors]}
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(payload))
        os.replace(tmp, target)
    except OSError:
        pass


def _imported_modules(outcomes: dict[str, dict]) -> set[str]:
    names: set[str] = set()
    for outcome in outcomes.values():
        for site in (outcome.get("facts") or {}).get("imports", ()):
            module = site["module"]
            names.add(module)
            names.update(f"{module}.{name}" for name in site["names"] if name != "*")
    return names


def _module_names(relative: str) -> set[str]:
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


def _importer_pattern(outcomes: dict[str, dict]) -> Optional["re.Pattern[bytes]"]:
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


def _code_digest() -> str:
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


# -- cache ---------------------------------------------------------------------------------------
class _Cache:
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
                self.notice = f"discarded an unreadable cache ({self.path.name}: {_one_line(exc)})"
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
