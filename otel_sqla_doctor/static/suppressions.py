"""`# doctor: ignore[OSD301]` comments: which findings they silence, and which silence nothing.

A comment applies to its own line and, when it sits on the first line of a multi-line statement,
to every line of that statement (found with the tokenizer's logical lines).
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field
from typing import Optional

from otel_sqla_doctor.findings import Finding

SUPPRESSION = re.compile(r"#\s*doctor:\s*ignore(?:\[(?P<codes>[^\]]*)\])?", re.I)
MARKER = b"doctor:"


@dataclass
class Suppression:
    line: int
    column: int
    codes: Optional[frozenset[str]]  # None: every code
    covers: range
    used: set[str] = field(default_factory=set)

    def matches(self, finding: Finding) -> bool:
        return finding.line in self.covers and (self.codes is None or finding.code in self.codes)

    def describe(self) -> str:
        return "# doctor: ignore" + ("" if self.codes is None else f"[{', '.join(sorted(self.codes))}]")


def parse(text: str) -> list[Suppression]:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        tokens = []
    found: list[Suppression] = []
    statement_end: dict[int, int] = {}
    start = None
    for token in tokens:
        if token.type in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING):
            continue
        if start is None:
            start = token.start[0]
        if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            statement_end[start] = max(token.start[0], start)
            start = None
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        match = SUPPRESSION.search(token.string)
        if not match:
            continue
        codes = match.group("codes")
        parsed = None if codes is None else frozenset(c.strip().upper() for c in codes.split(",") if c.strip())
        line = token.start[0]
        found.append(Suppression(line, token.start[1] + 1, parsed, range(line, statement_end.get(line, line) + 1)))
    return found


def apply(findings: list[Finding], texts: dict[str, str]) -> tuple[list[Finding], list[tuple[str, Suppression]]]:
    """(findings left, unused suppressions as (path, suppression)) for files with suppressions."""
    tables = {path: parse(text) for path, text in texts.items()}
    kept: list[Finding] = []
    for finding in findings:
        silenced = False
        for suppression in tables.get(finding.path, ()):
            if suppression.matches(finding):
                suppression.used.add(finding.code)
                silenced = True
        if not silenced:
            kept.append(finding)
    unused: list[tuple[str, Suppression]] = []
    for path, table in sorted(tables.items()):
        for suppression in table:
            if not suppression.used:
                unused.append((path, suppression))
            elif suppression.codes is not None and suppression.codes - suppression.used:
                unused.append((path, Suppression(suppression.line, suppression.column, frozenset(suppression.codes - suppression.used), suppression.covers)))
    return kept, unused


def unknown_codes(unused: list[tuple[str, Suppression]], known: frozenset[str]) -> list[str]:
    """One warning line (without the `doctor: warning:` prefix) per code in a `# doctor: ignore[...]`
    comment that names no rule: a typo there silences nothing, so it is never silent itself.
    Only unused suppressions can hold one, since an unknown code matches no finding."""
    lines: list[str] = []
    for path, suppression in unused:
        for code in sorted(suppression.codes or ()):
            if code not in known:
                lines.append(f"{path}:{suppression.line}:{suppression.column}: unknown rule code {code!r} in `# doctor: ignore[...]` (see `doctor rules`)")
    return lines


def known_codes() -> frozenset[str]:
    # The generated catalogue, not the rules: importing them imports LibCST (a warm scan must not).
    from otel_sqla_doctor.static.rule_catalog import RULES

    return frozenset(code for code, _, _, _ in RULES)
