"""Collects one module's facts for the project index, during the shared walk."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from otel_sqla_doctor.static.context import FileContext, dotted_name, import_module_name
from otel_sqla_doctor.static.patterns import derives_from_enum
from otel_sqla_doctor.static.facts import RUN_ONCE, CallSite, FunctionFacts, ImportSite, ModuleFacts
from otel_sqla_doctor.static.known import canonical
from otel_sqla_doctor.static.summary import UNKNOWN, Summary, refs_in

# Calls into these packages are recorded with their positions: the wiring rules report them.
TRACKED_ROOTS = frozenset(
    {"opentelemetry", "sqlalchemy", "sqlmodel", "asyncpg", "aiosqlite", "aiomysql", "asyncmy", "psycopg", "psycopg2"}
)
# Method names worth a position even when we cannot tell what the receiver is.
TRACKED_METHODS = frozenset(
    {"instrument", "uninstrument", "instrument_engine", "set_tracer_provider", "add_span_processor", "instrument_sqlalchemy"}
)


def _tracked(summary: Summary) -> bool:
    for name in refs_in(summary):
        if name.split(".", 1)[0] in TRACKED_ROOTS:
            return True
    return False


class Indexer:
    """A walker visitor that fills a `ModuleFacts`. Runs right after `FileContext`."""

    def __init__(self, ctx: FileContext, facts: ModuleFacts) -> None:
        self.ctx = ctx
        self.facts = facts
        self._order = 0
        self._main_guard_depth = 0
        self._try_guards: dict[int, tuple[tuple, bool]] = {}  # id(small statement) -> (names, disables)
        self._in_handler: set[int] = set()  # id(small statement) inside an `except` block
        self._type_checking_imports: set[int] = set()  # id(import) inside `if TYPE_CHECKING:`
        self._function_stack: list[FunctionFacts] = []
        self._function_calls: list[list[str]] = []
        # Nodes whose source positions are needed (with their enclosing statements); filled in after the walk.
        self.positioned: list[tuple[cst.CSTNode, object, tuple]] = []
        # Alternatives (if/else, try/except) enclosing the node being visited: see CallSite.branches.
        self._branch_labels: dict[int, str] = {}
        self._branches: list[str] = []
        self._alternatives = 0
        self._guards: list[frozenset] = []  # names tested by the enclosing `if`s: see CallSite.guards
        # Loop bodies being visited, per function (index 0: module level): a call there may run
        # several times (an `instrument(engine=...)` per engine of a list).
        self._loop_depth: list[int] = [0]
        self._loop_bodies: set[int] = set()
        self._function_loops: list[list[int]] = []

    def _position(self, node: cst.CSTNode, target: object) -> None:
        self.positioned.append((node, target, tuple(self.ctx.statements)))

    def _alternative(self, *branches_by_label: tuple) -> None:
        self._alternatives += 1
        for k, branches in enumerate(branches_by_label):
            for branch in branches:
                if branch is not None:
                    self._branch_labels[id(branch)] = f"{self.facts.path}:{self._alternatives}:{k}"

    def _enter_branch(self, node: cst.CSTNode) -> None:
        label = self._branch_labels.get(id(node))
        if label is not None:
            self._branches.append(label)

    def _leave_branch(self, node: cst.CSTNode) -> None:
        if id(node) in self._branch_labels:
            self._branches.pop()

    visit_Else = visit_ExceptHandler = _enter_branch
    leave_Else = leave_ExceptHandler = _leave_branch

    def visit_IndentedBlock(self, node: cst.BaseSuite) -> None:
        self._enter_branch(node)
        if id(node) in self._loop_bodies:
            self._loop_depth[-1] += 1

    def leave_IndentedBlock(self, node: cst.BaseSuite) -> None:
        self._leave_branch(node)
        if id(node) in self._loop_bodies:
            self._loop_depth[-1] -= 1

    visit_SimpleStatementSuite = visit_IndentedBlock
    leave_SimpleStatementSuite = leave_IndentedBlock

    # The body of a loop repeats; its `else` and a `for`'s iterable run once.
    def visit_For(self, node: cst.For) -> None:
        self._loop_bodies.add(id(node.body))

    def visit_While(self, node: cst.While) -> None:
        self._loop_bodies.add(id(node.body))

    def _enter_comprehension(self, node: cst.CSTNode) -> None:
        self._loop_depth[-1] += 1

    def _leave_comprehension(self, node: cst.CSTNode) -> None:
        self._loop_depth[-1] -= 1

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _enter_comprehension
    leave_ListComp = leave_SetComp = leave_DictComp = leave_GeneratorExp = _leave_comprehension

    # -- structure ----------------------------------------------------------------------------
    def visit_If(self, node: cst.If) -> None:
        self._enter_branch(node)  # an `elif`
        tested = _tested_names(node.test)
        if self.ctx.scopes and _run_once_test(node.test, self.ctx.scopes[-1]):
            tested.add(RUN_ONCE)
        self._guards.append(frozenset(tested))
        if (dotted_name(node.test) or "").rsplit(".", 1)[-1] == "TYPE_CHECKING":
            self._type_checking_imports.update(id(i) for i in _imports_in(node.body))
        if _is_main_guard(node.test):
            self._main_guard_depth += 1
            self.facts.has_main_guard = True
        elif node.orelse is not None:
            self._alternative((node.body,), (node.orelse,))

    def leave_If(self, node: cst.If) -> None:
        if _is_main_guard(node.test):
            self._main_guard_depth -= 1
        self._guards.pop()
        self._leave_branch(node)

    def visit_Try(self, node: cst.Try) -> None:
        if node.handlers:
            self._alternative((node.body, node.orelse), tuple(node.handlers))
        names: list[str] = []
        disables: Optional[bool] = None
        for handler in node.handlers:
            caught = _caught_names(handler)
            names.extend(caught)
            # The first handler that catches a failed import decides what that failure does.
            if disables is None and IMPORT_FAILURE_CATCHERS.intersection(caught):
                disables = _disabling_fallback(handler.body)
            for small in _small_statements(handler.body):
                self._in_handler.add(id(small))
        if disables is None:
            disables = any(_disabling_fallback(h.body) for h in node.handlers)
        guard = (tuple(names), disables)
        catches = bool(IMPORT_FAILURE_CATCHERS.intersection(names))
        for small in _small_statements(node.body):
            outer = self._try_guards.get(id(small))
            # The innermost try decides, unless only an outer one catches import failures.
            if outer is None or catches or not IMPORT_FAILURE_CATCHERS.intersection(outer[0]):
                self._try_guards[id(small)] = guard

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        scope = self.ctx.function
        self.facts.has_async_def = self.facts.has_async_def or node.asynchronous is not None
        facts = FunctionFacts(
            qualname=scope.qualname if scope else node.name.value,
            is_async=node.asynchronous is not None,
            line=0,
            decorators=tuple(self.ctx.summarize(d.decorator) or UNKNOWN for d in node.decorators),
        )
        depends = []
        for param in (*node.params.posonly_params, *node.params.params, *node.params.kwonly_params):
            bound = self.ctx.lookup(param.name.value)
            if bound and bound[0] == "depends" and bound[1] is not None:
                depends.append(bound[1])
        facts.depends = tuple(depends)
        facts.params = tuple(p.name.value for p in (*node.params.posonly_params, *node.params.params, *node.params.kwonly_params))
        self.facts.functions[facts.qualname] = facts
        self._function_stack.append(facts)
        self._function_calls.append([])
        self._function_loops.append([])
        self._loop_depth.append(0)
        self._position(node.name, ("function", facts))

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        facts = self._function_stack.pop()
        facts.calls = tuple(self._function_calls.pop())
        facts.loop_calls = tuple(self._function_loops.pop())
        self._loop_depth.pop()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if len(self.ctx.scopes) == 2:  # FileContext has entered the class already
            bases = []
            for arg in node.bases:
                summary = self.ctx.summarize(arg.value, 0) if arg.keyword is None else None
                if summary and summary[0] == "ref":
                    bases.append(canonical(summary[1]))
            if bases:
                self.facts.class_bases[f"{self.ctx.module}.{node.name.value}"] = tuple(bases)

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        scope = self.ctx.scopes[-1]
        if len(self.ctx.scopes) == 2:
            if derives_from_enum(node, self.facts.enum_classes):
                self.facts.enum_classes += (node.name.value,)
        # Class attributes of module-level classes: `Settings.DATABASE_URL = "postgresql://..."`.
        if len(self.ctx.scopes) == 2:
            for name in scope.bindings:
                summary = self.ctx.binding_summary(scope, len(self.ctx.scopes) - 1, name)
                if summary is not None and summary != UNKNOWN:
                    self.facts.symbols[f"{node.name.value}.{name}"] = summary

    def visit_Return(self, node: cst.Return) -> None:
        if self._function_stack and node.value is not None:
            self._function_stack[-1].returns += (self.ctx.summarize(node.value) or UNKNOWN,)

    def visit_Yield(self, node: cst.Yield) -> None:
        if self._function_stack and isinstance(node.value, cst.BaseExpression):
            self._function_stack[-1].yields += (self.ctx.summarize(node.value) or UNKNOWN,)

    # -- imports ------------------------------------------------------------------------------
    def _record_import(self, node: cst.CSTNode, module: str, names: tuple) -> None:
        self._order += 1
        guard = self._guard_for(node)
        site = ImportSite(
            module=module,
            names=names,
            scope=self._scope_name(),
            order=self._order,
            main_guard=self._main_guard_depth > 0,
            guarded_by=guard[0] if guard else (),
            fallback_disables=guard[1] if guard else False,
            in_handler=id(node) in self._in_handler,
            type_checking=id(node) in self._type_checking_imports,
        )
        self.facts.imports.append(site)
        if module.split(".", 1)[0] in TRACKED_ROOTS:
            self._position(node, site)

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            self._record_import(node, dotted_name(alias.name) or "", ())

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = import_module_name(node.module)
        if node.relative:
            module = self.ctx.resolve_relative(len(node.relative), module)
        if isinstance(node.names, cst.ImportStar):
            names: tuple = ("*",)
        else:
            names = tuple(dotted_name(a.name) or "" for a in node.names)
        self._record_import(node, module, names)

    # -- calls --------------------------------------------------------------------------------
    def _record_param_use(self, node: cst.Call) -> None:
        """Database methods called on a parameter, and parameters passed on to other functions."""
        function = self._function_stack[-1]
        func = node.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value in function.params:
            if func.attr.value in DB_PARAM_METHODS and func.value.value not in function.db_params:
                function.db_params += (func.value.value,)
            return
        if not isinstance(func, (cst.Name, cst.Attribute)):
            return
        passed = [
            (arg.value.value, arg.keyword.value if arg.keyword is not None else position)
            for position, arg in enumerate(node.args)
            if isinstance(arg.value, cst.Name) and arg.value.value in function.params and not arg.star
        ]
        if not passed:
            return
        callee = self.ctx.summarize(func)
        if callee and callee[0] == "ref":
            for name, where in passed:
                function.param_calls += ((name, canonical(callee[1]), where),)

    def visit_Call(self, node: cst.Call) -> None:
        if self._function_stack:
            self._record_param_use(node)
        callee_summary = self.ctx.summarize(node.func)
        parent_method = self._super_call(node)
        if parent_method is not None:
            callee_summary = ("ref", parent_method)
        if callee_summary is None or callee_summary == UNKNOWN:
            return
        callee = canonical(callee_summary[1]) if callee_summary[0] == "ref" else ""
        method = callee_summary[2] if callee_summary[0] == "attr" else callee.rsplit(".", 1)[-1]
        in_loop = self._loop_depth[-1] > 0
        if callee:
            self._order += 1
            if self._function_calls:
                self._function_calls[-1].append((self._order, callee))
                if in_loop:
                    self._function_loops[-1].append(self._order)
        tracked = _tracked(callee_summary) or method in TRACKED_METHODS
        at_module = self.ctx.at_module_level
        # Calls of project functions inside alternatives are kept too, so the timeline knows which
        # of two helpers (`if ...: setup_a() else: setup_b()`) can run.
        if not tracked and not (at_module and callee) and not (callee and self._branches):
            return
        if not callee:
            self._order += 1
        arg_calls = tuple(
            canonical(s[1][1])
            for s in (self.ctx.summarize(a.value) for a in node.args)
            if s and s[0] == "call" and s[1] and s[1][0] == "ref"
        )
        site = CallSite(
            callee=callee,
            summary=self.ctx.summarize(node) or UNKNOWN,
            scope=self._scope_name(),
            order=self._order,
            main_guard=self._main_guard_depth > 0,
            arg_calls=arg_calls,
            branches=tuple(self._branches),
            guards=tuple(sorted(frozenset().union(*self._guards))) if self._guards else (),
            star_args=any(a.star for a in node.args),
            method=method if callee_summary[0] in ("attr", "ref") else "",
            in_loop=in_loop,
        )
        self.facts.calls.append(site)
        if tracked:
            self._position(node, site)

    def visit_Assign(self, node: cst.Assign) -> None:
        stored = [t.target.attr.value for t in node.targets if isinstance(t.target, cst.Attribute)]
        if not stored:
            return
        summary = self.ctx.summarize(node.value)
        if summary and summary[0] == "call" and _tracked(summary):
            for name in stored:
                self.facts.attr_stores[name] = self.facts.attr_stores.get(name, ()) + (summary,)

    def _super_call(self, node: cst.Call) -> Optional[str]:
        """`super().name(...)` in a method of a module-level class: the first base's `name`
        (the index follows inherited methods from there)."""
        func = node.func
        if not (
            isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Call)
            and isinstance(func.value.func, cst.Name)
            and func.value.func.value == "super"
            and len(self.ctx.scopes) >= 3
            and self.ctx.scopes[1].kind == "class"
        ):
            return None
        bases = self.facts.class_bases.get(f"{self.ctx.module}.{self.ctx.scopes[1].name}")
        return f"{bases[0]}.{func.attr.value}" if bases else None

    # -- end ----------------------------------------------------------------------------------
    def leave_Module(self, node: cst.Module) -> None:
        scope = self.ctx.module_scope
        for name in scope.bindings:
            summary = self.ctx.binding_summary(scope, 0, name)
            if summary is not None:
                self.facts.symbols[name] = summary
        for stmt in node.body:
            for name, target in _assigned_names(stmt):
                summary = self.facts.symbols.get(name)
                if summary and summary[0] in ("call", "await") and _tracked_or_call(summary):
                    self.positioned.append((target, ("symbol", name), (stmt,)))

    def _scope_name(self) -> str:
        scope = self.ctx.function
        return scope.qualname if scope else ""

    def _guard_for(self, node: cst.CSTNode) -> Optional[tuple[tuple, bool]]:
        """The `try` around an import statement in its scope: (caught names, fallback disables)."""
        return self._try_guards.get(id(node))


def _tracked_or_call(summary: Summary) -> bool:
    return summary[0] == "call"


def _imports_in(block: cst.CSTNode):
    """The import statements of a block, also inside nested if/try/with blocks."""
    body = getattr(block, "body", ())
    for stmt in body if isinstance(body, (list, tuple)) else (body,):
        if isinstance(stmt, (cst.Import, cst.ImportFrom)):
            yield stmt
        elif isinstance(stmt, cst.SimpleStatementLine):
            yield from (small for small in stmt.body if isinstance(small, (cst.Import, cst.ImportFrom)))
        elif isinstance(stmt, (cst.If, cst.Try, cst.With)):
            yield from _imports_in(stmt.body)


# Methods of a sync Session/Connection that talk to the database (OSD401 follows them into helpers).
DB_PARAM_METHODS = frozenset({
    "execute", "exec", "scalar", "scalars", "query", "get", "get_one", "commit", "flush", "refresh", "merge",
    "rollback", "bulk_save_objects", "bulk_insert_mappings", "bulk_update_mappings", "exec_driver_sql",
})

# Words worth knowing a module contains, though no summary carries them (ModuleFacts.mentions):
# `statement_cache_size` set for pgbouncer turns asyncpg's statement cache off (OSD303).
MENTION_WORDS = ("statement_cache_size",)


def _run_once_test(test: cst.BaseExpression, scope) -> bool:
    """`if _engine is None:` / `if not _provider:` on a `global` name, or on a class attribute
    (`cls._instance`): lazy initialisation, so the body runs once per process."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        subject = test.expression
    elif (
        isinstance(test, cst.Comparison)
        and len(test.comparisons) == 1
        and isinstance(test.comparisons[0].operator, cst.Is)
        and isinstance(test.comparisons[0].comparator, cst.Name)
        and test.comparisons[0].comparator.value == "None"
    ):
        subject = test.left
    else:
        return False
    if isinstance(subject, cst.Name):
        return subject.value in getattr(scope, "global_names", ())
    return isinstance(subject, cst.Attribute) and isinstance(subject.value, cst.Name) and subject.value.value == "cls"


def _tested_names(test: cst.CSTNode) -> set[str]:
    """Names and attribute names an `if` test reads (`not inst.is_instrumented_by_opentelemetry`)."""
    found: set[str] = set()
    stack = [test]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            found.add(node.value)
        elif isinstance(node, cst.Attribute):
            found.add(node.attr.value)
            stack.append(node.value)
        elif isinstance(node, cst.UnaryOperation):
            stack.append(node.expression)
        elif isinstance(node, (cst.BooleanOperation, cst.BinaryOperation)):
            stack.extend((node.left, node.right))
        elif isinstance(node, cst.Comparison):
            stack.append(node.left)
            stack.extend(c.comparator for c in node.comparisons)
        elif isinstance(node, cst.Call):
            stack.append(node.func)
            stack.extend(a.value for a in node.args)
    return found


def _is_main_guard(test: cst.BaseExpression) -> bool:
    if isinstance(test, cst.Comparison) and isinstance(test.left, cst.Name) and test.left.value == "__name__":
        for comparison in test.comparisons:
            target = comparison.comparator
            if isinstance(target, cst.SimpleString) and target.evaluated_value == "__main__":
                return True
    return False


def _small_statements(block):
    """The small statements (imports, assignments, ...) a block runs, through nested compound
    statements (if/elif/else, try/except/else/finally, with, for, while, match, class bodies) but
    not into function bodies, which run only when called."""
    if isinstance(block, cst.SimpleStatementSuite):
        yield from block.body
        return
    if not isinstance(block, cst.IndentedBlock):
        return
    for stmt in block.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            yield from stmt.body
        elif isinstance(stmt, cst.FunctionDef):
            continue
        else:
            for name in ("body", "orelse", "finalbody"):
                child = getattr(stmt, name, None)
                if isinstance(child, (cst.If, cst.Else, cst.Finally)):
                    if isinstance(child, cst.If):  # elif
                        yield from _small_statements(cst.IndentedBlock(body=[child]))
                    else:
                        yield from _small_statements(child.body)
                elif isinstance(child, cst.BaseSuite):
                    yield from _small_statements(child)
            for handler in getattr(stmt, "handlers", ()) or ():
                yield from _small_statements(handler.body)
            for case in getattr(stmt, "cases", ()) or ():
                yield from _small_statements(case.body)


# Handlers that catch a failed import: `except ImportError`, `ModuleNotFoundError`, broad ones, bare.
IMPORT_FAILURE_CATCHERS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
# Calls in a fallback that make the failure visible, so it is not silent.
_LOUD_METHODS = frozenset({"warning", "warn", "error", "exception", "critical", "fatal"})


def _caught_names(handler: cst.ExceptHandler) -> list[str]:
    if handler.type is None:
        return ["BaseException"]
    types = handler.type.elements if isinstance(handler.type, cst.Tuple) else [handler.type]
    names = []
    for t in types:
        value = t.value if isinstance(t, cst.Element) else t
        names.append((dotted_name(value) or "").rsplit(".", 1)[-1])
    return names


class _FallbackScan(cst.CSTVisitor):
    def __init__(self) -> None:
        self.loud = False  # raises, warns, logs at warning or above, prints, exits
        self.alternative = False  # imports something else instead
        self.quiet = False  # pass / ... / return / continue / assignments / a stand-in def or class

    def visit_Raise(self, node: cst.Raise) -> None:
        self.loud = True

    def visit_Import(self, node: cst.Import) -> None:
        self.alternative = True

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.alternative = True

    def visit_Call(self, node: cst.Call) -> None:
        name = dotted_name(node.func) or ""
        tail = name.rsplit(".", 1)[-1]
        if name in ("print", "warn", "exit", "sys.exit", "warnings.warn") or ("." in name and tail in _LOUD_METHODS):
            self.loud = True

    def visit_Pass(self, node: cst.Pass) -> None:
        self.quiet = True

    def visit_Return(self, node: cst.Return) -> None:
        self.quiet = True

    def visit_Continue(self, node: cst.Continue) -> None:
        self.quiet = True

    def visit_Expr(self, node: cst.Expr) -> None:
        if isinstance(node.value, cst.Ellipsis):
            self.quiet = True

    def visit_Assign(self, node: cst.Assign) -> None:
        self.quiet = True  # `trace = None`, `TRACING = False`, `tracer = NoOpTracer()`

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self.quiet = True

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.quiet = True  # a no-op stand-in; what it would do when called does not count
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.quiet = True
        return False


def _disabling_fallback(block: cst.BaseSuite) -> bool:
    """`except ImportError: pass` / `trace = None` / `TRACING = False` / `return`: tracing quietly off.

    Not when the handler raises, warns (`warnings.warn`, `logger.warning/error/exception`,
    `print`) or imports an alternative instead (`except ImportError: from other import X`).
    """
    scan = _FallbackScan()
    block.visit(scan)
    return scan.quiet and not scan.loud and not scan.alternative


def _assigned_names(stmt: cst.CSTNode):
    if isinstance(stmt, cst.SimpleStatementLine):
        for small in stmt.body:
            if isinstance(small, cst.Assign):
                for target in small.targets:
                    if isinstance(target.target, cst.Name):
                        yield target.target.value, target.target
            elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                yield small.target.value, small.target
