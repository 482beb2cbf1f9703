"""Source positions of a few nodes, without LibCST's PositionProvider over the whole module.

PositionProvider regenerates the code of the entire module to count lines, which costs about
three times the parse (measured on SQLAlchemy's own sources; see bench/). We need positions for a
handful of nodes per file, so instead:

1. Python's own `ast` (a C parser, ~8x faster than LibCST) gives the line and indentation of
   every statement.
2. The LibCST statements enclosing the node (recorded during the walk) are matched to the `ast`
   statements structurally, body by body.
3. Only the innermost statement (for a compound statement: its header, with the body replaced by
   `pass`) is rendered on its own with PositionProvider, and the result is shifted to where `ast`
   says that statement starts.

Anything unexpected falls back to PositionProvider over the whole module, so positions are always
right; `tests/test_positions.py` checks this against PositionProvider on real code.
"""

from __future__ import annotations

import ast
from typing import Iterable, Optional, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

Position = tuple[int, int, int, int]  # 1-based line, 1-based column, end line, end column

_PASS_BLOCK = cst.IndentedBlock(body=[cst.SimpleStatementLine(body=[cst.Pass()])])


class _Unmappable(Exception):
    pass


def _render_positions(mini: cst.Module) -> dict:
    """PositionProvider's codegen pass alone: MetadataWrapper adds a full visit we do not need."""
    try:
        from libcst.metadata.position_provider import PositionProvidingCodegenState

        provider = PositionProvider()
        provider._computed = {}
        state = PositionProvidingCodegenState(
            default_indent=mini.default_indent, default_newline=mini.default_newline, provider=provider
        )
        mini._codegen(state)
        return provider._computed
    except Exception:  # a LibCST without these internals: the public (slower) way
        return dict(MetadataWrapper(mini, unsafe_skip_copy=True).resolve(PositionProvider))


def _ast_count(stmt: cst.CSTNode) -> int:
    if isinstance(stmt, cst.SimpleStatementLine):
        return len(stmt.body)
    return 1


class _Bodies:
    """For each LibCST body (a sequence of statements), the `ast` index of each of its statements,
    built once per body: looking them up one request at a time was quadratic in the body's length
    (a module of 12,000 functions)."""

    def __init__(self) -> None:
        self._indexes: dict[int, tuple[Sequence[cst.CSTNode], dict[int, int]]] = {}

    def _of(self, body: Sequence[cst.CSTNode]) -> dict[int, int]:
        entry = self._indexes.get(id(body))
        if entry is None or entry[0] is not body:
            indexes: dict[int, int] = {}
            index = 0
            for stmt in body:
                indexes.setdefault(id(stmt), index)
                index += _ast_count(stmt)
            entry = self._indexes[id(body)] = (body, indexes)  # the body is kept: its id stays its own
        return entry[1]

    def index(self, body: Sequence[cst.CSTNode], target: cst.CSTNode) -> int:
        found = self._of(body).get(id(target))
        if found is None:
            raise _Unmappable
        return found

    def holds(self, body: Sequence[cst.CSTNode], target: cst.CSTNode) -> bool:
        return id(target) in self._of(body)


def _suite_statements(suite: cst.BaseSuite) -> Sequence[cst.CSTNode]:
    if isinstance(suite, cst.IndentedBlock):
        return suite.body
    return [suite]  # a SimpleStatementSuite stands for its small statements


def _bodies(stmt: cst.CSTNode, node: ast.AST) -> list[tuple[Sequence[cst.CSTNode], list, Optional[cst.BaseSuite]]]:
    """(LibCST statements, matching ast statements, the block) for each block of a compound statement.

    The block is None for an `elif`, which LibCST nests as an If at the same indentation.
    """
    pairs: list = []
    body = getattr(stmt, "body", None)
    if isinstance(body, cst.BaseSuite):
        pairs.append((_suite_statements(body), node.body, body))
    if isinstance(stmt, (cst.If, cst.For, cst.While, cst.Try)):
        orelse = stmt.orelse
        if isinstance(orelse, cst.Else):
            pairs.append((_suite_statements(orelse.body), node.orelse, orelse.body))
        elif isinstance(orelse, cst.If):  # elif: a nested If in ast's orelse
            pairs.append(([orelse], node.orelse, None))
    if isinstance(stmt, cst.Try) or type(stmt).__name__ == "TryStar":
        for handler, ast_handler in zip(stmt.handlers, node.handlers):
            pairs.append((_suite_statements(handler.body), ast_handler.body, handler.body))
        if stmt.finalbody is not None:
            pairs.append((_suite_statements(stmt.finalbody.body), node.finalbody, stmt.finalbody.body))
        if type(stmt).__name__ == "TryStar" and isinstance(stmt.orelse, cst.Else):
            pairs.append((_suite_statements(stmt.orelse.body), node.orelse, stmt.orelse.body))
    if type(stmt).__name__ == "Match":
        for case, ast_case in zip(stmt.cases, node.cases):
            pairs.append((_suite_statements(case.body), ast_case.body, case.body))
    return pairs


def _ast_statement(tree: ast.Module, chain: Sequence[cst.CSTNode], module: cst.Module, bodies: _Bodies) -> tuple[cst.CSTNode, ast.AST, list]:
    """The innermost statement of `chain`, its ast counterpart, and the blocks around it."""
    cst_body: Sequence[cst.CSTNode] = module.body
    ast_body: list = tree.body
    blocks: list = []
    current: Optional[tuple[cst.CSTNode, ast.AST]] = None
    for stmt in chain:
        if current is not None:
            for cst_stmts, ast_stmts, block in _bodies(*current):
                if bodies.holds(cst_stmts, stmt):
                    cst_body, ast_body = cst_stmts, ast_stmts
                    if isinstance(block, cst.IndentedBlock):
                        blocks.append(block)
                    break
            else:
                raise _Unmappable
        index = bodies.index(cst_body, stmt)
        if index >= len(ast_body):
            raise _Unmappable
        current = (stmt, ast_body[index])
    if current is None:
        raise _Unmappable
    return current[0], current[1], blocks


def _header_only(stmt: cst.CSTNode) -> cst.CSTNode:
    """The statement with its blocks replaced by `pass`: rendering it costs only the header."""
    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef, cst.With)):
        return stmt.with_changes(body=_PASS_BLOCK)
    if isinstance(stmt, (cst.If, cst.While, cst.For)):
        return stmt.with_changes(body=_PASS_BLOCK, orelse=None)
    return stmt  # Try, Match, simple statements: rendered whole


def locate(module: cst.Module, source: bytes, requests: Iterable[tuple[cst.CSTNode, Sequence[cst.CSTNode]]]) -> dict[int, Position]:
    """Positions of nodes, each given with the chain of statements that encloses it."""
    requests = list(requests)
    if not requests:
        return {}
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        tree = None
    out: dict[int, Position] = {}
    by_statement: dict[int, tuple[cst.CSTNode, ast.AST, list[cst.CSTNode]]] = {}
    leftovers: list[cst.CSTNode] = []
    bodies = _Bodies()
    for node, chain in requests:
        if tree is None or not chain:
            leftovers.append(node)
            continue
        try:
            stmt, ast_stmt, blocks = _ast_statement(tree, chain, module, bodies)
        except (_Unmappable, AttributeError, IndexError):
            leftovers.append(node)
            continue
        # An `elif` renders on its own as `if`: two characters short on its first line.
        elif_shift = 2 if len(chain) > 1 and isinstance(chain[-2], cst.If) and chain[-2].orelse is stmt else 0
        entry = by_statement.setdefault(id(stmt), (stmt, ast_stmt, blocks, [], elif_shift))
        entry[3].append(node)
    lines: Optional[list[bytes]] = None
    for stmt, ast_stmt, blocks, nodes, elif_shift in by_statement.values():
        suite = isinstance(stmt, cst.SimpleStatementSuite)
        rendered = cst.SimpleStatementLine(body=stmt.body) if suite else _header_only(stmt)
        # Re-create the enclosing blocks (with their own indentation) so every line, including
        # continuation lines that LibCST indents itself, lands in its real column.
        wrapped: cst.CSTNode = rendered
        if not suite:
            for block in reversed(blocks):
                wrapped = cst.If(test=cst.Name("_"), body=cst.IndentedBlock(body=[wrapped], indent=block.indent))
        mini = cst.Module(body=[wrapped], default_indent=module.default_indent, default_newline=module.default_newline)
        ranges = _render_positions(mini)
        anchor = ranges.get(rendered)
        if anchor is None:
            leftovers.extend(nodes)
            continue
        # PositionProvider starts a decorated definition at `def`/`class`, as ast's lineno does.
        line_shift = ast_stmt.lineno - anchor.start.line
        column_shift = elif_shift
        if suite:  # a one-line block sits after its header: ast says where (in UTF-8 bytes)
            if lines is None:
                lines = source.splitlines()
            try:
                raw = lines[ast_stmt.lineno - 1][: ast_stmt.col_offset]
            except IndexError:
                leftovers.extend(nodes)
                continue
            column_shift = len(raw.decode(module.encoding, errors="replace")) - anchor.start.column
        for node in nodes:
            code_range = ranges.get(node)
            if code_range is None:
                leftovers.append(node)
                continue
            start_col = code_range.start.column + (column_shift if code_range.start.line == anchor.start.line else 0)
            end_col = code_range.end.column + (column_shift if code_range.end.line == anchor.start.line else 0)
            out[id(node)] = (code_range.start.line + line_shift, start_col + 1, code_range.end.line + line_shift, end_col + 1)
    if leftovers:
        ranges = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        for node in leftovers:
            code_range = ranges.get(node)
            if code_range is not None:
                out[id(node)] = (code_range.start.line, code_range.start.column + 1, code_range.end.line, code_range.end.column + 1)
    return out
