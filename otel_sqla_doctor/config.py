"""Settings from `[tool.otel-sqla-doctor]` in pyproject.toml, merged with command-line flags.

Discovery walks up from the scanned path and merges every pyproject.toml that has our table,
nearest last, stopping at one that says `root = true` (as Fixit does). Unknown keys and unknown
rule selectors are errors that name the key: a typo must never silently turn a rule off.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Optional

from otel_sqla_doctor.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TABLE = "otel-sqla-doctor"
KNOWN_KEYS = {
    "root",
    "select",
    "ignore",
    "extend-select",
    "exclude",
    "extend-exclude",
    "per-file-ignores",
    "severity",
    "options",
    "path-roles",
}
DEFAULT_EXCLUDE = (
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "build",
    "dist",
    "site-packages",
    "__pycache__",
    # Cookiecutter/copier template trees (`{{cookiecutter.project_slug}}/`): Jinja, not Python,
    # until rendered; every file would be a syntax error.
    "*{{*}}*",
)


@dataclass(frozen=True)
class Config:
    select: Optional[tuple[str, ...]] = None  # None: every rule that is on by default
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    per_file_ignores: dict = field(default_factory=dict)  # glob -> tuple of selectors
    severity: dict = field(default_factory=dict)  # code -> "error" | "warning" | "info"
    options: dict = field(default_factory=dict)  # code -> {option: value}
    path_roles: dict = field(default_factory=dict)  # glob -> "service" | "test" | "example" | "script" | "migration"
    root: Optional[Path] = None  # the project root (where the nearest config or VCS root is)
    sources: tuple[str, ...] = ()  # config files that were read

    def enabled_codes(self) -> set[str]:
        from otel_sqla_doctor.static.rule_catalog import RULES

        if self.select is None:
            codes = {code for code, _, enabled, _ in RULES if enabled}
        else:
            codes = expand_selectors(self.select, "select")
        codes |= expand_selectors(self.extend_select, "extend-select")
        codes -= expand_selectors(self.ignore, "ignore")
        return codes

    def ignored_for(self, relative_posix: str) -> set[str]:
        from otel_sqla_doctor.static.discovery import matches_any

        codes: set[str] = set()
        for pattern, selectors in self.per_file_ignores.items():
            if matches_any(relative_posix, [pattern]):
                codes |= expand_selectors(selectors, f"per-file-ignores.{pattern}")
        return codes

    def rule_options(self, code: str) -> dict:
        return dict(self.options.get(code, {}))

    def fingerprint(self) -> str:
        """Changes whenever anything that affects findings changes (part of the cache key)."""
        data = json.dumps(
            [sorted(self.enabled_codes()), self.options, sorted(self.severity.items()), sorted(self.path_roles.items())],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha1(data.encode()).hexdigest()[:16]


def expand_selectors(selectors: Iterable[str], key: str) -> set[str]:
    """`OSD301`, `OSD3` (prefix), `interpolated-sql` (name) or `ALL` -> rule codes."""
    from otel_sqla_doctor.static.rule_catalog import RULES

    codes: set[str] = set()
    for selector in selectors:
        selector = selector.strip()
        if not selector:
            continue
        if selector.upper() == "ALL":
            codes |= {code for code, *_ in RULES}
            continue
        matched = {code for code, name, *_ in RULES if code.startswith(selector.upper()) or name == selector}
        if not matched:
            raise UsageError(f"{key}: unknown rule code or name {selector!r} (see `doctor rules`)")
        codes |= matched
    return codes


def _as_list(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{key}: expected a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def _read_table(path: Path) -> Optional[dict]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    tool = data.get("tool")
    if tool is None:
        return None
    if not isinstance(tool, dict):
        raise UsageError(f"{path}: `tool` must be a table ([tool.{TABLE}]), not {_toml_kind(tool)}")
    table = tool.get(TABLE)
    if table is None or isinstance(table, dict):
        return table
    if isinstance(table, list) and all(isinstance(item, dict) for item in table):
        raise UsageError(f"{path}: [[tool.{TABLE}]] is an array of tables; write one table: [tool.{TABLE}]")
    raise UsageError(f"{path}: tool.{TABLE} must be a table ([tool.{TABLE}]), not {_toml_kind(table)}")


def _toml_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


def _apply(config: Config, table: dict, source: Path) -> Config:
    unknown = set(table) - KNOWN_KEYS
    if unknown:
        raise UsageError(f"{source}: unknown key [tool.{TABLE}] {sorted(unknown)[0]!r}; known keys: {', '.join(sorted(KNOWN_KEYS))}")
    changes: dict[str, Any] = {}
    prefix = f"[tool.{TABLE}]"
    if "root" in table and not isinstance(table["root"], bool):
        raise UsageError(f"{source}: {prefix} root: expected true or false, got {table['root']!r}")
    if "select" in table:
        changes["select"] = _as_list(table["select"], f"{prefix} select")
        expand_selectors(changes["select"], f"{prefix} select")
    if "extend-select" in table:
        extra = _as_list(table["extend-select"], f"{prefix} extend-select")
        expand_selectors(extra, f"{prefix} extend-select")
        changes["extend_select"] = config.extend_select + extra
    if "ignore" in table:
        ignore = _as_list(table["ignore"], f"{prefix} ignore")
        expand_selectors(ignore, f"{prefix} ignore")
        changes["ignore"] = config.ignore + ignore
    if "exclude" in table:
        changes["exclude"] = _as_list(table["exclude"], f"{prefix} exclude")
    if "extend-exclude" in table:
        changes["extend_exclude"] = config.extend_exclude + _as_list(table["extend-exclude"], f"{prefix} extend-exclude")
    if "per-file-ignores" in table:
        pfi = table["per-file-ignores"]
        if not isinstance(pfi, dict):
            raise UsageError(f"{prefix} per-file-ignores: expected a table of glob = [codes]")
        merged = dict(config.per_file_ignores)
        for pattern, selectors in pfi.items():
            codes = _as_list(selectors, f"{prefix} per-file-ignores.{pattern}")
            expand_selectors(codes, f"{prefix} per-file-ignores.{pattern}")
            merged[pattern] = codes
        changes["per_file_ignores"] = merged
    if "severity" in table:
        sev = table["severity"]
        if not isinstance(sev, dict):
            raise UsageError(f"{prefix} severity: expected a table of CODE = \"error\"|\"warning\"|\"info\"")
        merged = dict(config.severity)
        for selector, level in sev.items():
            if level not in ("error", "warning", "info"):
                raise UsageError(f"{prefix} severity.{selector}: expected \"error\", \"warning\" or \"info\", got {level!r}")
            for code in expand_selectors([selector], f"{prefix} severity"):
                merged[code] = level
        changes["severity"] = merged
    if "options" in table:
        changes["options"] = _merge_options(config.options, table["options"], prefix)
    if "path-roles" in table:
        changes["path_roles"] = _merge_path_roles(config.path_roles, table["path-roles"], prefix)
    return replace(config, **changes)


def _merge_path_roles(current: dict, table: Any, prefix: str) -> dict:
    from otel_sqla_doctor.static.paths import PathRole

    roles = [r.value for r in PathRole]
    if not isinstance(table, dict):
        raise UsageError(f'{prefix} path-roles: expected a table of glob = role, e.g. {{ "ops/**" = "script" }}')
    merged = dict(current)
    for glob, role in table.items():
        if role not in roles:
            raise UsageError(f"{prefix} path-roles.{glob}: expected one of {', '.join(roles)}, got {role!r}")
        merged[glob] = role
    return merged


def _merge_options(current: dict, table: Any, prefix: str) -> dict:
    from otel_sqla_doctor.static.rule_catalog import RULES

    options_by_code = {code: (code, options) for code, _, _, options in RULES}
    options_by_code.update({name: (code, options) for code, name, _, options in RULES})
    if not isinstance(table, dict):
        raise UsageError(f"{prefix} options: expected a table per rule, e.g. [tool.{TABLE}.options.OSD301]")
    merged = {k: dict(v) for k, v in current.items()}
    for code, values in table.items():
        found = options_by_code.get(code) or options_by_code.get(str(code).upper())
        if found is None:
            raise UsageError(f"{prefix} options: unknown rule {code!r}")
        rule_code, rule_options = found
        if not isinstance(values, dict):
            raise UsageError(f"{prefix} options.{code}: expected a table")
        for name, value in values.items():
            if name not in rule_options:
                known = ", ".join(sorted(rule_options)) or "none"
                raise UsageError(f"{prefix} options.{code}: unknown option {name!r} (known: {known})")
            default = rule_options[name]
            if default is not None and not isinstance(value, type(default)):
                raise UsageError(f"{prefix} options.{code}.{name}: expected {type(default).__name__}")
        merged.setdefault(rule_code, {}).update(values)
    return merged


PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", ".git")


def find_project_root(start: Path) -> Path:
    """The nearest ancestor that looks like a project (pyproject.toml, setup.py, requirements.txt, .git)."""
    start = start.resolve()
    directory = start if start.is_dir() else start.parent
    for candidate in (directory, *directory.parents):
        if any((candidate / marker).exists() for marker in PROJECT_MARKERS):
            return candidate
    return directory


def discover(start: Path, explicit: Optional[Path] = None) -> Config:
    """Read and merge configuration for a scan of `start` (or only `explicit`, with --config)."""
    config = Config()
    if explicit is not None:
        if not explicit.is_file():
            raise UsageError(f"--config: no such file: {explicit}")
        table = _read_table(explicit) or {}
        # The settings come from that file; the project (for names, cache, excludes) is still found from the scanned path.
        return replace(_apply(config, table, explicit), root=find_project_root(start), sources=(str(explicit),))
    start = start.resolve()
    directory = start if start.is_dir() else start.parent
    tables: list[tuple[Path, dict]] = []
    root: Optional[Path] = None
    for candidate in (directory, *directory.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file():
            table = _read_table(pyproject)
            if root is None:
                root = candidate
            if table is not None:
                tables.append((pyproject, table))
                root = candidate if len(tables) == 1 else root
                if table.get("root") is True:
                    break
        if (candidate / ".git").exists():
            break
    for source, table in reversed(tables):
        config = _apply(config, table, source)
    # The project is the nearest directory with a pyproject.toml (or .git): module names, the
    # cache and dependency files belong to it, even when settings come from a parent directory.
    return replace(config, root=find_project_root(start), sources=tuple(str(p) for p, _ in tables))


def with_cli(
    config: Config,
    *,
    select: Optional[list[str]] = None,
    extend_select: Optional[list[str]] = None,
    ignore: Optional[list[str]] = None,
) -> Config:
    """Command-line flags win over the files."""
    changes: dict[str, Any] = {}
    if select:
        changes["select"] = tuple(s for item in select for s in item.split(",") if s.strip())
        expand_selectors(changes["select"], "--select")
    if extend_select:
        extra = tuple(s for item in extend_select for s in item.split(",") if s.strip())
        expand_selectors(extra, "--extend-select")
        changes["extend_select"] = config.extend_select + extra
    if ignore:
        extra = tuple(s for item in ignore for s in item.split(",") if s.strip())
        expand_selectors(extra, "--ignore")
        changes["ignore"] = config.ignore + extra
    return replace(config, **changes) if changes else config
