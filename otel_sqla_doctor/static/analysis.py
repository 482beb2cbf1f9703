"""Per-file analysis: parse one file with LibCST, run the indexer and every enabled file rule over
it in one walk, and locate what they found. Runs in worker processes (`run_jobs`); its outcome,
a JSON-ready dict, is what the per-file cache stores.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

from otel_sqla_doctor import interrupts
from otel_sqla_doctor.static import paths

PARALLEL_THRESHOLD = 24  # below this many files to parse, a process pool costs more than it saves
PATH_ROLES_KEY = "path-roles"  # in the options handed to workers, beside the rule codes
CHANGED_DURING_SCAN = "changed during the scan, run again"


@dataclass
class FileJob:
    path: str  # absolute
    relative: str  # relative to the project root, POSIX
    module: str
    is_package: bool
    key: str  # content hash + tool version + configuration


def _rule_classes(codes: Iterable[str]):
    from otel_sqla_doctor.static.rules import all_rules

    wanted = set(codes)
    return [r for r in all_rules() if r.CODE in wanted]


def analyze_file(job: FileJob, codes: tuple[str, ...], options: dict) -> dict:
    """Parse one file and run the indexer and every enabled file rule over it, in one walk."""
    try:
        data = Path(job.path).read_bytes()
    except OSError as exc:
        return {"error": f"cannot read: {exc.strerror or exc}"}
    if hashlib.blake2b(data, digest_size=16).hexdigest() != job.key:
        # Saved since the scan read it: positions (and fixes) must come from the bytes it keyed.
        return {"error": CHANGED_DURING_SCAN, "transient": True}
    outcome = analyze_source(data, job.relative, job.module, job.is_package, codes, options)
    outcome["digest"] = outcome_digest(outcome)  # computed here, in the worker
    return outcome


def outcome_digest(outcome: dict) -> str:
    """A digest of a file's outcome (its facts, candidates and errors): what the decision reads."""
    body = {k: v for k, v in outcome.items() if k != "digest"}
    return hashlib.blake2b(json.dumps(body, sort_keys=True, separators=(",", ":")).encode(), digest_size=16).hexdigest()


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
        return {"error": f"cannot decode: {one_line(exc)} (save it as UTF-8 or declare its coding)"}
    except RecursionError:
        return {"error": "too deeply nested to parse"}
    except Exception as exc:  # LibCST's own CSTLogicError / validation errors on valid Python
        return {"error": f"internal error in the LibCST parser: {type(exc).__name__}: {one_line(exc)} (please report this)"}

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
        Walker([ctx, indexer, *rules]).walk(module)
    except RecursionError:
        return {"error": "too deeply nested to analyse"}
    except Exception as exc:  # a bug in one rule must not stop the scan
        culprit = _culprit(exc, rules)
        return {"error": f"internal error in {culprit}: {type(exc).__name__}: {one_line(exc)} (please report this)"}

    try:
        return _collect(module, data, facts, indexer, rules, errors)
    except RecursionError:
        return {"error": "too deeply nested to analyse"}
    except Exception as exc:  # positions and fixes of one file must not stop the scan either
        return {"error": f"internal error while locating findings: {type(exc).__name__}: {one_line(exc)} (please report this)"}


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
        return f"LibCST cannot parse this file (syntax newer than it supports?): {one_line(exc)}"
    return f"syntax error at line {getattr(exc, 'raw_line', '?')}: {one_line(exc)}"


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


def internal_error(culprit: str, exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return f"internal error in {culprit}: names resolve in a cycle too deep to follow (please report this)"
    return f"internal error in {culprit}: {type(exc).__name__}: {one_line(exc)} (please report this)"


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return text[:300] or type(exc).__name__


def _shorten(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_jobs(todo: list[FileJob], codes: tuple[str, ...], options: dict, jobs: Optional[int], shown: Callable[[], None]) -> list[dict]:
    """Each job's outcome, in order: in this process for a few files, else in a process pool.
    `shown` is called as each outcome arrives (the progress line)."""
    workers = jobs or os.cpu_count() or 1
    if workers <= 1 or len(todo) < PARALLEL_THRESHOLD:
        outcomes = []
        for job in todo:
            outcomes.append(analyze_file(job, codes, options))
            shown()
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
        for outcome in pool.imap(_analyze_star, [(job, codes, options) for job in todo], chunksize=chunk):
            outcomes.append(outcome)  # imap keeps the order, and lets the progress line move
            shown()
    except BaseException:
        pool.terminate()
        pool.join()
        raise
    pool.close()
    pool.join()
    interrupts.check()
    return outcomes


def _analyze_star(args) -> dict:
    return analyze_file(*args)
