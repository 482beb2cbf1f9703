"""What a rule knows about the file it is visiting: scopes, names and symbolic values.

`FileContext` is the first visitor of every batched walk. It keeps the stack of enclosing
functions and classes, knows what every name is bound to in each scope (imports, assignments,
`with ... as`, parameters and their annotations or `Depends(...)`), and turns any expression into
a summary (see `summary.py`). This is a deliberately small replacement for LibCST's
`QualifiedNameProvider`, which costs 7-9x the parse on real code (see bench/): our rules only
need imports, assignments and a handful of known APIs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional

import libcst as cst

from otel_sqla_doctor.static.facts import resolve_relative_import
from otel_sqla_doctor.static.summary import UNKNOWN, Summary

_MAX_DEPTH = 40


@dataclass
class Scope:
    kind: str  # "module" | "function" | "class"
    name: str
    qualname: str  # "pkg.mod" for the module, "pkg.mod.func" / "pkg.mod.Class.method" inside
    node: cst.CSTNode
    is_async: bool = False
    bindings: dict[str, list[tuple[str, object]]] = field(default_factory=dict)
    global_names: set[str] = field(default_factory=set)
    cache: dict[str, Optional[Summary]] = field(default_factory=dict)


def dotted_name(node: cst.BaseExpression) -> Optional[str]:
    """`a.b.c` for Name/Attribute chains, else None."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


def import_module_name(module: Optional[cst.BaseExpression]) -> str:
    if module is None:
        return ""
    return dotted_name(module) or ""


class FileContext:
    """Scope tracking and expression summaries for one module (a visitor for `Walker`)."""

    def __init__(self, module_node: cst.Module, module_name: str, path: str, is_package: bool = False) -> None:
        self.module_node = module_node
        self.module = module_name
        self.path = path
        self.is_package = is_package
        self.scopes: list[Scope] = []
        # Enclosing statements of the node being visited, outermost first.
        self.statements: list[cst.CSTNode] = []
        self._depth = 0
        root = Scope("module", module_name, module_name, module_node)
        collect_bindings(root, module_node.body, self)
        self.scopes.append(root)
        self.module_scope = root

    # -- statement tracking (for cheap positions, see positions.py) ------------------------
    def _push_statement(self, node: cst.CSTNode) -> None:
        self.statements.append(node)

    def _pop_statement(self, node: cst.CSTNode) -> None:
        if self.statements and self.statements[-1] is node:
            self.statements.pop()

    visit_SimpleStatementLine = visit_SimpleStatementSuite = _push_statement
    leave_SimpleStatementLine = leave_SimpleStatementSuite = _pop_statement
    visit_If = visit_For = visit_While = visit_With = visit_Try = visit_Match = _push_statement
    leave_If = leave_For = leave_While = leave_With = leave_Try = leave_Match = _pop_statement
    visit_TryStar = _push_statement
    leave_TryStar = _pop_statement

    # -- scope tracking -------------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.statements.append(node)
        parent = self.scopes[-1]
        scope = Scope(
            "function",
            node.name.value,
            f"{parent.qualname}.{node.name.value}",
            node,
            is_async=node.asynchronous is not None,
        )
        for param in all_params(node.params):
            scope.bindings.setdefault(param.name.value, []).append(("param", param))
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else (node.body,)
        collect_bindings(scope, body, self)
        # `global engine; engine = create_async_engine(...)` defines the module's `engine`.
        for name in scope.global_names & scope.bindings.keys():
            self.module_scope.bindings.setdefault(name, []).extend(scope.bindings[name])
            self.module_scope.cache.pop(name, None)
        self.scopes.append(scope)

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.scopes.pop()
        self._pop_statement(node)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.statements.append(node)
        parent = self.scopes[-1]
        scope = Scope("class", node.name.value, f"{parent.qualname}.{node.name.value}", node)
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else (node.body,)
        collect_bindings(scope, body, self)
        self.scopes.append(scope)

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self.scopes.pop()
        self._pop_statement(node)

    # -- queries for rules ----------------------------------------------------------------
    @property
    def function(self) -> Optional[Scope]:
        """The innermost enclosing function, or None at module or class level."""
        for scope in reversed(self.scopes):
            if scope.kind == "function":
                return scope
        return None

    @property
    def in_async_function(self) -> bool:
        scope = self.function
        return bool(scope and scope.is_async)

    @property
    def at_module_level(self) -> bool:
        return all(s.kind != "function" for s in self.scopes)

    def qualname(self, node: cst.BaseExpression) -> Optional[str]:
        """The canonical qualified name an expression refers to (`sa.text` -> `sqlalchemy.text`)."""
        from otel_sqla_doctor.static.known import canonical

        summary = self.summarize(node)
        if summary and summary[0] == "ref":
            return canonical(summary[1])
        return None

    def summarize(self, node: Optional[cst.CSTNode], scope_index: Optional[int] = None) -> Optional[Summary]:
        if node is None:
            return None
        if scope_index is None:
            scope_index = len(self.scopes) - 1
        self._depth += 1
        try:
            if self._depth > _MAX_DEPTH:
                return UNKNOWN
            return self._summarize(node, scope_index)
        finally:
            self._depth -= 1

    def lookup(self, name: str, scope_index: Optional[int] = None) -> Optional[Summary]:
        """The summary of what `name` is bound to, seen from a scope (LEGB, without builtins)."""
        if scope_index is None:
            scope_index = len(self.scopes) - 1
        index = scope_index
        while index >= 0:
            scope = self.scopes[index]
            # Class bodies are not visible from the methods inside them.
            if scope.kind == "class" and index != scope_index:
                index -= 1
                continue
            if name in scope.global_names:
                return self.binding_summary(self.module_scope, 0, name)
            if name in scope.bindings:
                return self.binding_summary(scope, index, name)
            index -= 1
        return None

    # -- bindings -------------------------------------------------------------------------
    def binding_summary(self, scope: Scope, scope_index: int, name: str) -> Optional[Summary]:
        """The summary of what `name` is bound to in `scope` (the `scope_index`-th open scope);
        the indexer asks it for the names it records."""
        if name in scope.cache:
            return scope.cache[name]
        scope.cache[name] = UNKNOWN  # guards against `x = f(x)` cycles
        best: Optional[Summary] = None
        for kind, payload in scope.bindings[name]:
            summary = self._summarize_binding(scope, scope_index, kind, payload)
            # The most informative binding wins: `engine = None` then `engine = create_...()`.
            if summary is None or summary == UNKNOWN or summary == ("lit", None):
                if best is None:
                    best = summary
                continue
            best = summary
        scope.cache[name] = best
        return best

    def _summarize_binding(self, scope: Scope, scope_index: int, kind: str, payload: object) -> Optional[Summary]:
        if kind in ("import", "func", "class"):
            return ("ref", payload)
        if kind == "value":
            return self.summarize(payload, scope_index)
        if kind == "annotation":
            return _instance(self.summarize_annotation(payload, scope_index))
        if kind == "param":
            return self._param_summary(payload, scope_index - 1 if scope.kind == "function" else scope_index)
        return UNKNOWN

    def summarize_annotation(self, node: cst.BaseExpression, scope_index: int) -> Optional[Summary]:
        # Optional[X], X | None, Annotated[X, Depends(f)] all reduce to X (or the dependency).
        if isinstance(node, cst.SimpleString):
            text = node.evaluated_value
            if isinstance(text, str) and text.replace(".", "").replace("_", "").isalnum():
                try:
                    return self.summarize(cst.parse_expression(text), scope_index)
                except Exception:
                    return None
            return None
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
            for side in (node.left, node.right):
                if not (isinstance(side, cst.Name) and side.value == "None"):
                    return self.summarize_annotation(side, scope_index)
            return None
        if isinstance(node, cst.Subscript):
            base = dotted_name(node.value) or ""
            tail = base.rsplit(".", 1)[-1]
            elements = [e.slice.value for e in node.slice if isinstance(e.slice, cst.Index)]
            if tail == "Annotated" and elements:
                for extra in elements[1:]:
                    dep = self._depends(extra, scope_index)
                    if dep is not None:
                        return ("depends_marker", dep)
                return self.summarize_annotation(elements[0], scope_index)
            if tail in ("Optional", "Union") and elements:
                for element in elements:
                    if not (isinstance(element, cst.Name) and element.value == "None"):
                        return self.summarize_annotation(element, scope_index)
            if tail in ("AsyncIterator", "AsyncGenerator", "Iterator", "Generator") and elements:
                return self.summarize_annotation(elements[0], scope_index)
            return self.summarize(node.value, scope_index)
        return self.summarize(node, scope_index)

    def _depends(self, node: cst.BaseExpression, scope_index: int) -> Optional[Summary]:
        if isinstance(node, cst.Call):
            name = dotted_name(node.func) or ""
            if name.rsplit(".", 1)[-1] == "Depends":
                if node.args:
                    return ("depends", self.summarize(node.args[0].value, scope_index))
                return ("depends", None)
        return None

    def _param_summary(self, param: cst.Param, scope_index: int) -> Optional[Summary]:
        if param.default is not None:
            dep = self._depends(param.default, scope_index)
            if dep is not None:
                if dep[1] is None and param.annotation is not None:  # `db: Session = Depends()`
                    return _instance(self.summarize_annotation(param.annotation.annotation, scope_index))
                return dep
        if param.annotation is not None:
            summary = self.summarize_annotation(param.annotation.annotation, scope_index)
            if summary and summary[0] == "depends_marker":
                return summary[1]
            return _instance(summary)
        return None

    def _summarize(self, node: cst.CSTNode, scope_index: int) -> Optional[Summary]:
        if isinstance(node, cst.Name):
            value = node.value
            if value in ("True", "False", "None"):
                return ("lit", {"True": True, "False": False, "None": None}[value])
            return self.lookup(value, scope_index)
        if isinstance(node, cst.Attribute):
            base = self._summarize(node.value, scope_index)
            if base is None:
                return None
            if base[0] == "ref":
                return ("ref", f"{base[1]}.{node.attr.value}")
            return ("attr", base, node.attr.value)
        if isinstance(node, cst.Call):
            callee = self.summarize(node.func, scope_index)
            args: list[Summary] = []
            kwargs: list[tuple[str, Summary]] = []
            for arg in node.args:
                if arg.star:
                    continue
                summary = self.summarize(arg.value, scope_index) or UNKNOWN
                if arg.keyword is not None:
                    kwargs.append((arg.keyword.value, summary))
                elif len(args) < 4:
                    args.append(summary)
            return ("call", callee or UNKNOWN, tuple(args), tuple(kwargs))
        if isinstance(node, cst.Await):
            inner = self.summarize(node.expression, scope_index)
            return inner
        if isinstance(node, cst.SimpleString):
            value = node.evaluated_value
            return ("lit", value) if isinstance(value, str) else UNKNOWN
        if isinstance(node, cst.ConcatenatedString):
            left = self.summarize(node.left, scope_index)
            right = self.summarize(node.right, scope_index)
            if left and right and left[0] == "lit" and right[0] == "lit":
                return ("lit", f"{left[1]}{right[1]}")
            return ("binop", "+", left or UNKNOWN, right or UNKNOWN)
        if isinstance(node, cst.FormattedString):
            parts: list[Summary] = []
            for part in node.parts:
                if isinstance(part, cst.FormattedStringText):
                    parts.append(("lit", part.value))
                elif isinstance(part, cst.FormattedStringExpression):
                    parts.append(self.summarize(part.expression, scope_index) or UNKNOWN)
            return ("fstr", tuple(parts))
        if isinstance(node, (cst.Integer, cst.Float)):
            try:
                return ("lit", node.evaluated_value)
            except Exception:
                return UNKNOWN
        if isinstance(node, (cst.List, cst.Tuple, cst.Set)):
            return (
                "list",
                tuple(
                    (self.summarize(e.value, scope_index) or UNKNOWN)
                    for e in node.elements
                    if isinstance(e, cst.Element)
                ),
            )
        if isinstance(node, cst.Dict):
            pairs = []
            for element in node.elements:
                if isinstance(element, cst.DictElement):
                    pairs.append(
                        (
                            self.summarize(element.key, scope_index) or UNKNOWN,
                            self.summarize(element.value, scope_index) or UNKNOWN,
                        )
                    )
            return ("dict", tuple(pairs))
        if isinstance(node, cst.BinaryOperation):
            if isinstance(node.operator, cst.Add):
                op = "+"
            elif isinstance(node.operator, cst.Modulo):
                op = "%"
            else:
                return UNKNOWN
            return (
                "binop",
                op,
                self.summarize(node.left, scope_index) or UNKNOWN,
                self.summarize(node.right, scope_index) or UNKNOWN,
            )
        if isinstance(node, cst.IfExp):
            # `x if cond else y`: take the first side we can say something about.
            body = self.summarize(node.body, scope_index)
            if body and body != UNKNOWN and body != ("lit", None):
                return body
            return self.summarize(node.orelse, scope_index)
        if isinstance(node, cst.BooleanOperation):
            # `os.getenv("URL") or "sqlite+aiosqlite://"` and friends.
            left = self.summarize(node.left, scope_index)
            right = self.summarize(node.right, scope_index)
            if isinstance(node.operator, cst.Or) and right and right[0] == "lit":
                return ("or", left or UNKNOWN, right)
            return left or right
        if isinstance(node, cst.Subscript) and (dotted_name(node.value) or "").rsplit(".", 1)[-1] == "Annotated":
            # `SessionDep = Annotated[Session, Depends(get_db)]`: an alias later used as an annotation.
            return self.summarize_annotation(node, scope_index)
        return UNKNOWN

    def resolve_relative(self, level: int, module: str) -> str:
        """`from ..x import y` inside this module -> absolute module name."""
        parts = self.module.split(".")
        return resolve_relative_import(parts if self.is_package else parts[:-1], level, module)


def _instance(class_summary: Optional[Summary]) -> Optional[Summary]:
    if class_summary is None or class_summary == UNKNOWN:
        return class_summary
    if class_summary[0] == "depends_marker":
        return class_summary[1]
    return ("instance", class_summary)


def all_params(params: cst.Parameters) -> Iterable[cst.Param]:
    yield from params.posonly_params
    yield from params.params
    if isinstance(params.star_arg, cst.Param):
        yield params.star_arg
    yield from params.kwonly_params
    if params.star_kwarg is not None:
        yield params.star_kwarg


def _bind(scope: Scope, name: str, kind: str, payload: object) -> None:
    scope.bindings.setdefault(name, []).append((kind, payload))


def _bind_target(scope: Scope, target: cst.BaseExpression, value: Optional[cst.BaseExpression]) -> None:
    if isinstance(target, cst.Name):
        _bind(scope, target.value, "value" if value is not None else "unknown", value)
    elif isinstance(target, (cst.Tuple, cst.List)):
        values = None
        if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == len(target.elements):
            values = [e.value for e in value.elements]
        for i, element in enumerate(target.elements):
            _bind_target(scope, element.value, values[i] if values else None)


def collect_bindings(scope: Scope, body: Iterable[cst.CSTNode], ctx: FileContext) -> None:
    """Record the names a block binds, without descending into nested functions or classes."""
    for stmt in body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                _collect_small(scope, small, ctx)
        elif isinstance(stmt, cst.FunctionDef):
            _bind(scope, stmt.name.value, "func", f"{scope.qualname}.{stmt.name.value}")
        elif isinstance(stmt, cst.ClassDef):
            _bind(scope, stmt.name.value, "class", f"{scope.qualname}.{stmt.name.value}")
        elif isinstance(stmt, (cst.If, cst.While)):
            _collect_block(scope, stmt.body, ctx)
            orelse = stmt.orelse
            while orelse is not None:
                _collect_block(scope, orelse.body, ctx)
                orelse = getattr(orelse, "orelse", None)
        elif isinstance(stmt, cst.For):
            _bind_target(scope, stmt.target, None)
            _collect_block(scope, stmt.body, ctx)
            if stmt.orelse is not None:
                _collect_block(scope, stmt.orelse.body, ctx)
        elif isinstance(stmt, cst.With):
            for item in stmt.items:
                if item.asname is not None and isinstance(item.asname.name, cst.Name):
                    _bind(scope, item.asname.name.value, "value", item.item)
            _collect_block(scope, stmt.body, ctx)
        elif isinstance(stmt, (cst.Try, getattr(cst, "TryStar", cst.Try))):
            _collect_block(scope, stmt.body, ctx)
            for handler in stmt.handlers:
                _collect_block(scope, handler.body, ctx)
            if stmt.orelse is not None:
                _collect_block(scope, stmt.orelse.body, ctx)
            if stmt.finalbody is not None:
                _collect_block(scope, stmt.finalbody.body, ctx)
        elif isinstance(stmt, getattr(cst, "Match", ())):
            for case in stmt.cases:
                _collect_block(scope, case.body, ctx)


def _collect_block(scope: Scope, block: cst.BaseSuite, ctx: FileContext) -> None:
    if isinstance(block, cst.IndentedBlock):
        collect_bindings(scope, block.body, ctx)
    elif isinstance(block, cst.SimpleStatementSuite):
        for small in block.body:
            _collect_small(scope, small, ctx)


def _collect_small(scope: Scope, small: cst.BaseSmallStatement, ctx: FileContext) -> None:
    if isinstance(small, cst.Assign):
        for target in small.targets:
            _bind_target(scope, target.target, small.value)
    elif isinstance(small, cst.AnnAssign):
        if isinstance(small.target, cst.Name):
            if small.value is not None:
                _bind(scope, small.target.value, "value", small.value)
            else:
                _bind(scope, small.target.value, "annotation", small.annotation.annotation)
    elif isinstance(small, cst.Import):
        for alias in small.names:
            name = dotted_name(alias.name) or ""
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                _bind(scope, alias.asname.name.value, "import", name)
            else:
                top = name.split(".", 1)[0]
                _bind(scope, top, "import", top)
    elif isinstance(small, cst.ImportFrom):
        module = import_module_name(small.module)
        if small.relative:
            module = ctx.resolve_relative(len(small.relative), module)
        if isinstance(small.names, cst.ImportStar):
            return
        for alias in small.names:
            name = dotted_name(alias.name) or ""
            bound = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                bound = alias.asname.name.value
            _bind(scope, bound, "import", f"{module}.{name}" if module else name)
    elif isinstance(small, cst.Global):
        for item in small.names:
            scope.global_names.add(item.name.value)
    elif isinstance(small, cst.AugAssign):
        pass
