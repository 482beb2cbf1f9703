"""The package's structure, checked from the source with `ast` (nothing is imported).

- A rule module holds its docs, examples and checks only: what two rules share lives in a shared
  module under `static/` (`startup.py`, `launchers.py`, `patterns.py`, `paths.py`, ...), never in
  one of the rules. So no rule module imports another rule module.
- No module reaches a private name (`_x`) of another module of the package: what other modules
  use gets a public name.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "otel_sqla_doctor"
RULES = PACKAGE / "static" / "rules"
RULES_PACKAGE = "otel_sqla_doctor.static.rules"

# Private names of another module that are still reached, as (file relative to the package,
# the expression as `ast.unparse` writes it), each with a comment saying why it is still here.
# The list only shrinks. Empty now: the last ones were `index._split` (now `ProjectIndex.locate`),
# `ctx._binding_summary`, `context._collect_bindings` / `_all_params` (now public) and
# `scanner._relative` (now `Scanner.relative_path`).
ALLOWED_PRIVATE_USES: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _package_of(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _resolve(node: ast.ImportFrom, path: Path) -> str:
    """The absolute module an `ImportFrom` names (relative imports resolved against `path`)."""
    if not node.level:
        return node.module or ""
    base = _package_of(path).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _python_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _rule_modules() -> list[Path]:
    return sorted(RULES.glob("osd*.py"))


def _imported_modules(path: Path, tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for every module the file imports (`from m import name` counts as `m.name`
    too, since `name` may be a submodule)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node, path)
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def rule_imports(path: Path, text: str | None = None) -> list[str]:
    """The other rule modules `path` imports, or names in a string (`"module:function"`
    requirements are imported at run time)."""
    text = path.read_text(encoding="utf-8") if text is None else text
    tree = ast.parse(text, filename=str(path))
    own = _module_name(path)
    rule_module = re.compile(rf"{re.escape(RULES_PACKAGE)}\.osd\w+")
    offenders = []
    for line, module in _imported_modules(path, tree):
        match = rule_module.match(module)
        if match and match.group(0) != own:
            offenders.append(f"{path.name}:{line}: imports {match.group(0)}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for match in rule_module.finditer(node.value):
                if match.group(0) != own:
                    offenders.append(f"{path.name}:{node.lineno}: names {match.group(0)}")
    return list(dict.fromkeys(offenders))


def test_rule_modules_exist() -> None:
    assert len(_rule_modules()) >= 18


@pytest.mark.parametrize("path", _rule_modules(), ids=lambda p: p.stem.split("_", 1)[0])
def test_rule_module_imports_no_other_rule(path: Path) -> None:
    assert rule_imports(path) == [], "move what two rules share to a module under static/"


def test_rule_import_check_sees_an_import() -> None:
    """The check itself: a rule importing another rule (absolute, relative, or by string) is caught."""
    fake = RULES / "osd999_fake.py"
    text = (
        "from otel_sqla_doctor.static.rules.osd102_engine_created_before_global_instrument import startup_orders\n"
        "from . import osd302_attribute_commenter_cardinality\n"
        "from .osd303_commenter_defeats_statement_cache import CREATE_ENGINE\n"
        "import otel_sqla_doctor.static.rules.osd104_async_engine_never_instrumented as other\n"
        "CHECK = 'otel_sqla_doctor.static.rules.osd401_sync_database_call_in_async_function:helper'\n"
        "OWN = 'otel_sqla_doctor.static.rules.osd999_fake:mine'\n"
        "from otel_sqla_doctor.static.startup import startup_orders\n"
    )
    offenders = rule_imports(fake, text)
    assert [o.split(": ", 1)[1] for o in offenders] == [
        "imports otel_sqla_doctor.static.rules.osd102_engine_created_before_global_instrument",
        "imports otel_sqla_doctor.static.rules.osd302_attribute_commenter_cardinality",
        "imports otel_sqla_doctor.static.rules.osd303_commenter_defeats_statement_cache",
        "imports otel_sqla_doctor.static.rules.osd104_async_engine_never_instrumented",
        "names otel_sqla_doctor.static.rules.osd401_sync_database_call_in_async_function",
    ]


# -- private names ---------------------------------------------------------------------------------


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def _defined_names(tree: ast.Module) -> set[str]:
    """Private names a module defines as names others could reach: functions, classes, methods,
    module and class attributes, and attributes assigned on objects (`self._x = ...`). Local
    variables are not reachable from elsewhere and do not count."""
    names = set()

    def body_names(body: list[ast.stmt]) -> None:
        for stmt in body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            if isinstance(stmt, ast.ClassDef):
                body_names(stmt.body)
            elif isinstance(stmt, (ast.If, ast.Try)):
                body_names(stmt.body)
                body_names(stmt.orelse)
                for handler in getattr(stmt, "handlers", ()):
                    body_names(handler.body)
                body_names(getattr(stmt, "finalbody", []))

    body_names(tree.body)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return {n for n in names if _is_private(n)}


@lru_cache(maxsize=None)
def private_uses() -> list[tuple[str, int, str]]:
    """(file, line, expression) where a module reaches a private name of another package module:
    `from otel_sqla_doctor.m import _x`, `m._x` for an imported package module `m`, and `obj._x`
    (obj not `self`, `cls` or `super()`) where `_x` is defined only in other package modules.
    A name defined in the module itself too is taken as its own."""
    files = _python_files()
    trees = {path: ast.parse(path.read_text(encoding="utf-8"), filename=str(path)) for path in files}
    defined = {path: _defined_names(tree) for path, tree in trees.items()}
    everywhere: set[str] = set().union(*defined.values())
    found = []
    for path, tree in trees.items():
        relative = path.relative_to(PACKAGE).as_posix()
        modules: set[str] = set()  # local names bound to package modules
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = _resolve(node, path)
                if base.split(".", 1)[0] != "otel_sqla_doctor":
                    continue
                for alias in node.names:
                    if _is_private(alias.name):
                        found.append((relative, node.lineno, f"from {base} import {alias.name}"))
                    if (PACKAGE.parent / (base + "." + alias.name).replace(".", "/")).with_suffix(".py").exists():
                        modules.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".", 1)[0] == "otel_sqla_doctor" and alias.asname:
                        modules.add(alias.asname)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not _is_private(node.attr):
                continue
            value = node.value
            if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                continue
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super":
                continue
            if isinstance(value, ast.Name) and value.id in modules:
                found.append((relative, node.lineno, ast.unparse(node)))
            elif node.attr in everywhere and node.attr not in defined[path]:
                found.append((relative, node.lineno, ast.unparse(node)))
    return sorted(set(found))


def test_no_private_names_of_other_modules() -> None:
    offenders = [f"{file}:{line}: {what}" for file, line, what in private_uses() if (file, what) not in ALLOWED_PRIVATE_USES]
    assert offenders == [], "give the name a public name in the module that defines it"


def test_private_allow_list_is_current() -> None:
    """An allowed use that is gone must leave the list too."""
    still = {(file, what) for file, _, what in private_uses()}
    assert ALLOWED_PRIVATE_USES <= still, sorted(ALLOWED_PRIVATE_USES - still)
