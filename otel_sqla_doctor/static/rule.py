"""The rule base class: one rule is one self-contained module (as in Fixit).

A rule carries its documentation (the class docstring, under ruff's headings), its code, name,
severity and message, its good and bad examples (`VALID` / `INVALID`, which are also its tests),
and its logic: LibCST-style `visit_<Node>` methods that run per file in one shared walk, and/or a
`check_project(index)` classmethod for checks that need the whole project.

A per-file report may depend on other modules ("is this name an AsyncEngine?"). Such a report
carries `requires=`; it is kept with the file's cached results and decided once the project index
exists, so a file is parsed once whatever the other files say.
"""

from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Optional, Union

from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.static.paths import PathRole
from otel_sqla_doctor.static.summary import Summary

Source = Union[str, dict]  # one file's code, or {relative path: code} for a whole small project


@dataclass(frozen=True)
class Valid:
    """Code the rule must not report."""

    code: Source
    note: str = ""
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Invalid:
    """Code the rule must report, on exactly the lines that end with `# ERROR`.

    `expected_fix` is the code after the rule's fix (for one file) or {path: code}.
    """

    code: Source
    note: str = ""
    expected_fix: Optional[Source] = None
    options: dict = field(default_factory=dict)
    unsafe_fixes: bool = False


@dataclass(frozen=True)
class Requirement:
    """A condition on the project index: `predicate(index, summary, argument)` must hold."""

    summary: Summary
    predicate: str  # "kind_in" | "not_kind_in" | "qualname_in" | "check"
    argument: tuple

    def holds(self, index: Any) -> bool:
        if self.predicate == "kind_in":
            return index.kind_of(self.summary) in self.argument
        if self.predicate == "not_kind_in":
            return index.kind_of(self.summary) not in self.argument
        if self.predicate == "qualname_in":
            return index.qualname_of(self.summary) in self.argument
        if self.predicate == "check":
            # A rule's own test on the index: ("package.module:function", *extra arguments).
            import importlib

            module, _, name = self.argument[0].partition(":")
            return bool(getattr(importlib.import_module(module), name)(index, self.summary, *self.argument[1:]))
        raise ValueError(f"unknown predicate {self.predicate}")

    def to_json(self) -> list:
        return [self.summary, self.predicate, list(self.argument)]


def kind_in(summary: Optional[Summary], *kinds: str) -> Requirement:
    return Requirement(summary or ("unknown",), "kind_in", tuple(kinds))


def qualname_in(summary: Optional[Summary], *names: str) -> Requirement:
    return Requirement(summary or ("unknown",), "qualname_in", tuple(names))


def check(summary: Optional[Summary], function: str, *arguments: Any) -> Requirement:
    """`function(index, summary, *arguments)` must be true; `function` is "package.module:name".

    For questions the kind tables cannot answer (e.g. "does this helper return an f-string?").
    The arguments must be JSON-serialisable: requirements are cached with the file's results.
    """
    return Requirement(summary or ("unknown",), "check", (function, *arguments))


@dataclass(frozen=True)
class ProjectReport:
    """What `check_project` returns: a place in a file and what is wrong there."""

    path: str
    line: int
    column: int = 1
    end_line: int = 0
    end_column: int = 0
    message: Optional[str] = None
    hint: Optional[str] = None
    # Overrides the rule's SEVERITY for this report (a user's `severity` setting still wins).
    severity: Optional[Severity] = None


class Rule:
    """Base class of every rule. Subclasses set the class attributes and add visitors."""

    CODE: ClassVar[str] = ""
    NAME: ClassVar[str] = ""
    FAMILY: ClassVar[str] = ""
    SEVERITY: ClassVar[Severity] = Severity.WARNING
    MESSAGE: ClassVar[str] = ""
    HINT: ClassVar[str] = ""
    # The file visitor runs only on files whose bytes contain one of these (empty: never runs).
    PREFILTER: ClassVar[tuple[bytes, ...]] = ()
    # "safe", "unsafe" or None: whether the rule has a fix and whether it may change behaviour.
    FIX: ClassVar[Optional[str]] = None
    DEFAULT_ENABLED: ClassVar[bool] = True
    # Where the rule reports (`paths.role_of`): the harm some mistakes do needs production traffic,
    # which a test body never sees. A rule that needs more or less says so, and why, in its docs.
    REPORTS_IN: ClassVar[frozenset[PathRole]] = frozenset({PathRole.SERVICE, PathRole.EXAMPLE, PathRole.SCRIPT, PathRole.MIGRATION})
    REPORTS_IN_WHY: ClassVar[str] = "Tests set up tracing their own way (in-memory exporters, a provider per test)."
    # Options a user can set under [tool.otel-sqla-doctor.options.<CODE>], with their defaults.
    OPTIONS: ClassVar[dict[str, Any]] = {}
    VALID: ClassVar[list[Valid]] = []
    INVALID: ClassVar[list[Invalid]] = []

    def __init__(self, ctx: Any, options: Optional[dict] = None) -> None:
        self.ctx = ctx
        self.options = {**self.OPTIONS, **(options or {})}
        self.reports: list[dict] = []

    def report(
        self,
        node: Any,
        message: Optional[str] = None,
        *,
        requires: Iterable[Requirement] = (),
        replacement: Any = None,
        fix_description: Optional[str] = None,
        hint: Optional[str] = None,
        unsafe: Optional[bool] = None,
        replaces: Any = None,
        extra_edits: Iterable[tuple[Any, Any, bool]] = (),
    ) -> None:
        """Report `node`. `replacement` (a CST node or code) makes the report fixable.

        The replacement rewrites `node`, or `replaces` (another node of the same file) when given:
        e.g. a finding on a call whose fix edits the constant it was given.
        """
        self.reports.append(
            {
                "node": node,
                "chain": tuple(getattr(self.ctx, "statements", ())),
                "message": message or self.MESSAGE,
                "hint": hint or self.HINT,
                "requires": tuple(requires),
                "replacement": replacement,
                "fix_description": fix_description,
                "unsafe": (self.FIX == "unsafe") if unsafe is None else unsafe,
                "replaces": replaces,
                # More edits of the same fix: (node, replacement, whole_lines). With whole_lines,
                # the edit spans the node's lines completely (to delete a statement with its line).
                "extra_edits": tuple(extra_edits),
            }
        )

    @classmethod
    def check_project(cls, index: Any, options: dict) -> Iterable[ProjectReport]:
        return ()

    @classmethod
    def has_file_visitor(cls) -> bool:
        return any(name.startswith(("visit_", "leave_")) for name in dir(cls))

    @classmethod
    def applies_to(cls, data: bytes) -> bool:
        return any(word in data for word in cls.PREFILTER)

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def summary(cls) -> str:
        return cls.documentation().split("\n\n", 1)[0].replace("\n", " ").strip()

    @classmethod
    def section(cls, heading: str) -> str:
        """The text under `## heading` in the docs (empty when absent)."""
        text = cls.documentation()
        marker = f"## {heading}"
        if marker not in text:
            return ""
        body = text.split(marker, 1)[1]
        return textwrap.dedent(body.split("\n## ", 1)[0]).strip()
