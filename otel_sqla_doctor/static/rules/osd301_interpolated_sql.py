from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator, Optional

import libcst as cst

from otel_sqla_doctor.static.paths import PathRole
from otel_sqla_doctor.findings import Severity
from otel_sqla_doctor.report.style import shorten
from otel_sqla_doctor.static.context import Scope, all_params, collect_bindings, dotted_name
from otel_sqla_doctor.static.known import DRIVER_CONNECTION_KINDS
from otel_sqla_doctor.static import sql_strings
from otel_sqla_doctor.static.patterns import derives_from_enum
from otel_sqla_doctor.static.rule import Invalid, Rule, Valid, check, kind_in, qualname_in

SQLALCHEMY_TEXT = "sqlalchemy.text"
# Receivers whose execute()/scalar()/scalars() take SQL (a plain string on SQLAlchemy < 2.0).
SQLALCHEMY_KINDS = (
    "sync_session",
    "async_session",
    "sync_connection",
    "async_connection",
    "sync_engine",
    "async_engine",
    "sync_scoped_session",
)
DRIVER_KINDS = tuple(sorted(DRIVER_CONNECTION_KINDS))
SQLALCHEMY_METHODS = frozenset({"execute", "scalar", "scalars"})
DRIVER_METHODS = frozenset({"fetch", "fetchrow", "fetchval", "execute", "executemany"})
SQL_KEYWORDS = ("text", "statement", "query", "sql")
_THIS = "otel_sqla_doctor.static.rules.osd301_interpolated_sql"


@dataclass
class Interpolation:
    """A string built from pieces, as found at (or behind) a SQL sink."""

    how: str  # "an f-string" | "%-formatting" | "str.format()" | "concatenation" | "a helper"
    dynamic: list[str] = field(default_factory=list)  # placeholders whose value varies per call
    constant: list[str] = field(default_factory=list)  # constants, literal collections, allow-lists
    via: str = ""  # the local name or helper the string came through
    node: Optional[cst.CSTNode] = None  # the formatting expression itself (for the fix)
    requires: tuple = ()  # for helpers in other modules, decided by the project index
    leading: str = ""  # the literal text the statement starts with (its keyword)


def _leading_text(node: cst.BaseExpression) -> str:
    """The literal text a formatted SQL string starts with ("" when it starts with a value)."""
    while True:
        if isinstance(node, cst.ConcatenatedString):
            node = node.left
        elif isinstance(node, cst.BinaryOperation):
            node = node.left
        elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "format":
            node = node.func.value
        else:
            break
    if isinstance(node, cst.SimpleString):
        return node.raw_value
    if isinstance(node, cst.FormattedString) and node.parts and isinstance(node.parts[0], cst.FormattedStringText):
        return node.parts[0].value
    return ""


# Statements whose placeholders are identifiers or utility arguments that no driver can bind
# (tests/rules/test_osd301_live.py shows the server rejecting them): schema changes,
# provisioning, two-phase commit ids. They run rarely, and "use bound parameters" is no fix.
_UNBINDABLE_STATEMENT = re.compile(
    r"^\s*(?:CREATE|DROP|ALTER|TRUNCATE|GRANT|REVOKE|COMMENT\s+ON|USE|PRAGMA|VACUUM|ANALYZE|REINDEX|CLUSTER"
    r"|ATTACH|DETACH|DESCRIBE|SHOW|SAVEPOINT|RELEASE|ROLLBACK\s+TO|PREPARE\s+TRANSACTION|COMMIT\s+PREPARED"
    r"|ROLLBACK\s+PREPARED|XA|PURGE|SET|RESET|LOCK|DO|LISTEN|UNLISTEN)\b",
    re.IGNORECASE,
)


class _Env:
    """Where names are looked up: the enclosing function scopes (innermost last)."""

    def __init__(self, scopes: list[Scope], module_scope: Scope) -> None:
        self.scopes = scopes
        self.module_scope = module_scope

    def binding(self, name: str) -> Optional[tuple[Scope, list]]:
        for scope in reversed(self.scopes):
            if name in scope.global_names:
                return None
            if name in scope.bindings:
                return scope, scope.bindings[name]
        return None


_WALK_STOP = (cst.FunctionDef, cst.ClassDef, cst.Lambda)


def _walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node of a function body, without entering nested functions, classes or lambdas."""
    stack = list(reversed(node.body.body)) if isinstance(node, cst.FunctionDef) and isinstance(node.body, cst.IndentedBlock) else [node]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, _WALK_STOP):
            continue
        stack.extend(reversed(item.children))


@dataclass
class _FunctionNotes:
    """What a function body says about its names beyond plain assignments."""

    augmented: dict[str, list] = field(default_factory=dict)  # name -> values of `name += value`
    loops: dict[str, list] = field(default_factory=dict)  # name -> iterables of `for name in ...`
    guarded: dict[str, list] = field(default_factory=dict)  # name -> collections it was checked against
    appended: dict[str, list] = field(default_factory=dict)  # name -> values of `name.append(value)`
    unpacked: dict[str, list] = field(default_factory=dict)  # name -> (call, i) of `a, b = call(...)`


@dataclass(frozen=True)
class _Items:
    """The items of each element of an iterable (the names of a tuple target take them)."""

    iterable: cst.BaseExpression


def _notes(function: cst.FunctionDef) -> _FunctionNotes:
    notes = _FunctionNotes()
    for node in _walk(function):
        if isinstance(node, cst.AugAssign) and isinstance(node.operator, cst.AddAssign) and isinstance(node.target, cst.Name):
            notes.augmented.setdefault(node.target.value, []).append(node.value)
        elif isinstance(node, (cst.For, cst.CompFor)) and isinstance(node.target, cst.Name):
            notes.loops.setdefault(node.target.value, []).append(node.iter)
        elif isinstance(node, (cst.For, cst.CompFor)) and isinstance(node.target, (cst.Tuple, cst.List)):
            # `for source, key in PAIRS`: each name takes items of PAIRS' elements.
            for element in node.target.elements:
                if isinstance(element.value, cst.Name):
                    notes.loops.setdefault(element.value.value, []).append(_Items(node.iter))
        elif isinstance(node, cst.If):
            _guard(notes, node.test, node.body, negative_exits=True)
        elif (
            isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "append"
            and isinstance(node.func.value, cst.Name) and len(node.args) == 1 and not node.args[0].star
        ):
            notes.appended.setdefault(node.func.value.value, []).append(node.args[0].value)
        elif isinstance(node, cst.Assign) and isinstance(node.value, cst.Call) and len(node.targets) == 1:
            target = node.targets[0].target
            if isinstance(target, (cst.Tuple, cst.List)):
                for i, element in enumerate(target.elements):
                    if isinstance(element.value, cst.Name):
                        notes.unpacked.setdefault(element.value.value, []).append((node.value, i))
        elif isinstance(node, cst.Assert):
            _guard(notes, node.test, None, negative_exits=False)
    return notes


def _guard(notes: _FunctionNotes, test: cst.BaseExpression, body, negative_exits: bool) -> None:
    """`if x not in ALLOWED: raise ...`, `if x in ALLOWED: ...`, `assert x in ALLOWED`."""
    if not (isinstance(test, cst.Comparison) and len(test.comparisons) == 1):
        return
    subject = test.left
    while isinstance(subject, cst.Call) and isinstance(subject.func, cst.Attribute) and subject.func.attr.value in ("lower", "upper", "strip"):
        subject = subject.func.value
    if not isinstance(subject, cst.Name):
        return
    target = test.comparisons[0]
    # (collection, block, inside): the check holds inside the block (`if x in ALLOWED:`), or
    # everywhere but inside it (`if x not in ALLOWED: raise`), or everywhere (`assert`: block None).
    if isinstance(target.operator, cst.In):
        notes.guarded.setdefault(subject.value, []).append((target.comparator, body, True))
    elif isinstance(target.operator, cst.NotIn) and negative_exits and body is not None:
        exits = any(isinstance(n, (cst.Raise, cst.Return, cst.Continue, cst.Break)) for n in _walk(body))
        if exits:
            notes.guarded.setdefault(subject.value, []).append((target.comparator, body, False))


class _Analyzer:
    """Decides whether an expression is SQL built from values that vary per call."""

    def __init__(self, ctx, env: _Env, depth: int = 0, sink: Optional[cst.CSTNode] = None, owner: Optional[cst.ClassDef] = None) -> None:
        self.ctx = ctx
        self.env = env
        self.depth = depth
        self.owner = owner  # the class whose method is being read (`self.method()` is looked up there)
        self.sink = sink  # the call being judged: allow-list checks hold only where they cover it
        # Annotations of parameters taken as constants on the promise that their class is an Enum
        # of another module: the project index decides.
        self.enum_requirements: list = []
        self._notes: dict[int, _FunctionNotes] = {}
        self._active: set[int] = set()
        self._comprehension_names: set[str] = set()

    def notes(self, scope: Scope) -> _FunctionNotes:
        key = id(scope.node)
        if key not in self._notes:
            self._notes[key] = _notes(scope.node) if isinstance(scope.node, cst.FunctionDef) else _FunctionNotes()
        return self._notes[key]

    # -- finding the string building behind a sink argument ----------------------------------------
    def interpolation(self, node: cst.BaseExpression) -> Optional[Interpolation]:
        if id(node) in self._active or len(self._active) > 30:
            return None
        self._active.add(id(node))
        try:
            return self._interpolation(node)
        finally:
            self._active.discard(id(node))

    def _interpolation(self, node: cst.BaseExpression) -> Optional[Interpolation]:
        found = self._interpolation_parts(node)
        if found is not None and not found.leading:
            found.leading = _leading_text(node)
        return found

    def _interpolation_parts(self, node: cst.BaseExpression) -> Optional[Interpolation]:
        if isinstance(node, (cst.FormattedString, cst.ConcatenatedString)) or (
            isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add)
        ):
            pieces = self._template(node)
            if pieces is None or all(isinstance(p, str) for p in pieces):
                return None
            how = "concatenation" if isinstance(node, cst.BinaryOperation) else "an f-string"
            found = Interpolation(how, node=node if isinstance(node, cst.FormattedString) else None)
            holes = [p if isinstance(p, str) else None for p in pieces]
            for index, before, after in sql_strings.split_around(holes):
                self._place(pieces[index], found, sql_strings.position(before, after))
            return found if (found.dynamic or found.constant) else None
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo):
            if not self._is_string(node.left):
                return None
            found = Interpolation("%-formatting")
            right = node.right
            if isinstance(right, cst.Tuple):
                values = [e.value for e in right.elements]
            elif isinstance(right, cst.Dict):
                values = [e.value for e in right.elements if isinstance(e, cst.DictElement)]
            else:
                values = [right]
            template = self._literal_text(node.left)
            fields = sql_strings.percent_fields(template) if template is not None else []
            keyed = {
                e.key.evaluated_value: e.value for e in right.elements
                if isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString)
            } if isinstance(right, cst.Dict) else {}
            if fields and (keyed or len(fields) == len(values)):
                for i, (key, before, after) in enumerate(fields):
                    value = keyed.get(key) if keyed else values[i]
                    if value is not None:
                        self._place(value, found, sql_strings.position(before, after))
            else:
                for value in values:
                    self._classify(value, found)
            return found
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "format":
            if not self._is_string(node.func.value) or not node.args:
                return None
            found = Interpolation("str.format()")
            template = self._literal_text(node.func.value)
            fields = sql_strings.format_fields(template) if template is not None else None
            positional = [a.value for a in node.args if not a.star and a.keyword is None]
            named = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
            if fields is not None and not any(a.star for a in node.args):
                automatic = 0
                for field, before, after in fields:
                    head = field.split(".", 1)[0].split("[", 1)[0]
                    if head == "":
                        value = positional[automatic] if automatic < len(positional) else None
                        automatic += 1
                    elif head.isdigit():
                        value = positional[int(head)] if int(head) < len(positional) else None
                    else:
                        value = named.get(head)
                    if value is not None:
                        self._place(value, found, sql_strings.position(before, after))
                return found
            for arg in node.args:
                if arg.star:
                    found.dynamic.append(_code(self.ctx, arg.value))
                else:
                    self._classify(arg.value, found)
            return found
        if isinstance(node, cst.Name):
            return self._through_name(node)
        if isinstance(node, cst.IfExp):
            # `f"'{v}'" if isinstance(v, str) else v`: either branch may be what goes in.
            found = None
            for branch in (node.body, node.orelse):
                inner = self.interpolation(branch)
                if found is None:
                    found = inner
                else:
                    self._merge(found, inner)
            if found is not None:
                found.node = None
            return found
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "join":
            return self._through_join(node)
        if isinstance(node, cst.Call):
            return self._through_helper(node)
        return None

    def _through_join(self, node: cst.Call) -> Optional[Interpolation]:
        """`" AND ".join(clauses)`, where `clauses` is a list literal or is built by `.append()`:
        the clauses built from values are what goes in (a clause we cannot see into is not a value)."""
        if not (self._is_plain_string(node.func.value) and len(node.args) == 1 and not node.args[0].star):
            return None
        items: list = []
        argument = node.args[0].value
        if isinstance(argument, (cst.List, cst.Tuple)):
            items = [e.value for e in argument.elements if isinstance(e, cst.Element)]
        elif isinstance(argument, cst.Name):
            hit = self.env.binding(argument.value)
            if hit is None:
                return None
            scope, bindings = hit
            for kind, payload in bindings:
                if kind == "value" and isinstance(payload, (cst.List, cst.Tuple)):
                    items += [e.value for e in payload.elements if isinstance(e, cst.Element)]
            items += self.notes(scope).appended.get(argument.value, [])
        found = None
        for item in items:
            inner = self.interpolation(item)
            if inner is None:
                continue
            if found is None:
                found = inner
            else:
                self._merge(found, inner)
        if found is not None:
            found.node = None
        return found

    def _through_name(self, node: cst.Name) -> Optional[Interpolation]:
        hit = self.env.binding(node.value)
        if hit is None:
            return None  # a module-level name: built once at import, constant per process
        scope, bindings = hit
        found: Optional[Interpolation] = None
        values = [payload for kind, payload in bindings if kind == "value"]
        values += self.notes(scope).augmented.get(node.value, [])
        unpacked = self.notes(scope).unpacked.get(node.value, [])
        for value in values + unpacked:
            if isinstance(value, tuple):  # (call, i): `a, b = helper(...)`
                inner = self._through_helper(value[0], element=value[1])
            else:
                inner = self.interpolation(value)
            if inner is None:
                continue
            if found is None:
                found = inner
                found.via = node.value
                found.node = None if len(values) + len(unpacked) > 1 else found.node
            else:
                self._merge(found, inner)
                found.node = None
        return found

    def _through_helper(self, node: cst.Call, element: Optional[int] = None) -> Optional[Interpolation]:
        """What a helper returns (`element`: item i of the tuples it returns, for `a, b = helper()`)."""
        method = self._method_of_module_class(node.func)
        if method is not None:
            return self._read_helper(node, method[0], f"{self.ctx.module}.{method[1].name.value}.{method[0].name.value}", element, owner=method[1])
        callee = self.ctx.summarize(node.func)
        if not callee or callee[0] != "ref":
            return None
        qualname = callee[1]
        prefix = f"{self.ctx.module}."
        if qualname.startswith(prefix) and "." not in qualname[len(prefix):]:
            function = self._module_function(qualname[len(prefix):])
            if function is None:
                return None
            return self._read_helper(node, function, qualname, element)
        if element is not None:
            return None
        return self._foreign_helper(node, qualname)

    def _method_of_module_class(self, func: cst.BaseExpression) -> Optional[tuple[cst.FunctionDef, cst.ClassDef]]:
        """`self.build_clause(...)` in a method, or `filters.pagination()` on a parameter annotated
        with (or a local built from) a class of this module: that method's definition, and its class."""
        if not (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)):
            return None
        receiver = func.value.value
        classes: list[cst.ClassDef] = []
        if receiver in ("self", "cls"):
            owner = self.owner if self.owner is not None else _enclosing_class(self.ctx)
            if owner is not None:
                classes.append(owner)
        else:
            hit = self.env.binding(receiver)
            for kind, payload in hit[1] if hit else ():
                if kind == "param" and payload.annotation is not None:
                    names = [dotted_name(n) for n in _walk(payload.annotation.annotation) if isinstance(n, (cst.Name, cst.Attribute))]
                elif kind == "value" and isinstance(payload, cst.Call):
                    names = [dotted_name(payload.func)]
                else:
                    continue
                classes += [c for c in (_module_class(self.ctx, n) for n in names if n) if c is not None]
        for cls in classes:
            for stmt in cls.body.body if isinstance(cls.body, cst.IndentedBlock) else ():
                if isinstance(stmt, cst.FunctionDef) and stmt.name.value == func.attr.value:
                    if any((dotted_name(d.decorator) or "").endswith(("property", "setter")) for d in stmt.decorators):
                        return None
                    return stmt, cls
        return None

    def _read_helper(self, node: cst.Call, function: cst.FunctionDef, qualname: str, element: Optional[int], owner=None) -> Optional[Interpolation]:
        if self.depth > 2:
            return None
        is_method = owner is not None and not any((dotted_name(d.decorator) or "") == "staticmethod" for d in function.decorators)
        scope = Scope("function", function.name.value, qualname, function, is_async=function.asynchronous is not None)
        passed = self._constant_arguments(node, function, skip_first=is_method)
        for param in all_params(function.params):
            # What this call passes decides: a constant argument makes the parameter one here.
            binding = ("value", cst.Integer("0")) if param.name.value in passed else ("param", param)
            scope.bindings.setdefault(param.name.value, []).append(binding)
        collect_bindings(scope, function.body.body if isinstance(function.body, cst.IndentedBlock) else (), self.ctx)
        helper = _Analyzer(self.ctx, _Env([scope], self.env.module_scope), self.depth + 1, owner=owner if owner is not None else self.owner)
        found = None
        for returned in _returns(function):
            if element is not None:
                if not (isinstance(returned, (cst.Tuple, cst.List)) and element < len(returned.elements)):
                    continue
                returned = returned.elements[element].value
            inner = helper.interpolation(returned)
            if inner is None:
                continue
            if found is None:
                found = inner
            else:
                helper._merge(found, inner)
        if found is not None:
            found.how, found.via, found.node = "a helper that formats SQL", function.name.value + "()", None
        return found

    def _foreign_helper(self, node: cst.Call, qualname: str) -> Optional[Interpolation]:
        if qualname.split(".", 1)[0] in ("sqlalchemy", "sqlmodel", "builtins", "os", "typing", "asyncpg", "aiosqlite"):
            return None
        # Maybe a helper in another module of the project: the index decides.
        summary = self.ctx.summarize(node)
        name = qualname.rsplit(".", 1)[-1]
        return Interpolation(
            "a helper that formats SQL", dynamic=["its arguments"], via=f"{name}()", requires=(check(summary, f"{_THIS}:returns_interpolated"),)
        )

    def _constant_arguments(self, call: cst.Call, function: cst.FunctionDef, skip_first: bool = False) -> set[str]:
        """Parameters of `function` that this call fills with constants (in the caller's scope)."""
        params = list(function.params.posonly_params) + list(function.params.params)
        params = params[1:] if skip_first else params
        found: set[str] = set()
        positional = [a for a in call.args if a.keyword is None and not a.star]
        for param, arg in zip(params, positional):
            if self.is_constant(arg.value):
                found.add(param.name.value)
        for arg in call.args:
            if arg.keyword is not None and self.is_constant(arg.value):
                found.add(arg.keyword.value)
        return found

    def _module_function(self, name: str) -> Optional[cst.FunctionDef]:
        for stmt in self.ctx.module_node.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == name:
                return stmt
        return None

    @staticmethod
    def _merge(found: Interpolation, other: Optional[Interpolation]) -> None:
        if other is None:
            return
        found.dynamic.extend(other.dynamic)
        found.constant.extend(other.constant)
        found.requires += other.requires

    # -- strings ---------------------------------------------------------------------------------
    def _is_plain_string(self, node: cst.BaseExpression) -> bool:
        if isinstance(node, cst.SimpleString):
            return True
        if isinstance(node, cst.ConcatenatedString):
            return all(isinstance(p, cst.SimpleString) for p in _flatten_concatenated(node))
        return False

    def _is_string(self, node: cst.BaseExpression) -> bool:
        """A string literal, an f-string, or a local name bound to one."""
        if isinstance(node, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
            return True
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, (cst.Add, cst.Modulo)):
            return self._is_string(node.left)
        if isinstance(node, cst.Name):
            summary = self.ctx.summarize(node)
            return bool(summary and summary[0] in ("lit", "fstr") and (summary[0] == "fstr" or isinstance(summary[1], str)))
        return False

    def _template(self, node: cst.BaseExpression) -> Optional[list]:
        """The SQL template as literal text pieces (str) and placeholder expressions, in order;
        None when a piece is neither a string nor something placed into one."""
        if isinstance(node, cst.SimpleString):
            text = self._literal_text(node)
            return [text] if text is not None else None
        if isinstance(node, cst.FormattedString):
            if "b" in node.start.lower():
                return None
            out: list = []
            for part in node.parts:
                if isinstance(part, cst.FormattedStringText):
                    out.append(part.value.replace("{{", "{").replace("}}", "}"))
                else:
                    out.append(part.expression)
            return out
        if isinstance(node, cst.ConcatenatedString):
            out = []
            for part in _flatten_concatenated(node):
                inner = self._template(part)
                if inner is None:
                    return None
                out += inner
            return out
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
            operands = _flatten_add(node)
            if not any(self._is_string(o) for o in operands):
                return None
            out = []
            for operand in operands:
                inner = self._template(operand) if isinstance(operand, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)) else None
                out += inner if inner is not None else [operand]
            return out
        return None

    # -- enums ----------------------------------------------------------------------------------------
    def _enum_classes(self) -> frozenset:
        """Classes of this module that derive from an Enum (StrEnum, IntEnum, ...), by name."""
        cached = getattr(self.ctx, "_osd301_enums", None)
        if cached is None:
            names = set()
            for stmt in self.ctx.module_node.body:
                if isinstance(stmt, cst.ClassDef) and derives_from_enum(stmt, names):
                    names.add(stmt.name.value)
            cached = frozenset(names)
            self.ctx._osd301_enums = cached
        return cached

    def _in_enum_class(self) -> bool:
        classes = [s for s in self.ctx.scopes if s.kind == "class"]
        return bool(classes) and classes[-1].name in self._enum_classes()

    def _enum_annotation(self, param: cst.Param) -> bool:
        """`event: WebhookEventType` where the class is an Enum of this module, or a class of
        another module of the project that the index must confirm is one (`enum_requirements`)."""
        if param.annotation is None:
            return False
        name = (dotted_name(param.annotation.annotation) or "").rsplit(".", 1)[-1]
        if name and name in self._enum_classes():
            return True
        if self.enum_requirements is None:
            return False
        summary = self.ctx.summarize_annotation(param.annotation.annotation, 0)
        if summary and summary[0] == "ref" and not summary[1].startswith(f"{self.ctx.module}."):
            root = summary[1].split(".", 1)[0]
            if root not in ("builtins", "typing", "str", "int", "uuid", "datetime", "decimal", "sqlalchemy", "pydantic"):
                self.enum_requirements.append(summary)
                return True  # provisionally: the finding then requires it not to be an Enum
        return False

    def _names_only_template(self, node: cst.BaseExpression) -> bool:
        """An f-string whose placeholders all sit where names go (`:{k}`, `"{k}"`, `{k} = :{k}`)."""
        if not isinstance(node, cst.FormattedString):
            return False
        pieces = self._template(node)
        if pieces is None:
            return False
        holes = [p if isinstance(p, str) else None for p in pieces]
        return any(h is None for h in holes) and all(
            sql_strings.position(before, after) == sql_strings.IDENTIFIER for _, before, after in sql_strings.split_around(holes)
        )

    def _literal_text(self, node: cst.BaseExpression) -> Optional[str]:
        if isinstance(node, cst.SimpleString):
            try:
                value = node.evaluated_value
            except Exception:  # an escape LibCST cannot evaluate
                return None
            return value if isinstance(value, str) else None
        if isinstance(node, cst.ConcatenatedString):
            texts = [self._literal_text(p) for p in _flatten_concatenated(node)]
            return None if any(t is None for t in texts) else "".join(texts)  # type: ignore[arg-type]
        return None

    # -- placeholders ----------------------------------------------------------------------------
    def _place(self, expr: cst.BaseExpression, found: Interpolation, where: str) -> None:
        """Sort one placeholder by where it sits in the SQL (`sql_strings.position`)."""
        if where == sql_strings.IDENTIFIER:
            # Table, schema and column names cannot be bound; strict mode still shows them.
            found.constant.append(_code(self.ctx, expr))
            return
        if where in (sql_strings.FRAGMENT, sql_strings.UNKNOWN) and not self.is_constant(expr):
            # A clause or statement built elsewhere: what it holds decides.
            inner = self.interpolation(expr) if isinstance(expr, (cst.Name, cst.FormattedString, cst.BinaryOperation, cst.ConcatenatedString, cst.Call)) else None
            if inner is not None:
                self._merge(found, inner)
                return
            if where == sql_strings.FRAGMENT:
                found.constant.append(_code(self.ctx, expr))  # SQL text we cannot see into: not a value
                return
        self._classify(expr, found)

    def _classify(self, expr: cst.BaseExpression, found: Interpolation) -> None:
        text = _code(self.ctx, expr)
        (found.constant if self.is_constant(expr) else found.dynamic).append(text)

    def is_constant(self, expr: cst.BaseExpression, depth: int = 0) -> bool:
        """Literals, module-level names, literal collections and allow-listed names: fixed per process."""
        if depth > 12:
            return False
        if isinstance(expr, (cst.SimpleString, cst.Integer, cst.Float, cst.Imaginary)):
            return True
        if isinstance(expr, cst.ConcatenatedString):
            return all(self.is_constant(p, depth + 1) for p in _flatten_concatenated(expr))
        if isinstance(expr, cst.FormattedString):
            return all(
                self.is_constant(p.expression, depth + 1) for p in expr.parts if isinstance(p, cst.FormattedStringExpression)
            )
        if isinstance(expr, cst.Name):
            return self._constant_name(expr.value, depth)
        if isinstance(expr, cst.Attribute):
            if expr.attr.value in ("__tablename__", "__table__", "name", "fullname") and _model_like(expr):
                return True
            if expr.attr.value in ("value", "name") and isinstance(expr.value, cst.Name) and expr.value.value == "self" and self._in_enum_class():
                return True  # a member of an Enum: one of a fixed set written in the code
            root = expr
            while isinstance(root, cst.Attribute):
                root = root.value
            return isinstance(root, cst.Name) and self.env.binding(root.value) is None
        if isinstance(expr, cst.Subscript):
            return self.is_literal_collection(expr.value, depth + 1)
        if isinstance(expr, (cst.Tuple, cst.List, cst.Set, cst.Dict)):
            return self.is_literal_collection(expr, depth + 1)
        if isinstance(expr, cst.IfExp):
            return self.is_constant(expr.body, depth + 1) and self.is_constant(expr.orelse, depth + 1)
        if isinstance(expr, (cst.BinaryOperation, cst.BooleanOperation)):
            return self.is_constant(expr.left, depth + 1) and self.is_constant(expr.right, depth + 1)
        if isinstance(expr, cst.Call):
            return self._constant_call(expr, depth)
        return False

    def _constant_name(self, name: str, depth: int) -> bool:
        if name in ("True", "False", "None") or name in self._comprehension_names:
            return True
        hit = self.env.binding(name)
        if hit is None:
            return True  # module-level constant, import, builtin
        scope, bindings = hit
        notes = self.notes(scope)
        if any(
            self.is_literal_collection(collection, depth + 1) and self._guard_holds(block, inside)
            for collection, block, inside in notes.guarded.get(name, [])
        ):
            return True
        loops = notes.loops.get(name, [])
        for kind, payload in bindings:
            if kind == "value":
                if not self.is_constant(payload, depth + 1):
                    return False
            elif kind == "param":
                if not (_literal_annotation(payload) or self._enum_annotation(payload)):
                    return False
            elif kind in ("import", "func", "class"):
                continue
            elif kind == "unknown":
                if not loops or not all(self._constant_loop(i, depth + 1) for i in loops):
                    return False
            else:
                return False
        return bool(bindings)

    def _guard_holds(self, block, inside: bool) -> bool:
        """Whether an allow-list check covers the sink being judged (see `_guard`)."""
        if block is None or self.sink is None:
            return True
        within = any(node is self.sink for node in _walk(block))
        return within if inside else not within

    def _constant_loop(self, iterable, depth: int) -> bool:
        if isinstance(iterable, _Items):
            return self.is_literal_collection(iterable.iterable, depth)  # its elements hold constants only
        return self.is_literal_collection(iterable, depth) or _is_range(iterable)

    def _constant_call(self, expr: cst.Call, depth: int) -> bool:
        func = expr.func
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            # {"asc": "ASC"}.get(order, "ASC"), ALLOWED.get(col)
            if method == "get" and self.is_literal_collection(func.value, depth + 1):
                return all(self.is_constant(a.value, depth + 1) for a in expr.args[1:])
            # ", ".join(f":id_{i}" for i in range(len(ids))): generated bind-parameter names
            if method == "join" and isinstance(func.value, (cst.SimpleString, cst.Name)) and len(expr.args) == 1:
                if not self.is_constant(func.value, depth + 1):
                    return False
                return self._constant_iterable(expr.args[0].value, depth + 1)
            if method in ("upper", "lower", "strip") and not expr.args:
                return self.is_constant(func.value, depth + 1)
            # preparer.quote_identifier(name), preparer.format_table(t): an escaped identifier
            if method.startswith("quote") or method in ("format_table", "format_column", "format_schema"):
                return True
        if isinstance(func, cst.Name) and func.value == "quoted_name":
            return True
        name = dotted_name(func) if isinstance(func, (cst.Name, cst.Attribute)) else None
        if name in ("str", "repr") and len(expr.args) == 1:
            return self.is_constant(expr.args[0].value, depth + 1)
        return False

    def _constant_iterable(self, expr: cst.BaseExpression, depth: int) -> bool:
        if isinstance(expr, (cst.GeneratorExp, cst.ListComp, cst.SetComp)) and self._names_only_template(expr.elt):
            # ", ".join(f":{k}" for k in row), ", ".join(f'"{c}" = :{c}' for c in cols): bind
            # parameter names and quoted identifiers, whatever the keys are.
            return True
        if isinstance(expr, (cst.GeneratorExp, cst.ListComp, cst.SetComp)):
            names: list[str] = []
            comp = expr.for_in
            while comp is not None:
                if not (_is_range(comp.iter) or _is_enumerate_index(comp) or self.is_literal_collection(comp.iter, depth + 1)):
                    return False
                names.extend(_target_names(comp.target, index_only=_is_enumerate_index(comp)))
                comp = comp.inner_for_in
            added = [n for n in names if n not in self._comprehension_names]
            self._comprehension_names.update(added)
            try:
                return self.is_constant(expr.elt, depth + 1)
            finally:
                self._comprehension_names.difference_update(added)
        return self.is_literal_collection(expr, depth)

    def is_literal_collection(self, expr: cst.BaseExpression, depth: int = 0) -> bool:
        """A literal list/tuple/set/dict of constants, or a name bound to one (module-level names count)."""
        if depth > 12:
            return False
        if isinstance(expr, cst.Subscript):  # ROLE["perms"], where ROLE is a literal collection
            return self.is_literal_collection(expr.value, depth + 1)
        if isinstance(expr, (cst.List, cst.Tuple, cst.Set)):
            return all(isinstance(e, cst.Element) and self.is_constant(e.value, depth + 1) for e in expr.elements)
        if isinstance(expr, cst.Dict):
            return all(isinstance(e, cst.DictElement) and self.is_constant(e.value, depth + 1) for e in expr.elements)
        if isinstance(expr, cst.Name):
            hit = self.env.binding(expr.value)
            if hit is None:
                return True  # ALLOWED_COLUMNS, an imported allow-list, or a Literal alias
            if all(kind == "unknown" for kind, _ in hit[1]):
                # `for role in DEFAULT_ROLES`: each element of a literal collection of collections.
                loops = self.notes(hit[0]).loops.get(expr.value, [])
                return bool(loops) and all(
                    not isinstance(i, _Items) and self.is_literal_collection(i, depth + 1) for i in loops
                )
            values = [p for k, p in hit[1] if k == "value"]
            appended = self.notes(hit[0]).appended.get(expr.value, [])  # `clauses = []` then `clauses.append(...)`
            return (
                bool(values) and len(values) == len(hit[1]) and all(self.is_literal_collection(v, depth + 1) for v in values)
                and all(self._names_only_template(a) or self.is_constant(a, depth + 1) for a in appended)
            )
        if isinstance(expr, cst.Attribute):
            root = expr
            while isinstance(root, cst.Attribute):
                root = root.value
            return isinstance(root, cst.Name) and self.env.binding(root.value) is None
        if isinstance(expr, cst.Call):
            func = expr.func
            if isinstance(func, cst.Attribute) and func.attr.value in ("keys", "values") and not expr.args:
                return self.is_literal_collection(func.value, depth + 1)
            if isinstance(func, cst.Name) and func.value in ("set", "frozenset", "tuple", "list") and len(expr.args) == 1:
                return self.is_literal_collection(expr.args[0].value, depth + 1)
            if isinstance(func, cst.Name) and func.value == "get_args" and len(expr.args) == 1:
                return True  # typing.get_args(SortOrder)
        return False


def _enclosing_class(ctx) -> Optional[cst.ClassDef]:
    for scope in reversed(ctx.scopes):
        if scope.kind == "class" and isinstance(scope.node, cst.ClassDef):
            return scope.node
    return None


def _module_class(ctx, name: str) -> Optional[cst.ClassDef]:
    """A class defined at the top of this module, by its name."""
    for stmt in ctx.module_node.body:
        if isinstance(stmt, cst.ClassDef) and stmt.name.value == name:
            return stmt
    return None


# Alembic's migration API: `op.execute(sql)` and the connection `op.get_bind()` hands out.
_ALEMBIC_BINDS = ("alembic.op.get_bind", "alembic.context.get_bind")


def _alembic_receiver(summary) -> bool:
    if summary and summary[0] == "ref":
        return summary[1] == "alembic.op"
    if summary and summary[0] == "call" and summary[1] and summary[1][0] == "ref":
        return summary[1][1] in _ALEMBIC_BINDS
    return False


def _passes_sql_to_sink(ctx, cls: cst.ClassDef, method: cst.FunctionDef, depth: int = 0) -> bool:
    """A method of the project's own database wrapper (`async def fetchall(self, query, values)`)
    that hands its first parameter to `text()` or `exec_driver_sql()` (directly, through a
    rewrite such as `self.rewrite_query(query)`, or through another such method of its class)."""
    params = [p.name.value for p in list(method.params.posonly_params) + list(method.params.params)]
    if len(params) < 2 or depth > 2:
        return False
    sql = params[1]

    def carries(expr: cst.BaseExpression) -> bool:
        if isinstance(expr, cst.Name):
            return expr.value == sql
        if isinstance(expr, cst.Call) and expr.args and not expr.args[0].star and expr.args[0].keyword is None:
            return isinstance(expr.args[0].value, cst.Name) and expr.args[0].value.value == sql
        return False

    for node in _walk(method):
        if not (isinstance(node, cst.Call) and node.args and carries(node.args[0].value)):
            continue
        func = node.func
        if ctx.qualname(func) == SQLALCHEMY_TEXT:
            return True
        if isinstance(func, cst.Attribute) and func.attr.value == "exec_driver_sql":
            return True
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            other = next(
                (st for st in cls.body.body if isinstance(st, cst.FunctionDef) and st.name.value == func.attr.value and st is not method),
                None,
            ) if isinstance(cls.body, cst.IndentedBlock) else None
            if other is not None and _passes_sql_to_sink(ctx, cls, other, depth + 1):
                return True
    return False


_SCHEMA_OBJECT_NAMES = frozenset({"column", "col", "table", "tbl"})


def _model_like(expr: cst.Attribute) -> bool:
    """`User.__tablename__`, `model.__table__.name`, `column.name`, `table.c[key].name`: an
    identifier of the schema, not a value (`user.name` stays a value)."""
    if expr.attr.value in ("__tablename__", "__table__"):
        return True
    value = expr.value
    if isinstance(value, cst.Attribute) and value.attr.value == "__table__":
        return True
    if expr.attr.value != "name":
        return False
    if isinstance(value, cst.Name) and value.value in _SCHEMA_OBJECT_NAMES:
        return True
    # table.c[key].name, table.columns["id"].name
    return isinstance(value, cst.Subscript) and isinstance(value.value, cst.Attribute) and value.value.attr.value in ("c", "columns")


def _literal_annotation(param: cst.Param) -> bool:
    """`order: Literal["asc", "desc"]` (also inside Optional/Annotated)."""
    if param.annotation is None:
        return False
    for node in _walk(param.annotation.annotation):
        if isinstance(node, cst.Subscript) and (dotted_name(node.value) or "").rsplit(".", 1)[-1] == "Literal":
            return True
    return False


def _is_range(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value == "range"


def _is_enumerate_index(comp: cst.CompFor) -> bool:
    return (
        isinstance(comp.iter, cst.Call)
        and isinstance(comp.iter.func, cst.Name)
        and comp.iter.func.value == "enumerate"
        and isinstance(comp.target, cst.Tuple)
    )


def _target_names(target: cst.BaseExpression, index_only: bool) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, cst.Tuple) and target.elements:
        first = target.elements[0].value
        if index_only:
            return [first.value] if isinstance(first, cst.Name) else []
        return [n for e in target.elements for n in _target_names(e.value, False)]
    return []


def _returns(function: cst.FunctionDef) -> Iterator[cst.BaseExpression]:
    for node in _walk(function):
        if isinstance(node, cst.Return) and node.value is not None:
            yield node.value


def _flatten_add(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
        return _flatten_add(node.left) + _flatten_add(node.right)
    return [node]


def _flatten_concatenated(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(node, cst.ConcatenatedString):
        return _flatten_concatenated(node.left) + _flatten_concatenated(node.right)
    return [node]


def _code(ctx, node: cst.CSTNode) -> str:
    return shorten(ctx.module_node.code_for_node(node), 40)


# -- project-level check for helpers in other modules ------------------------------------------------
def not_an_enum(index, summary) -> bool:
    """Requirement: the annotation's class is not an Enum of the project."""
    return not (summary and summary[0] == "ref" and index.is_enum_class(summary[1]))


def returns_interpolated(index, summary) -> bool:
    """The called project function returns a string formatted from values that vary per call."""
    callee = index.value(summary[1]) if summary and summary[0] == "call" else None
    if not callee or callee[0] != "func":
        return False
    hit = index.function(callee[1])
    if hit is None:
        return False
    return any(_dynamic_summary(returned) for returned in hit[1].returns)


def _dynamic_summary(summary, depth: int = 0) -> bool:
    if not summary or depth > 10:
        return False
    tag = summary[0]
    if tag == "fstr":
        return any(not _constant_summary(p) for p in summary[1])
    if tag == "binop" and summary[1] == "%":
        return _stringish(summary[2]) and not _constant_summary(summary[3])
    if tag == "binop" and summary[1] == "+":
        sides = (summary[2], summary[3])
        if not any(_stringish(s) for s in sides):
            return False
        return any(_dynamic_summary(s, depth + 1) or not _constant_summary(s) for s in sides)
    if tag == "call" and summary[1] and summary[1][0] == "attr" and summary[1][2] == "format":
        if _stringish(summary[1][1]):
            return any(not _constant_summary(a) for a in summary[2]) or any(not _constant_summary(v) for _, v in summary[3])
    return False


def _stringish(summary) -> bool:
    return bool(summary) and (summary[0] == "fstr" or (summary[0] == "lit" and isinstance(summary[1], str)) or (summary[0] == "binop" and _stringish(summary[2])))


def _constant_summary(summary) -> bool:
    if not summary:
        return False
    tag = summary[0]
    if tag in ("lit", "ref"):
        return True
    if tag == "fstr":
        return all(_constant_summary(p) for p in summary[1])
    if tag == "binop":
        return _constant_summary(summary[2]) and _constant_summary(summary[3])
    return False


# -- the fix --------------------------------------------------------------------------------------
_VALUE_BEFORE = re.compile(
    r"(?:=|<|>|\bLIKE|\bILIKE|\bLIMIT|\bOFFSET|\bBETWEEN|\bVALUES\s*\(|\bBETWEEN\s+:\w+\s+AND)\s*$",
    re.IGNORECASE,
)
_VALUES_LIST = re.compile(r"\bVALUES\s*\(([^()]*)$", re.IGNORECASE | re.DOTALL)
_NEXT_OK = re.compile(r"(?:\s|\)|,|;|$)")
_EXISTING_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")


def bind_fix(ctx, fstring: cst.FormattedString) -> Optional[tuple[str, list[tuple[str, str]]]]:
    """The f-string as a plain SQL literal with `:name` binds, and the (name, expression) pairs.

    None when a placeholder is not a plain name or attribute, has a format spec or conversion,
    or sits where a value cannot go (identifiers after FROM/JOIN/ORDER BY, inside a quoted
    pattern like `'%{q}%'`, before `.` or `::`).
    """
    if "b" in fstring.start.lower():
        return None
    pieces: list[str] = []  # SQL text so far, in source form (escapes kept, braces undoubled)
    binds: list[tuple[str, str]] = []
    by_expression: dict[str, str] = {}
    existing = set()
    for part in fstring.parts:
        if isinstance(part, cst.FormattedStringText):
            existing.update(_EXISTING_BIND.findall(part.value))
    parts = list(fstring.parts)
    skip_quote = False
    for i, part in enumerate(parts):
        if isinstance(part, cst.FormattedStringText):
            value = part.value.replace("{{", "{").replace("}}", "}")
            if skip_quote:
                value = value[1:]
                skip_quote = False
            pieces.append(value)
            continue
        if part.format_spec is not None or part.conversion is not None:
            return None
        expression = part.expression
        if not _simple(expression):
            return None
        before = "".join(pieces)
        after = parts[i + 1].value if i + 1 < len(parts) and isinstance(parts[i + 1], cst.FormattedStringText) else ""
        if i + 1 < len(parts) and not isinstance(parts[i + 1], cst.FormattedStringText):
            return None  # two placeholders in a row: `{a}{b}`
        quoted = before.endswith("'")
        if quoted:
            if not after.startswith("'"):
                return None
            before = before[:-1]
            after = after[1:]
        if not _value_position(before) or not _NEXT_OK.match(after):
            return None
        code = ctx.module_node.code_for_node(expression)
        name = by_expression.get(code)
        if name is None:
            name = _bind_name(expression, {n for n, _ in binds} | existing)
            by_expression[code] = name
            binds.append((name, code))
        if quoted:
            pieces[-1] = pieces[-1][:-1]
            skip_quote = True
        pieces.append(f":{name}")
    opening = fstring.start.replace("f", "").replace("F", "")  # rf""" -> r"""
    return f"{opening}{''.join(pieces)}{fstring.end}", binds


def _simple(expression: cst.BaseExpression) -> bool:
    node = expression
    while isinstance(node, cst.Attribute):
        node = node.value
    return isinstance(node, cst.Name)


def _value_position(before: str) -> bool:
    if _VALUE_BEFORE.search(before):
        return True
    # `VALUES (:a, {b}`: later items of an open VALUES list
    match = _VALUES_LIST.search(before)
    return bool(match) and before.rstrip().endswith(",")


def _bind_name(expression: cst.BaseExpression, taken: set[str]) -> str:
    parts: list[str] = []
    node = expression
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name) and not (node.value in ("self", "cls") and parts):
        parts.append(node.value)
    base = "_".join(reversed(parts)).strip("_") or "value"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


class InterpolatedSql(Rule):
    """
    SQL built by string formatting (f-string, `%`, `.format()`, `+`) from values that vary per
    call, reaching `text()`, `exec_driver_sql()`, `execute()` or an asyncpg/aiosqlite query method.

    ## What it does
    Follows the first argument of a SQL sink back to where the string was built: inline, through
    local assignments (and `sql += ...`) in the same function, or through a small helper that
    returns the formatted string (in the same module, or in another module of the project).
    Sinks are `sqlalchemy.text()` under any import path or alias (resolved by qualified name,
    including project re-exports), `exec_driver_sql()`, `execute()`/`scalar()`/`scalars()` of a
    `Session`, `Connection`, `Engine` or their async versions given a plain string, and
    `fetch`/`fetchrow`/`fetchval`/`execute`/`executemany` of an asyncpg or aiosqlite connection
    or pool. A placeholder whose value is fixed per process (a literal, a module-level constant,
    `Model.__tablename__`, an item of a literal collection such as `{"asc": "ASC"}[order]`, or a
    name checked against an allow-list with `if col not in ALLOWED: raise`, or typed `Literal[...]`)
    is not reported unless the option `strict = true` is set. Neither are DDL and utility
    statements (`CREATE`, `DROP`, `ALTER`, `GRANT`, `PRAGMA`, `SHOW`, `SAVEPOINT`, `PREPARE
    TRANSACTION`, ...): their arguments are identifiers or ids that no driver can bind (the live
    test shows PostgreSQL and MariaDB rejecting them), so the advice would be impossible.

    ## Why is this bad?
    Every distinct value becomes a distinct SQL text: the `db.statement` attribute and the span
    name's statement carry the value, so a tracing backend sees one "query" per user id, and
    grouping, sampling and statistics per query stop working (cardinality grows with the data).
    The database cannot reuse the prepared statement or plan either. And a value that reaches
    the SQL text unescaped is an injection. With bound parameters there is one statement text.

    ## Example
    ```python
    from sqlalchemy import text

    async def get_user(session, user_id: int):
        return await session.execute(text(f"SELECT * FROM users WHERE id = {user_id}"))
    ```

    ## Use instead
    ```python
    from sqlalchemy import text

    async def get_user(session, user_id: int):
        return await session.execute(text("SELECT * FROM users WHERE id = :user_id").bindparams(user_id=user_id))
    ```

    ## Fix safety
    The fix is unsafe. It rewrites an f-string inside `text()` whose placeholders are all plain
    names or attributes in value positions (after `=`, `<`, `>`, `LIKE`, `LIMIT`, `OFFSET`,
    `BETWEEN`, inside `VALUES (...)`; a placeholder wrapped in single quotes, `'{name}'`, loses
    the quotes) into a literal with `:name` bind parameters, and passes the values with
    `.bindparams(name=value)`. `.bindparams()` is used rather than the `execute()` parameters
    because it travels with the statement wherever it goes (a variable, `scalar()`, a subquery)
    and composes with parameters already given to `execute()`. It changes the statement text,
    and the database now receives typed parameters instead of literals: an `int` compared with a
    text column, or a string of digits compared with an integer column, may now fail or compare
    differently; `NULL` arrives as a parameter (`= NULL` stays false). Identifiers (table and
    column names after `FROM`, `JOIN`, `ORDER BY`), `IN` lists (they need an expanding bind
    parameter), quoted patterns such as `'%{q}%'`, `%`-formatting, `.format()`, concatenation,
    strings built away from the sink, and the other sinks are reported without a fix.

    ## Known problems
    Values are followed within one function and through helpers called directly; a string
    passed in as a parameter, stored on `self`, or built by a loop that appends to a list is not
    followed. Escaped identifiers (`preparer.quote_identifier(x)`, `quoted_name(...)`) count as constants. Instance attributes (`self.table`) count as varying values: silence a reviewed
    identifier with `# doctor: ignore[OSD301]`. For helpers in other modules, allow-list checks
    inside the helper are not seen. `execute()` on objects whose type cannot be inferred
    (`self.session`, an untyped parameter) is not checked; `text()` and `exec_driver_sql()` are.

    ## References
    - reproduced by tests/rules/test_osd301_live.py in the otel-sqla-doctor repository (`db.statement` is the
      compiled SQL; the statement cache is keyed by SQL text)
    - https://docs.sqlalchemy.org/en/20/core/sqlelement.html#sqlalchemy.sql.expression.text
    - https://docs.sqlalchemy.org/en/20/core/sqlelement.html#sqlalchemy.sql.expression.TextClause.bindparams
    - ruff S608, bandit B608 (keyword regexes that do not resolve `text`); bandit#1302, ruff#8717
    """

    CODE = "OSD301"
    REPORTS_IN = frozenset({PathRole.SERVICE, PathRole.MIGRATION})
    REPORTS_IN_WHY = 'The harm (a distinct `db.statement` per value, no statement reuse, injection) needs production traffic: the service and the migrations that run against the production database. Test helpers, examples and one-off scripts interpolate table names and fixtures.'
    NAME = "interpolated-sql"
    FAMILY = "sql-text"
    SEVERITY = Severity.WARNING
    MESSAGE = (
        "SQL built by string formatting reaches a SQL sink: each distinct value becomes a distinct "
        "`db.statement` (unbounded span cardinality, no statement reuse) and an injection risk"
    )
    HINT = "use bound parameters: `text(\"... WHERE id = :id\").bindparams(id=user_id)` (or the driver's `$1`/`?` parameters)"
    # Sinks, plus helpers that return an f-string (so a module of SQL helpers is indexed too).
    PREFILTER = (
        b"text(",
        b"exec_driver_sql",
        b".execute(",
        b".scalar(",
        b".scalars(",
        b".fetch",
        b".executemany(",
        b'return f"',
        b"return f'",
    )
    FIX = "unsafe"
    OPTIONS = {"strict": False}

    def visit_Call(self, node: cst.Call) -> None:
        if not node.args:
            return
        sql = _sql_argument(node)
        if sql is None or isinstance(sql, (cst.SimpleString, cst.Integer, cst.Lambda)):
            return
        if not isinstance(sql, (cst.FormattedString, cst.BinaryOperation, cst.Call, cst.Name, cst.ConcatenatedString)):
            return
        sink = self._sink(node)
        if sink is None:
            return
        label, requires, is_text = sink
        if self.ctx.function is not None:
            scopes = [s for s in self.ctx.scopes if s.kind == "function"]
        else:
            scopes = []
        analyzer = _Analyzer(self.ctx, _Env(scopes, self.ctx.module_scope), sink=node)
        found = analyzer.interpolation(sql)
        if found is None:
            return
        strict = bool(self.options.get("strict"))
        requires_not_enum: tuple = ()
        if not found.dynamic and analyzer.enum_requirements:
            # Only parameters typed with another module's class vary: a finding unless that
            # class is an Enum (a fixed set of values written in the code).
            retry = _Analyzer(self.ctx, _Env(scopes, self.ctx.module_scope), sink=node)
            retry.enum_requirements = None  # take those parameters as values this time
            found = retry.interpolation(sql) or found
            requires_not_enum = tuple(check(s, f"{_THIS}:not_an_enum") for s in dict.fromkeys(analyzer.enum_requirements))
        if not found.dynamic and not (strict and found.constant):
            return
        unbindable = _UNBINDABLE_STATEMENT.match(found.leading)
        if unbindable and not strict:
            return
        shown = found.dynamic or found.constant
        values = ", ".join(f"`{v}`" for v in dict.fromkeys(shown))
        source = f"`{found.via}` ({found.how})" if found.via else found.how
        if unbindable:
            message = (
                f"SQL built with {source} from {values} reaches {label} (strict mode: a "
                f"`{unbindable.group(0).strip().upper()}` statement cannot take bound parameters; quote identifiers "
                f"with the dialect's `identifier_preparer.quote()` and check them against an allow-list)"
            )
        elif found.dynamic:
            message = (
                f"SQL built with {source} from {values} reaches {label}: each distinct value becomes a distinct "
                f"`db.statement` (unbounded span cardinality, no statement reuse) and an injection risk"
            )
        else:
            message = (
                f"SQL built with {source} from {values} reaches {label} (strict mode: these look constant or "
                f"allow-listed; prefer bound parameters or `quoted_name` for identifiers)"
            )
        replacement = None
        if is_text and isinstance(sql, cst.FormattedString) and found.node is sql and found.dynamic and not unbindable:
            replacement = self._fix(node, sql)
        self.report(
            node,
            message,
            requires=(*requires, *found.requires, *requires_not_enum),
            replacement=replacement,
            fix_description="Use bound parameters: `text(\"... :name\").bindparams(name=value)`" if replacement else None,
        )

    def __init__(self, ctx, options=None) -> None:
        super().__init__(ctx, options)
        # Continuation lines of a node rendered alone lack the indentation of the blocks around it.
        self._indents: list[str] = []

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._indents.append(node.indent if node.indent is not None else self.ctx.module_node.default_indent)

    def leave_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._indents.pop()

    def _fix(self, node: cst.Call, sql: cst.FormattedString) -> Optional[str]:
        fixed = bind_fix(self.ctx, sql)
        if fixed is None:
            return None
        literal, binds = fixed
        token = "__osd301_sql__"
        index = next(i for i, a in enumerate(node.args) if a.value is sql)
        args = list(node.args)
        args[index] = args[index].with_changes(value=cst.Name(token))
        code = self.ctx.module_node.code_for_node(node.with_changes(args=args))
        if '"""' in code or "'''" in code or code.count(token) != 1:
            return None
        indent = "".join(self._indents)
        code = code.replace("\n", "\n" + indent) if indent else code
        code = code.replace(token, literal)
        return f"{code}.bindparams({', '.join(f'{n}={v}' for n, v in binds)})"

    def _wrapper_sink(self, func: cst.Attribute) -> Optional[str]:
        """`self.fetchall(sql, ...)` inside a database wrapper class whose method passes its SQL
        argument on to `text()`."""
        if not (isinstance(func.value, cst.Name) and func.value.value == "self"):
            return None
        cls = _enclosing_class(self.ctx)
        if cls is None or not isinstance(cls.body, cst.IndentedBlock):
            return None
        for stmt in cls.body.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == func.attr.value:
                if _passes_sql_to_sink(self.ctx, cls, stmt):
                    return f"`self.{func.attr.value}()` (which hands it to `text()`)"
                return None
        return None

    def _sink(self, node: cst.Call):
        """(label, requirements, is_text) when the call is a SQL sink, else None."""
        func = node.func
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            if method == "exec_driver_sql":
                return "`exec_driver_sql()`", (), False
            if method == "execute" and _alembic_receiver(self.ctx.summarize(func.value)):
                return "Alembic's `execute()`", (), False
            wrapper = self._wrapper_sink(func)
            if wrapper is not None:
                return wrapper, (), False
            if method in SQLALCHEMY_METHODS or method in DRIVER_METHODS:
                if isinstance(node.args[0].value, cst.Call) and not _is_format_call(node.args[0].value):
                    # execute(text(...)): the text() call is the sink; execute(helper()) is followed below
                    callee = self.ctx.qualname(node.args[0].value.func)
                    if callee == SQLALCHEMY_TEXT or (callee or "").rsplit(".", 1)[-1] == "text":
                        return None
                kinds = ()
                if method in SQLALCHEMY_METHODS:
                    kinds += SQLALCHEMY_KINDS
                if method in DRIVER_METHODS:
                    kinds += DRIVER_KINDS
                receiver = self.ctx.summarize(func.value)
                if receiver is None or receiver == ("unknown",):
                    return None
                return f"`{method}()`", (kind_in(receiver, *kinds),), False
        summary = self.ctx.summarize(func)
        if not summary or summary[0] != "ref":
            return None
        qualname = self.ctx.qualname(func)
        if qualname == SQLALCHEMY_TEXT:
            return "`text()`", (), True
        if qualname and qualname.rsplit(".", 1)[-1] == "text" and qualname.split(".", 1)[0] not in ("sqlalchemy", "sqlmodel"):
            # `from app.db import text`: a re-export of sqlalchemy.text, or an HTML builder.
            return "`text()`", (qualname_in(summary, SQLALCHEMY_TEXT),), True
        return None

    VALID = [
        Valid(
            """
            from sqlalchemy import text

            async def get_user(session, user_id: int):
                return await session.execute(text("SELECT * FROM users WHERE id = :id"), {"id": user_id})
            """,
            note="bound parameters",
        ),
        Valid(
            """
            from tagflow import text

            def render(user):
                text(f"Hello {user.name}, you have {user.unread} messages")
            """,
            note="an HTML builder named text: not SQL",
        ),
        Valid(
            """
            import logging
            from sqlalchemy import text

            log = logging.getLogger(__name__)

            def purge(session, table_id):
                log.info(f"delete from audit where table_id = {table_id}")
                session.execute(text("DELETE FROM audit WHERE table_id = :t"), {"t": table_id})
            """,
            note="SQL-looking prose in a log line is not a sink",
        ),
        Valid(
            """
            from sqlalchemy import text

            TABLE = "events"
            SCHEMA = "analytics"

            async def count(conn, since):
                sql = text(f"SELECT count(*) FROM {SCHEMA}.{TABLE} WHERE at > :since")
                return await conn.scalar(sql, {"since": since})
            """,
            note="module-level constant identifiers plus bound parameters",
        ),
        Valid(
            """
            from sqlalchemy import text

            ALLOWED_COLUMNS = {"name", "created_at", "email"}

            def list_users(session, order_by: str, direction: str):
                if order_by not in ALLOWED_COLUMNS:
                    raise ValueError(order_by)
                sort = {"asc": "ASC", "desc": "DESC"}[direction]
                return session.execute(text(f"SELECT * FROM users ORDER BY {order_by} {sort} LIMIT :n"), {"n": 50})
            """,
            note="identifiers from an allow-list and a literal mapping",
        ),
        Valid(
            """
            from typing import Literal
            from sqlalchemy import text
            from app.models import User

            def page(session, ids: list[int], order: Literal["asc", "desc"]):
                marks = ", ".join(f":id{i}" for i in range(len(ids)))
                stmt = text(f"SELECT * FROM {User.__tablename__} WHERE id IN ({marks}) ORDER BY id {order}")
                return session.execute(stmt, {f"id{i}": v for i, v in enumerate(ids)})
            """,
            note="generated bind-parameter names, a model's table name, a Literal-typed parameter",
        ),
        Valid(
            """
            def greet(conn, name):
                conn.execute(f"say hello to {name}")
            """,
            note="execute() of an unknown object",
        ),
        Valid(
            """
            from sqlalchemy import text

            async def tables(conn):
                for table in ("users", "orders"):
                    await conn.execute(text(f"ANALYZE {table}"))
                direction = "ASC" if conn else "DESC"
                await conn.execute(text(f"SELECT 1 ORDER BY 1 {direction}"))
            """,
            note="loop over a literal tuple, a conditional between two literals",
        ),
        Valid(
            """
            from sqlalchemy import text

            def create_db(conn, ident):
                conn.exec_driver_sql("CREATE DATABASE %s" % ident)
                conn.exec_driver_sql(f"ALTER DATABASE {ident} SET ALLOW_SNAPSHOT_ISOLATION ON")
                conn.execute(text("DROP SCHEMA " + ident + " CASCADE"))

            def prepare(conn, xid):
                conn.exec_driver_sql("PREPARE TRANSACTION '%s'" % xid)

            def setting(conn, name):
                sql = "SHOW VARIABLES LIKE '%s'" % name
                return conn.exec_driver_sql(sql)
            """,
            note="DDL and utility statements: no driver can bind their arguments (SQLAlchemy's own provisioning)",
        ),
        Valid(
            """
            from sqlalchemy import CheckConstraint, text

            def json_check(column):
                return CheckConstraint(text(f"{column.name} IS JSON"))

            def ordered(conn, table, key):
                return conn.execute(text(f"SELECT * FROM t ORDER BY {table.c[key].name}"))
            """,
            note="names of schema objects (`column.name`, `table.c[key].name`) are identifiers",
        ),
        Valid(
            """
            from sqlalchemy import text

            def use_schema(conn, schema_name: str):
                conn.execute(text(f'SET search_path TO "{schema_name}"'))

            def probe(session, tenant_id: str):
                return session.execute(text(f'SELECT * FROM "{tenant_id}".alembic_version LIMIT 1'))

            def batch_delete(bind, table_name: str, id_column: str, ids):
                bind.execute(text(f"DELETE FROM {table_name} WHERE {id_column} = ANY(:ids)").bindparams(ids=ids))

            def nearest(conn, column: str, embedding):
                return conn.execute(text(f"SELECT *, {column} <=> :emb AS d FROM items LIMIT :n"), {"emb": embedding, "n": 5})
            """,
            note="identifier positions (quoted, schema-qualified, after FROM, beside a bound value) hold names, not values",
        ),
        Valid(
            """
            from sqlalchemy import text

            def insert_query(table: str, row: dict) -> str:
                columns = ", ".join(f'"{k}"' for k in row)
                placeholders = ", ".join(f":{k}" for k in row)
                return f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"

            async def insert(conn, row: dict):
                await conn.execute(text(insert_query("wallets", row)), row)

            async def count(conn, model, since):
                return await conn.fetch(f"SELECT count(*) FROM {model.table_name()} WHERE completed >= $1", since)

            async def explain(session, statement: str):
                return await session.execute(text(f"EXPLAIN ANALYZE {statement}"))
            """,
            note="column and placeholder lists from a row's keys, a table name from a method, a whole statement",
        ),
        Valid(
            """
            from enum import StrEnum
            from sqlalchemy import text

            ROLES = {"editor": {"perms": ["read", "write"]}}

            class Interval(StrEnum):
                day = "day"
                week = "week"

                def sql(self):
                    return text(f"SELECT now() - '1 {self.value}'::interval")

            def since(conn, interval: Interval):
                return conn.execute(text(f"SELECT * FROM events WHERE at > now() - '1 {interval}'::interval"))

            def grant(conn):
                perms = "ARRAY[" + ",".join(f"'{p}'" for p in ROLES["editor"]["perms"]) + "]"
                conn.execute(text(f"UPDATE roles SET perms = {perms} WHERE name = 'editor'"))
            """,
            note="members of an Enum and items of a literal collection are a fixed set written in the code",
        ),
        Valid(
            """
            from sqlalchemy import text
            from app import settings

            def convert(setting: str) -> str:
                return f"UPDATE environment SET settings = settings - '{setting}' WHERE settings ? '{setting}'"

            async def upgrade(conn):
                await conn.execute(text(convert(settings.REPAIR_INTERVAL)))
                await conn.execute(text(convert("deploy_interval")))
            """,
            note="a helper whose parameters are filled with constants at this call",
        ),
        Valid(
            """
            import sqlalchemy as sa

            DEFAULT_ROLES = [{"name": "owner", "permissions": ["read", "write"]}]

            def backfill(connection):
                for role in DEFAULT_ROLES:
                    perms = "ARRAY[" + ",".join(f"'{p}'" for p in role["permissions"]) + "]::TEXT[]"
                    connection.execute(sa.text(f"INSERT INTO roles (name, perms) VALUES (:name, {perms})"), role)

            def fix_tags(bind):
                KNOWN: list[tuple[str, str]] = [("JIRA", "labels"), ("GURU", "tags")]
                for source, key in KNOWN:
                    bind.execute(sa.text(f"UPDATE tag SET is_list = true WHERE tag_key = '{key}' AND source = '{source}'"))
            """,
            note="loops over literal collections written in the code (migrations do this)",
        ),
        Valid(
            {
                "app/__init__.py": "",
                "app/models.py": """
                    from enum import StrEnum

                    class WebhookEventType(StrEnum):
                        order_created = "order.created"
                        order_paid = "order.paid"
                """,
                "app/service.py": """
                    from sqlalchemy import text
                    from app.models import WebhookEventType

                    async def endpoints_for(session, event: WebhookEventType):
                        return await session.execute(text(f"SELECT id FROM endpoints WHERE events @> '[\\"{event}\\"]'"))
                """,
            },
            note="a parameter typed with an Enum of another module: one of a fixed set of values",
        ),
        Valid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from sqlalchemy import text

                    class Filters:
                        def __init__(self, sortby: str, table: str):
                            self.sortby = sortby
                            self.table = table

                        def where(self, extra=None) -> str:
                            clauses = []
                            for key in ("name", "email"):
                                clauses.append(f"{key} = :{key}")
                            return "WHERE " + " AND ".join(clauses)

                        def order_by(self) -> str:
                            return f"ORDER BY {self.sortby}"

                    class Connection:
                        def __init__(self, conn):
                            self.conn = conn

                        async def fetchall(self, query: str, values=None):
                            return (await self.conn.execute(text(query), values or {})).all()

                        async def page(self, query: str, filters: Filters, values: dict):
                            return await self.fetchall(f"{query} {filters.where()} {filters.order_by()} LIMIT :limit", values)
                """,
                "alembic/versions/0002_enum.py": """
                    from alembic import op

                    def upgrade():
                        for value in ("archived", "deleted"):
                            op.execute(f"ALTER TYPE status ADD VALUE '{value}'")
                            op.execute(f"UPDATE items SET status = '{value}' WHERE status IS NULL")
                """,
            },
            note="a wrapper's own fetchall() given clauses of bound names and identifiers; a migration's literal values",
        ),
    ]
    INVALID = [
        Invalid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from sqlalchemy import text

                    class Filters:
                        def __init__(self, limit: int, offset: int):
                            self.limit = limit
                            self.offset = offset

                        def pagination(self) -> str:
                            stmt = f"LIMIT {min(1000, self.limit)} "
                            if self.offset:
                                stmt += f"OFFSET {self.offset}"
                            return stmt

                    class Connection:
                        def __init__(self, conn):
                            self.conn = conn

                        def rewrite_query(self, query: str) -> str:
                            return query.replace("?", ":p")

                        async def fetchall(self, query: str, values=None):
                            return (await self.conn.execute(text(self.rewrite_query(query)), values or {})).all()

                        async def page(self, query: str, filters: Filters | None, values: dict):
                            if not filters:
                                filters = Filters(10, 0)
                            return await self.fetchall(f"{query} {filters.pagination()}", values)  # ERROR
                """,
            },
            note="pagination values from a method of the project's Filters class, through the wrapper's own fetchall()",
        ),
        Invalid(
            """
            from sqlalchemy import text

            class Searcher:
                def build_filter_clause(self, filters) -> tuple[str, str]:
                    if filters is None:
                        return "", ""
                    clauses = []
                    for f in filters:
                        value = f"'{f.value}'" if isinstance(f.value, str) else f.value
                        clauses.append(f"{f.column} {f.operator} {value}")
                    clause = " AND ".join(clauses)
                    return f"WHERE {clause}", f"AND {clause}"

                async def search(self, session, filters):
                    where, also = self.build_filter_clause(filters)
                    inner = f\"\"\"
                        SELECT id FROM items
                        {where}
                    \"\"\"
                    ranked = f"WITH v AS ({inner}) SELECT id FROM v"
                    await session.execute(text(ranked))  # ERROR
                    return await session.execute(text(f"SELECT id FROM items WHERE price > 0 {also}"))  # ERROR
            """,
            note="clauses built by a method, returned in a tuple, joined from a list and nested in a CTE",
        ),
        Invalid(
            {
                "alembic/versions/0003_workspace.py": """
                    from alembic import op
                    from sqlalchemy import text

                    def downgrade():
                        conn = op.get_bind()
                        rows = conn.execute(text("SELECT id, url FROM credential")).fetchall()
                        for credential_id, url in rows:
                            workspace = url.split("//")[1]
                            op.execute(f"UPDATE connector SET workspace = '{workspace}' WHERE credential_id = {credential_id}")  # ERROR
                            op.get_bind().execute(  # ERROR
                                f"DELETE FROM pair WHERE credential_id = {credential_id}"
                            )
                """,
            },
            note="Alembic's op.execute() and op.get_bind().execute() given row values",
        ),
        Invalid(
            """
            from sqlalchemy import text

            def search(conn, brand: str, max_price: float):
                clause = f"brand = '{brand}' AND price < {max_price}"
                return conn.execute(text(f"SELECT * FROM items WHERE {clause}"))  # ERROR
            """,
            note="a WHERE clause built elsewhere is looked into: its values are interpolated",
        ),
        Invalid(
            """
            from sqlalchemy import text

            def by_name(conn, name):
                return conn.execute(text("SELECT * FROM users WHERE name = '%s'" % name))  # ERROR

            def by_id(conn, user_id):
                return conn.execute(text("SELECT * FROM users WHERE id = {}".format(user_id)))  # ERROR

            def page(conn, table, limit, offset):
                return conn.execute(text(f"SELECT * FROM {table} LIMIT " + str(limit) + f" OFFSET {offset}"))  # ERROR
            """,
            note="values placed by %-formatting, str.format and concatenation; the table name alone would not be reported",
        ),
        Invalid(
            """
            from sqlalchemy import text

            def convert(setting: str) -> str:
                return f"UPDATE environment SET settings = settings - '{setting}' WHERE settings ? '{setting}'"

            async def remove(conn, name: str):
                await conn.execute(text(convert(name)))  # ERROR
            """,
            note="the same helper, called with a value that varies per call",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/models.py": """
                    class EventName(str):
                        pass
                """,
                "app/service.py": """
                    from sqlalchemy import text
                    from app.models import EventName

                    async def endpoints_for(session, event: EventName):
                        return await session.execute(text(f"SELECT id FROM endpoints WHERE name = '{event}'"))  # ERROR
                """,
            },
            note="a parameter typed with another module's class that is not an Enum varies per call",
        ),
        Invalid(
            """
            import sqlalchemy as sa

            KEEP = {"PERSON": {}, "ORG": {}}

            def prune(conn):
                for id_name, attributes in conn.execute(sa.text("SELECT id_name, attributes FROM kind")).all():
                    if id_name not in KEEP:
                        conn.execute(sa.text(f"DELETE FROM kind WHERE id_name = '{id_name}'"))  # ERROR
                        continue
                    conn.execute(sa.text(f"UPDATE kind SET seen = true WHERE id_name = '{id_name}'"))
            """,
            note="inside `if x not in ALLOWED:` the value is exactly one the allow-list does not hold",
        ),
        Invalid(
            """
            from sqlalchemy import text

            async def get_user(session, user_id: int):
                return await session.execute(text(f"SELECT * FROM users WHERE id = {user_id}"))  # ERROR
            """,
            expected_fix="""
            from sqlalchemy import text

            async def get_user(session, user_id: int):
                return await session.execute(text("SELECT * FROM users WHERE id = :user_id").bindparams(user_id=user_id))  # ERROR
            """,
            unsafe_fixes=True,
        ),
        Invalid(
            """
            import sqlalchemy as sa

            def find(conn, user, status):
                query = sa.text(  # ERROR
                    f"SELECT id FROM orders WHERE owner = '{user.name}' AND status = {status} LIMIT 10"
                )
                return conn.execute(query).all()
            """,
            expected_fix="""
            import sqlalchemy as sa

            def find(conn, user, status):
                query = sa.text(  # ERROR
                    "SELECT id FROM orders WHERE owner = :user_name AND status = :status LIMIT 10"
                ).bindparams(user_name=user.name, status=status)
                return conn.execute(query).all()
            """,
            unsafe_fixes=True,
            note="aliased module, quoted placeholder loses its quotes, attribute placeholder",
        ),
        Invalid(
            """
            from sqlalchemy.sql.expression import text as sql
            from sqlalchemy.orm import Session

            def search(session: Session, table: str, term: str):
                stmt = "SELECT * FROM " + table
                if term:
                    stmt += f" WHERE name LIKE '%{term}%'"
                return session.execute(sql(stmt))  # ERROR
            """,
            note="another import path, concatenation, `+=` in the same function, no fix (identifier)",
        ),
        Invalid(
            """
            from sqlalchemy.ext.asyncio import AsyncSession

            async def delete(session: AsyncSession, ids):
                await session.execute("DELETE FROM t WHERE id IN (%s)" % ",".join(map(str, ids)))  # ERROR
                await (await session.connection()).exec_driver_sql("SELECT * FROM t WHERE id = {}".format(ids[0]))  # ERROR
            """,
            note="%-formatting into execute() of an AsyncSession, .format() into exec_driver_sql()",
        ),
        Invalid(
            """
            import asyncpg
            import aiosqlite

            async def main(dsn, user_id, name):
                pool = await asyncpg.create_pool(dsn)
                async with pool.acquire() as conn:
                    await conn.fetchrow(f"SELECT * FROM users WHERE id = {user_id}")  # ERROR
                await pool.execute("UPDATE users SET name = '" + name + "'")  # ERROR
                async with aiosqlite.connect("app.db") as db:
                    await db.execute(f"INSERT INTO log VALUES ({user_id})")  # ERROR

            async def handler(conn: asyncpg.Connection, day):
                return await conn.fetch(f"SELECT * FROM visits WHERE day = '{day}'")  # ERROR
            """,
            note="asyncpg pool/acquire/annotation and aiosqlite connections",
        ),
        Invalid(
            {
                "app/__init__.py": "",
                "app/db.py": """
                    from sqlalchemy import text
                """,
                "app/queries.py": """
                    def by_owner(owner_id):
                        return f"SELECT * FROM pets WHERE owner_id = {owner_id}"
                """,
                "app/routes.py": """
                    from app.db import text
                    from app.queries import by_owner

                    def sql_for(kind, value):
                        return f"SELECT * FROM {kind} WHERE id = {value}"

                    def pets(conn, owner_id, kind):
                        conn.execute(text(by_owner(owner_id)))  # ERROR
                        conn.execute(text(sql_for(kind, owner_id)))  # ERROR
                """,
            },
            note="text re-exported by a project module; helpers in another module and in the same module",
        ),
        Invalid(
            """
            from sqlalchemy import text

            TABLE = "events"

            def count(conn, day):
                return conn.scalar(text(f"SELECT count(*) FROM {TABLE} WHERE day = :day"), {"day": day})  # ERROR
            """,
            options={"strict": True},
            note="strict mode also reports constant identifiers",
        ),
        Invalid(
            """
            from sqlalchemy import Connection

            def create_db(conn: Connection, ident):
                conn.exec_driver_sql("CREATE DATABASE %s" % ident)  # ERROR
            """,
            options={"strict": True},
            note="strict mode also reports DDL built from values",
        ),
    ]


def _sql_argument(node: cst.Call) -> Optional[cst.BaseExpression]:
    for arg in node.args:
        if arg.keyword is not None and arg.keyword.value in SQL_KEYWORDS:
            return arg.value
    first = node.args[0]
    if first.keyword is None and not first.star:
        return first.value
    return None


def _is_format_call(node: cst.Call) -> bool:
    return isinstance(node.func, cst.Attribute) and node.func.attr.value == "format"
