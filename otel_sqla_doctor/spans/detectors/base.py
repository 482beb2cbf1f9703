"""What every span detector is: a code, a name, its docs, and two hooks (per trace, at the end)."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from otel_sqla_doctor.spans.model import Finding

if TYPE_CHECKING:
    from otel_sqla_doctor.spans.trace import TraceView


@dataclass(frozen=True)
class Options:
    """Thresholds the user can change (`doctor spans --help`)."""

    n_plus_one_threshold: int = 5
    literal_threshold: int = 3
    pool_gap_ms: float = 100.0
    select: frozenset[str] = field(default_factory=frozenset)  # empty: all
    ignore: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Occurrence:
    """One sighting of a problem. Sightings with the same (code, key) become one Finding; the one
    with the highest weight is the example shown."""

    key: tuple[Any, ...]
    weight: float
    finding: Finding


class Detector:
    CODE: ClassVar[str]
    NAME: ClassVar[str]
    SEVERITY: ClassVar[str] = "warning"
    SUMMARY: ClassVar[str]  # one line for `doctor rules`
    FIX: ClassVar[str]

    def __init__(self, options: Options) -> None:
        self.options = options

    def visit_trace(self, trace: TraceView) -> Iterable[Occurrence]:
        return ()

    def finish(self) -> Iterable[Occurrence]:
        return ()

    # helpers
    def occurrence(
        self,
        key: tuple[Any, ...],
        weight: float,
        message: str,
        *,
        trace_id: str | None,
        span_id: str | None,
        details: dict[str, Any],
    ) -> Occurrence:
        finding = Finding(
            code=self.CODE,
            name=self.NAME,
            severity=self.SEVERITY,
            message=message,
            fix=self.FIX,
            trace_id=trace_id,
            span_id=span_id,
            details=details,
        )
        return Occurrence(key, weight, finding)

    @classmethod
    def docs(cls) -> str:
        """The rule's documentation: its module docstring (What it does / Why is this bad? / ...)."""
        module = inspect.getmodule(cls)
        return inspect.cleandoc(module.__doc__ or "") if module else ""


def ms(ns: float) -> float:
    return round(ns / 1e6, 3)
