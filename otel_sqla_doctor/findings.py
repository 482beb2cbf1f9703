"""Plain data that the scan produces: findings, fixes and per-file errors.

Frozen dataclasses, so results are hashable, comparable and safe to pass between processes.
Lines are 1-based; columns are 1-based too (as in ruff and SARIF).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, order=True)
class Span:
    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class Edit:
    """Replace the source text between two (line, column) positions (1-based, end exclusive)."""

    span: Span
    replacement: str


@dataclass(frozen=True)
class Fix:
    """An automatic fix: what it does, whether it is safe, and the edits to one file."""

    description: str
    safe: bool
    edits: tuple[Edit, ...] = ()
    # Short replacement text shown to the user (the JSON `fix` field).
    summary: str | None = None


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    column: int
    code: str
    name: str = field(compare=False)
    severity: Severity = field(compare=False)
    message: str = field(compare=False)
    end_line: int = field(compare=False, default=0)
    end_column: int = field(compare=False, default=0)
    hint: str | None = field(compare=False, default=None)
    fix: Fix | None = field(compare=False, default=None)

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line or self.line,
            "end_column": self.end_column or self.column,
            "message": self.message,
            "fix": (self.fix.summary or self.fix.description) if self.fix else None,
        }


@dataclass(frozen=True, order=True)
class FileError:
    path: str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ScanResult:
    findings: list[Finding]
    files_scanned: int
    errors: list[FileError]
    # Filled by --fix / --diff.
    fixed: dict[str, int] = field(default_factory=dict)
    diff: str = ""
    # (path, Suppression) pairs that silenced nothing; shown with --report-unused-ignores.
    unused_suppressions: list = field(default_factory=list)
    show_unused_suppressions: bool = False
    # display path -> content digest of the exact bytes the scan read (--fix edits only those).
    digests: dict = field(default_factory=dict)
    # Per-file notes that do not make the run fail (a big file that does not mention the stack).
    notices: list[FileError] = field(default_factory=list)

    def to_dict(self, version: str) -> dict:
        return {
            "version": version,
            "findings": [f.to_dict() for f in self.findings],
            "files_scanned": self.files_scanned,
            "errors": [e.to_dict() for e in self.errors],
            **({"notices": [n.to_dict() for n in self.notices]} if self.notices else {}),
            **(
                {"unused_ignores": [{"path": p, "line": s.line, "column": s.column, "comment": s.describe()} for p, s in self.unused_suppressions]}
                if self.show_unused_suppressions
                else {}
            ),
        }
