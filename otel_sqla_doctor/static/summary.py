"""Symbolic values: what an expression is, as far as one file can tell.

A rule never needs the full type system; it needs to know things like "this is an AsyncEngine",
"this is `sqlalchemy.text`", "this string was built by an f-string". One file alone often cannot
say (the engine is imported from `app.db`), so an expression is summarised as a small tuple that
names what it depends on, and the project index resolves it once every file has been read.

Summaries are plain tuples (hashable, cacheable as JSON):

    ("lit", value)                      a literal str/int/float/bool/None
    ("ref", "pkg.mod.name")             a global name, by qualified name
    ("call", callee, args, kwargs)      the result of a call; kwargs is a tuple of (name, summary)
    ("attr", base, "name")              an attribute of a non-global value
    ("instance", class_summary)         an instance of a class (from an annotation)
    ("depends", callee)                 a FastAPI `Depends(callee)` parameter
    ("list", items) / ("dict", pairs)   literal containers
    ("fstr", parts)                     an f-string; parts are ("lit", text) or summaries
    ("binop", "+" | "%", left, right)   string concatenation or %-formatting
    ("await", inner)                    an awaited value
    ("unknown",)                        something we cannot follow
"""

from __future__ import annotations

from typing import Any, Optional

Summary = tuple
UNKNOWN: Summary = ("unknown",)


def ref(qualname: str) -> Summary:
    return ("ref", qualname)


def lit(value: Any) -> Summary:
    return ("lit", value)


def kwarg(call: Summary, name: str) -> Optional[Summary]:
    """The summary of keyword argument `name` of a ("call", ...) summary, or None."""
    if not call or call[0] != "call":
        return None
    for key, value in call[3]:
        if key == name:
            return value
    return None


def positional(call: Summary, index: int) -> Optional[Summary]:
    if not call or call[0] != "call" or index >= len(call[2]):
        return None
    return call[2][index]


def refs_in(summary: Any) -> set[str]:
    """Every qualified name a summary depends on."""
    found: set[str] = set()
    stack = [summary]
    while stack:
        item = stack.pop()
        if type(item) is tuple:
            if len(item) == 2 and item[0] == "ref" and type(item[1]) is str:
                found.add(item[1])
            else:
                stack.extend(item)
    return found


def from_json(value: Any) -> Any:
    """JSON turns tuples into lists; summaries are tuples all the way down."""
    if type(value) is list:
        return tuple(from_json(v) for v in value)
    if type(value) is dict:
        return {k: from_json(v) for k, v in value.items()}
    return value
