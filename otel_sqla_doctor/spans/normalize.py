"""Reduce a SQL statement to its shape: the text with values, placeholders and comments taken out.

Two executions of the same code path give the same shape whatever values they carried and however
they carried them (`:name`, `$1::INTEGER`, `%s`, `%(name)s`, `?`, or a literal pasted into the
text), so the shape is what the detectors group by:

    SELECT * FROM t WHERE id = $1::INTEGER /*traceparent='00-...'*/   ->  SELECT * FROM t WHERE id = ?
    SELECT * FROM t WHERE id IN (1, 2, 3)                             ->  SELECT * FROM t WHERE id IN (?)

`Shape.literals` keeps the literal values that were in the text (numbers and quoted strings), which
is how OSD602 tells interpolated SQL from bound parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<comment>/\*(?:.*?\*/|.*)|--[^\n]*)
  | (?P<string>(?:[EeBbXxNn](?='))?'(?:[^']|'')*')
  | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$(?:.*?\$(?P=tag)?\$|.*))
  | (?P<qident>"(?:[^"]|"")*"|`[^`]*`)
  | (?P<cast>::\s*[A-Za-z_]\w*(?:\s+(?:with|without|varying|precision)(?:\s+time\s+zone)?)?(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?(?:\[\])*)
  | (?P<param>\$\d+|%\(\w+\)s|%s|\?|(?<![:\w]):[A-Za-z_]\w*)
  | (?P<number>(?<![\w.])(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<word>[A-Za-z_][\w$]*)
  | (?P<ws>\s+)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL | re.IGNORECASE,
)
# An unterminated comment or dollar quote runs to the end of the text (as the server reads it), in
# one match: trying to close it again at every later opener would make hostile text quadratic.
_LIST = re.compile(r"\?(?:\s*,\s*\?)+")
_ROWS = re.compile(r"\(\?\)(?:\s*,\s*\(\?\))+")
_SPACE_BEFORE = re.compile(r"\s+([,)\]])")
_SPACE_AFTER = re.compile(r"([(\[])\s+")
_TRANSACTION = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|START\s+TRANSACTION|SAVEPOINT|RELEASE|END)\b|^\s*;?\s*$", re.I)


@dataclass(frozen=True)
class Shape:
    """A statement's shape, and the literal values its text carried."""

    text: str
    literals: tuple[str, ...]

    @property
    def has_literals(self) -> bool:
        return bool(self.literals)


def _normalize(sql: str) -> Shape:
    out: list[str] = []
    literals: list[str] = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        if kind == "comment":
            if out and out[-1] != " ":
                out.append(" ")
        elif kind == "string" or kind == "dollar" or kind == "number":
            out.append("?")
            literals.append(match.group())
        elif kind == "param":
            out.append("?")
        elif kind == "cast":
            if not out or out[-1] != "?":  # keep real casts (col::text), drop placeholder casts
                out.append(match.group())
        elif kind == "ws":
            if out and out[-1] != " ":
                out.append(" ")
        elif kind == "tag":  # pragma: no cover - named group inside `dollar`
            pass
        else:
            out.append(match.group())
    text = "".join(out).strip()
    text = _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", text))
    text = _ROWS.sub("(?)", _LIST.sub("?", text))
    text = text.rstrip("; ").strip()
    return Shape(text, tuple(literals))


class Normalizer:
    """normalize() with a bounded cache: a trace repeats the same few statements many times."""

    def __init__(self, max_entries: int = 20_000) -> None:
        self._cache: dict[str, Shape] = {}
        self._max = max_entries

    def __call__(self, sql: str) -> Shape:
        shape = self._cache.get(sql)
        if shape is None:
            shape = _normalize(sql)
            if len(self._cache) >= self._max:
                self._cache.clear()
            self._cache[sql] = shape
        return shape


def normalize(sql: str) -> Shape:
    """The shape of one statement (uncached; see Normalizer for the cached form)."""
    return _normalize(sql)


def is_transaction_control(sql: str) -> bool:
    """BEGIN / COMMIT / ROLLBACK / SAVEPOINT and empty statements: repeated by design, never N+1."""
    return bool(_TRANSACTION.match(sql))


def strip_comments(sql: str) -> str:
    """The statement without its comments (sqlcommenter's traceparent makes every text unique)."""
    return "".join(m.group() for m in _TOKEN.finditer(sql) if m.lastgroup != "comment").strip()
