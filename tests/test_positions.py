"""The cheap position finder agrees with LibCST's PositionProvider on real code."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from otel_sqla_doctor.static.context import FileContext
from otel_sqla_doctor.static.positions import locate
from otel_sqla_doctor.static.walker import Walker

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted((REPO / "otel_sqla_doctor").rglob("*.py")) + sorted((REPO / "sample_projects").rglob("*.py"))


class _Collect:
    """Every expression node, with the statements around it when it was visited."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.requests = []

    def visit_Call(self, node):
        self.requests.append((node, tuple(self.ctx.statements)))

    def visit_Name(self, node):
        self.requests.append((node, tuple(self.ctx.statements)))

    def visit_SimpleString(self, node):
        self.requests.append((node, tuple(self.ctx.statements)))


def _check(data: bytes) -> int:
    module = cst.parse_module(data)
    ctx = FileContext(module, "m", "m.py")
    collect = _Collect(ctx)
    Walker([ctx, collect]).walk(module)
    got = locate(module, data, collect.requests)
    want = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    for node, _ in collect.requests:
        r = want[node]
        assert got[id(node)] == (r.start.line, r.start.column + 1, r.end.line, r.end.column + 1), module.code_for_node(node)
    return len(collect.requests)


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(REPO)) for p in SOURCES])
def test_positions_match_position_provider(path):
    _check(path.read_bytes())


def test_tricky_layouts():
    code = (
        "# -*- coding: utf-8 -*-\n"
        "import x\n"
        "@decorator(a)\n"
        "@other\n"
        "async def f(a=g(1),\n"
        "            b=h()):\n"
        "    if a: return k(b); m()\n"
        "    elif b:\n"
        "        n('é', p(\n"
        "            q()))\n"
        "    else:\n"
        "        pass\n"
        "    try:\n"
        "        r()\n"
        "    except E as e:\n"
        "        s()\n"
        "    finally:\n"
        "        t()\n"
        "    with u() as v, w():\n"
        "        y = f'{z()}'\n"
        "class C(Base):\n"
        "    x = call()\n"
        "    def m(self): return self.q()\n"
        "while c(): d()\n"
        "for i in j(): k2()\n"
        "else: l2()\n"
        "é = 'ü'; ö = fn('x')\n"
    )
    assert _check(code.encode()) > 20
    assert _check(code.replace("\n", "\r\n").encode()) > 20
