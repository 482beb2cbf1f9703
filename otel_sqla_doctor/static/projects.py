"""One index per project of a repository.

A directory with one of PROJECT_MARKERS is a project of its own (a service of a monorepo, an
example with its own dependencies): its modules, dependency files and start-up are judged
together, apart from the others. Two services may each have an `app` package; merged, one would
shadow the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "Pipfile")


@dataclass
class Project:
    root: str  # "" for the scan root, else "services/api/"
    inner: tuple  # roots of the projects nested inside this one
    modules: list = field(default_factory=list)
    candidates: list = field(default_factory=list)
    texts: dict = field(default_factory=dict)
    library: set = field(default_factory=set)  # paths of other projects' modules it imports

    def owns(self, relative: str) -> bool:
        return relative.startswith(self.root) and not any(relative.startswith(r) for r in self.inner)

    def mentions_tracing(self) -> bool:
        """Whether the project's own code or files touch OpenTelemetry: every project rule is about
        tracing, so a project of a repository that does not (its tests, a tool) needs none of them."""
        if self.root == "" and not self.inner:
            return True
        for facts in self.modules:
            if self.owns(facts.path) and any(s.module.split(".", 1)[0] in ("opentelemetry", "logfire") for s in facts.imports):
                return True
        return any("opentelemetry" in text or "logfire" in text for text in self.texts.values())


def partition(modules: list, candidates: list, texts: dict, paths: list) -> list[Project]:
    """The scanned files split by the nearest project root. Each project also sees the modules
    of the others that it imports and does not define itself (a shared library of the repository)."""
    roots = {""}
    for relative in [*texts, *paths]:
        directory, _, name = relative.rpartition("/")
        root = f"{directory}/" if directory else ""
        # Only a directory with Python code of its own: a `docker/Dockerfile` belongs to the
        # project around it.
        if (name in PROJECT_MARKERS or name.startswith("Dockerfile")) and any(p.startswith(root) for p in paths):
            roots.add(root)
    # Without marker files, two directories that each hold a package (or script) of the same
    # name are two programs (`svc_a/app/`, `svc_b/app/`; `examples/x/main.py`, `examples/y/main.py`).
    sources: dict[str, set[str]] = {}
    for facts in modules:
        sources.setdefault(facts.module.split(".", 1)[0], set()).add(_source_root(facts))
    for found in sources.values():
        if len(found) > 1:
            roots |= found
    if len(roots) == 1:
        return [Project("", (), list(modules), list(candidates), dict(texts))]
    ordered = sorted(roots, key=len, reverse=True)  # the nearest root first
    projects = {r: Project(r, tuple(o for o in roots if o != r and o.startswith(r))) for r in roots}

    def home(relative: str) -> Project:
        return projects[next(r for r in ordered if relative.startswith(r))]

    for facts in modules:
        home(facts.path).modules.append(facts)
    for relative, candidate in candidates:
        home(relative).candidates.append((relative, candidate))
    for relative, text in texts.items():
        home(relative).texts[relative] = text
    by_name: dict[str, list] = {}
    for facts in modules:
        by_name.setdefault(facts.module, []).append(facts)
    for project in projects.values():
        own_tops = {m.module.split(".", 1)[0] for m in project.modules}
        seen: set[str] = set()
        frontier = list(project.modules)
        while frontier:
            wanted: set[str] = set()
            for facts in frontier:
                for site in facts.imports:
                    if site.module.split(".", 1)[0] in own_tops:
                        continue
                    # The module, the packages above it (their __init__ runs first), and for
                    # `from pkg import mod` the submodule.
                    parts = site.module.split(".")
                    wanted.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
                    wanted.update(f"{site.module}.{name}" for name in site.names)
            frontier = []
            for name in sorted(wanted - seen):
                seen.add(name)
                library = [m for m in by_name.get(name, ()) if not project.owns(m.path)]
                project.modules += library
                project.library.update(m.path for m in library)
                frontier += library
    return [p for p in projects.values() if p.candidates or any(p.owns(m.path) for m in p.modules)]


def _source_root(facts) -> str:
    """The directory a module's top-level package (or the script itself) sits in: "svc_a/"."""
    parts = facts.path.split("/")
    depth = len(facts.module.split(".")) + (1 if facts.path.endswith("/__init__.py") or facts.path == "__init__.py" else 0)
    kept = parts[: max(0, len(parts) - depth)]
    return "/".join(kept) + "/" if kept else ""


# "svc.web.application:get_app" in a call to a server (uvicorn.run, gunicorn's wsgi_app, ...).
APP_STRING = re.compile(rb"""["']([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+):[A-Za-z_]\w*(?:\(\))?["']""")


_IMPORT_LINE = re.compile(
    rb"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]*)|import[ \t]+([^\n#]+))", re.M
)


def imports_by_regex(files: list[tuple[str, bytes]]) -> set[str]:
    """Module names imported by files we did not parse, found without parsing them (cheap, approximate)."""
    names: set[str] = set()
    for relative, data in files:
        if b"import" not in data:
            continue
        package = relative[:-3].split("/")[:-1] if relative.endswith(".py") else []
        for match in _IMPORT_LINE.finditer(data):
            source, imported, plain = match.groups()
            if plain is not None:
                for item in plain.decode("utf-8", "replace").split(","):
                    module = item.strip().split(" as ")[0].strip()
                    if module:
                        names.add(module)
                continue
            module = source.decode("utf-8", "replace")
            if module.startswith("."):
                level = len(module) - len(module.lstrip("."))
                base = package[: len(package) - (level - 1)] if level - 1 <= len(package) else []
                rest = module.lstrip(".")
                module = ".".join([*base, rest] if rest else base)
            names.add(module)
            for item in imported.decode("utf-8", "replace").strip("()").replace("\n", " ").split(","):
                name = item.strip().split(" as ")[0].strip()
                if name and name != "*":
                    names.add(f"{module}.{name}" if module else name)
    return names
