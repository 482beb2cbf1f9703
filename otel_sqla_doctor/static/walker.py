"""A read-only traversal of a LibCST tree that calls many visitors in one pass.

LibCST's own `visit` rebuilds every node on the way back up, which costs as much as parsing for
a read-only lint. This walker only reads: it descends through the fields that can hold code
(skipping whitespace, commas and parentheses) and calls `visit_<Node>` / `leave_<Node>` on each
visitor, in the order given on the way down and in reverse on the way up, as
`MetadataWrapper.visit_batched` would.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable

from libcst._nodes.base import CSTNode

_SKIPPED_FIELDS = frozenset(
    {
        "leading_lines",
        "lines_after_decorators",
        "lpar",
        "rpar",
        "comma",
        "semicolon",
        "header",
        "footer",
        "trailing_whitespace",
        "newline",
        "indent",
        "equal",
        "colon",
        "star",
        "dot",
        "lbracket",
        "rbracket",
        "lbrace",
        "rbrace",
        "whitespace_before",
        "whitespace_after",
        "whitespace_after_at",
        "whitespace_after_name",
        "whitespace_before_params",
        "whitespace_before_colon",
        "whitespace_after_colon",
        "whitespace_after_def",
        "whitespace_after_async",
        "whitespace_after_await",
        "whitespace_after_class",
        "whitespace_after_star",
        "whitespace_after_arg",
        "whitespace_after_import",
        "whitespace_after_from",
        "whitespace_before_import",
        "whitespace_after_with",
        "whitespace_after_as",
        "whitespace_before_as",
        "whitespace_after_in",
        "whitespace_before_in",
        "whitespace_after_for",
        "whitespace_after_if",
        "whitespace_before_if",
        "whitespace_after_else",
        "whitespace_before_else",
        "whitespace_after_lambda",
        "whitespace_after_return",
        "whitespace_after_del",
        "whitespace_after_global",
        "whitespace_after_nonlocal",
        "whitespace_after_assert",
        "whitespace_after_raise",
        "whitespace_after_yield",
        "whitespace_after_while",
        "whitespace_after_except",
        "whitespace_before_from",
        "whitespace_after_match",
        "whitespace_after_case",
        "whitespace_after_type",
    }
)

_FIELDS_BY_CLASS: dict[type, tuple[str, ...]] = {}


def _code_fields(cls: type) -> tuple[str, ...]:
    fields = _FIELDS_BY_CLASS.get(cls)
    if fields is None:
        fields = tuple(
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in _SKIPPED_FIELDS and not f.name.startswith("whitespace")
        )
        _FIELDS_BY_CLASS[cls] = fields
    return fields


Callback = Callable[[Any], Any]


class Walker:
    """Calls every visitor's `visit_X`/`leave_X` for each node X of the tree, in one pass."""

    def __init__(self, visitors: Iterable[object]) -> None:
        self._visitors = list(visitors)
        self._visit: dict[type, tuple[Callback, ...]] = {}
        self._leave: dict[type, tuple[Callback, ...]] = {}

    def _callbacks(self, cls: type) -> tuple[tuple[Callback, ...], tuple[Callback, ...]]:
        visit = self._visit.get(cls)
        if visit is None:
            name = cls.__name__
            visit = tuple(
                getattr(v, "visit_" + name) for v in self._visitors if hasattr(v, "visit_" + name)
            )
            leave = tuple(
                getattr(v, "leave_" + name)
                for v in reversed(self._visitors)
                if hasattr(v, "leave_" + name)
            )
            self._visit[cls] = visit
            self._leave[cls] = leave
        return visit, self._leave[cls]

    def walk(self, node: CSTNode) -> None:
        cls = type(node)
        visit, leave = self._callbacks(cls)
        descend = True
        for callback in visit:
            # As in LibCST, a visit_ method returning False skips the children (for that walk).
            if callback(node) is False:
                descend = False
        if descend:
            for name in _code_fields(cls):
                value = getattr(node, name)
                if isinstance(value, CSTNode):
                    self.walk(value)
                elif type(value) is tuple or type(value) is list:
                    for child in value:
                        if isinstance(child, CSTNode):
                            self.walk(child)
        for callback in leave:
            callback(node)

