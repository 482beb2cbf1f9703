"""Small recognisers shared by rules: "is this call `SQLAlchemyInstrumentor().instrument(...)`?"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional

import libcst as cst

from otel_sqla_doctor.static.known import SQLALCHEMY_INSTRUMENTOR
from otel_sqla_doctor.static.rule import Requirement, qualname_in
from otel_sqla_doctor.static.summary import Summary


def keyword(call: cst.Call, name: str) -> Optional[cst.Arg]:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg
    return None


@dataclass
class MethodCall:
    """`<receiver>.<method>(...)`, with the receiver summarised."""

    node: cst.Call
    method: str
    receiver: Optional[Summary]


def method_call(ctx, node: cst.Call, *methods: str) -> Optional[MethodCall]:
    func = node.func
    if isinstance(func, cst.Attribute) and func.attr.value in methods:
        return MethodCall(node, func.attr.value, ctx.summarize(func.value))
    return None


def instrumentor_requirement(receiver: Optional[Summary], class_name: str = SQLALCHEMY_INSTRUMENTOR) -> Optional[Requirement]:
    """The receiver is an instance of `class_name` (`X()` or a name bound to `X()`), or the class itself."""
    if receiver and receiver[0] == "call":
        return qualname_in(receiver[1], class_name)
    return None


@dataclass
class CommenterSettings:
    """What one `SQLAlchemyInstrumentor().instrument(...)` call asks of sqlcommenter.

    Each flag is True/False when the project says so in literals or constants (settings defaults
    included), and None when it cannot be told (an environment variable, a `**kwargs`).
    """

    enable_commenter: Optional[bool]
    attribute_commenter: Optional[bool]
    traceparent: Optional[bool]  # the comment carries `traceparent` (opentelemetry_values not False)


def sqlalchemy_instrument_calls(index) -> Iterator[tuple[Any, Any, CommenterSettings]]:
    """(module facts, call site, commenter settings) for every `SQLAlchemyInstrumentor().instrument()`."""
    from otel_sqla_doctor.static.summary import kwarg

    for facts, site in index.all_calls():
        if not site.line or (site.method is not None and site.method != "instrument"):
            continue
        summary = site.summary
        if not summary or summary[0] != "call" or not summary[1]:
            continue
        callee = summary[1]
        if callee[0] == "attr" and callee[2] == "instrument":
            receiver = callee[1]
        elif callee[0] == "ref" and callee[1].endswith(".instrument"):
            receiver = ("ref", callee[1].rsplit(".", 1)[0])
        else:
            continue
        if index.value(receiver) != ("result", SQLALCHEMY_INSTRUMENTOR):
            continue
        settings = CommenterSettings(
            enable_commenter=_flag(index, kwarg(summary, "enable_commenter"), False),
            attribute_commenter=_flag(index, kwarg(summary, "enable_attribute_commenter"), False),
            traceparent=_traceparent(index, kwarg(summary, "commenter_options")),
        )
        yield facts, site, settings


def _flag(index, summary: Optional[Summary], default: bool) -> Optional[bool]:
    if summary is None:
        return default
    value = index.value(summary)
    if value and value[0] == "lit" and isinstance(value[1], bool):
        return value[1]
    return None


def _traceparent(index, options: Optional[Summary]) -> Optional[bool]:
    """`commenter_options` leaves `opentelemetry_values` (the traceparent) on: the default."""
    if options is None:
        return True
    value = index.value(options)
    if value == ("lit", None):
        return True
    if not value or value[0] != "dict":
        return None
    for key, item in value[1]:
        key_value = index.value(key)
        if key_value == ("lit", "opentelemetry_values"):
            flag = index.value(item)
            if flag and flag[0] == "lit":
                return bool(flag[1])
            return None
        if not key_value or key_value[0] != "lit":
            return None  # a computed key: cannot tell
    return True


@dataclass(frozen=True)
class InstrumentorCall:
    """A recorded `<receiver>.instrument(...)` / `.uninstrument(...)` call site, resolved by the index."""

    cls: str  # canonical qualified name of the instrumentor class
    method: str
    on_instance: bool  # `X().instrument()` / `x = X(); x.instrument()`; False for `X.instrument()`


def instrumentor_call(index, site, methods: tuple = ("instrument", "uninstrument")) -> Optional[InstrumentorCall]:
    """What a CallSite calls `instrument`/`uninstrument` on, through aliases and other modules."""
    if site.method is not None and site.method not in methods:
        return None
    summary = site.summary
    if not summary or summary[0] != "call" or not summary[1]:
        return None
    callee = summary[1]
    if callee[0] == "attr" and callee[2] in methods:
        receiver, method = callee[1], callee[2]
    elif callee[0] == "ref" and "." in callee[1] and callee[1].rsplit(".", 1)[1] in methods:
        receiver, method = ("ref", callee[1].rsplit(".", 1)[0]), callee[1].rsplit(".", 1)[1]
    else:
        return None
    value = index.value(receiver)
    if value and value[0] == "result":
        return InstrumentorCall(value[1], method, True)
    if value and value[0] == "q":
        return InstrumentorCall(value[1], method, False)
    return None


def alternative_to_any(site, others: list) -> bool:
    """`site` is in another branch of an if/else or try/except than one of `others` (call sites
    of the same module): at most one of them runs, so one report covers them."""
    return any(exclusive(site.branches, other.branches) for other in others)


def exclusive(branches_a: tuple, branches_b: tuple) -> bool:
    """Two events in different branches of one if/else or try/except (see CallSite.branches)."""
    taken = {}
    for label in branches_a:
        alternative, _, branch = label.rpartition(":")
        taken[alternative] = branch
    for label in branches_b:
        alternative, _, branch = label.rpartition(":")
        if alternative in taken and taken[alternative] != branch:
            return True
    return False


def derives_from_enum(node, known_enums) -> bool:
    """A class whose bases name an Enum (`StrEnum`, `enum.IntEnum`) or a class in `known_enums`."""
    from otel_sqla_doctor.static.context import dotted_name

    names = [(dotted_name(b.value) or "").rsplit(".", 1)[-1] for b in node.bases]
    return any(name.endswith("Enum") or name in known_enums for name in names)
