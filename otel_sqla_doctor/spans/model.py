"""The data the span analysis works on and returns: plain, format-independent, JSON-ready."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

KIND_NAMES = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")



class Span:
    """One span, whatever file format it came from. `end_ns` is None for a span never ended."""

    __slots__ = (
        "trace_id", "span_id", "parent_id", "name", "kind", "start_ns", "end_ns", "attributes", "scope", "service",
        "statement", "db_system", "is_db",
    )

    def __init__(
        self,
        trace_id: str,
        span_id: str,
        parent_id: str | None,
        name: str,
        kind: str,
        start_ns: int,
        end_ns: int | None,
        attributes: dict[str, Any],
        scope: str | None,
        service: str | None,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.name = name
        self.kind = kind
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.attributes = attributes
        self.scope = scope
        self.service = service
        # read once here: the detectors ask for these on every span
        statement = attributes.get("db.statement") or attributes.get("db.query.text")
        self.statement: str | None = statement if isinstance(statement, str) else None
        system = attributes.get("db.system") or attributes.get("db.system.name")
        self.db_system: str | None = None if system is None else str(system)
        self.is_db: bool = self.db_system is not None

    @property
    def ended(self) -> bool:
        return self.end_ns is not None

    @property
    def duration_ns(self) -> int:
        return (self.end_ns - self.start_ns) if self.end_ns is not None else 0

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Span({self.name!r}, trace={self.trace_id[:8]}, id={self.span_id}, parent={self.parent_id})"


@dataclass(frozen=True)
class Finding:
    """One problem found in the spans, with its evidence. `occurrences` counts the traces (or
    parents) where the same pattern was seen; `details` holds the worst occurrence's numbers."""

    code: str
    name: str
    severity: str
    message: str
    fix: str
    trace_id: str | None = None
    span_id: str | None = None
    occurrences: int = 1
    trace_ids: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["trace_ids"] = list(self.trace_ids)
        return out


@dataclass(frozen=True)
class FileSummary:
    path: str
    format: str
    spans: int  # spans read from the file, duplicates included
    warnings: tuple[str, ...] = ()
    why_empty: str | None = None  # when no span was read: the file is empty, or what was skipped

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["why_empty"]
        out["warnings"] = list(self.warnings)
        return out


@dataclass(frozen=True)
class WaterfallSpan:
    span_id: str
    parent_id: str | None
    name: str
    start_ms: float  # from the trace's first start
    duration_ms: float | None  # None: never ended
    depth: int
    db: bool
    statement: str | None
    marks: tuple[str, ...]  # finding codes this span is evidence for

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["marks"] = list(self.marks)
        return out


@dataclass(frozen=True)
class TraceSummary:
    """One trace in a line: what it was, how much database work it did, what was found in it."""

    trace_id: str
    root: str
    service: str | None
    spans: int
    db_spans: int
    db_ms: float
    duration_ms: float
    codes: tuple[str, ...]
    waterfall: tuple[WaterfallSpan, ...] = ()

    def to_dict(self, *, waterfall: bool = True) -> dict[str, Any]:
        out = {
            "trace_id": self.trace_id,
            "root": self.root,
            "service": self.service,
            "spans": self.spans,
            "db_spans": self.db_spans,
            "db_ms": round(self.db_ms, 3),
            "duration_ms": round(self.duration_ms, 3),
            "codes": list(self.codes),
        }
        if waterfall:
            out["waterfall"] = [s.to_dict() for s in self.waterfall]
        return out


@dataclass(frozen=True)
class SpanStats:
    spans: int = 0
    traces: int = 0
    db_spans: int = 0
    unended_spans: int = 0
    split_traces: int = 0  # traces analysed in pieces because the stream window closed on them
    duplicates: int = 0  # spans dropped because the same (trace id, span id) was read before

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SpanReport:
    """Everything `doctor spans` / `doctor trace` found. `traces` holds the worst traces only."""

    files: tuple[FileSummary, ...]
    stats: SpanStats
    findings: tuple[Finding, ...]
    traces: tuple[TraceSummary, ...]
    notes: tuple[str, ...] = ()
    checks: tuple[tuple[str, str], ...] = ()  # (code, name) of every detector that ran
    errors: tuple[str, ...] = ()  # what makes the run not a success whatever was found (a failed command)

    @property
    def checked(self) -> bool:
        """Whether the detectors had anything to look at: with no span, they checked nothing."""
        return self.stats.spans > 0

    @property
    def exit_code(self) -> int:
        return 1 if self.findings else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "files": [f.to_dict() for f in self.files],
            "stats": self.stats.to_dict(),
            "checks": [{"code": c, "name": n} for c, n in self.checks],
            "findings": [f.to_dict() for f in self.findings],
            "traces": [t.to_dict() for t in self.traces],
            "notes": list(self.notes),
            "errors": list(self.errors),
        }
