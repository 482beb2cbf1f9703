"""Score `doctor scan` against hand-made labels on real public repositories.

    python -m bench.realworld                 # every repository in repos.toml
    python -m bench.realworld --repo owner/name --show unlabelled
    python -m bench.realworld --stubs         # write label stubs for unlabelled findings

Each repository of `repos.toml` is pinned at a commit. Its snapshot (a bare git directory brought
by the search tool's `fetch`, under /work/.mirror by default) is exported (every file the snapshot holds) into
`bench/.cache/realworld/`, scanned cold with `doctor scan . -f json --no-cache`, and each finding
is matched with the labels of `labels/<owner>__<name>.toml`:

- a finding with a label is counted by the label's verdict (`true`, `false`, `debatable`);
- a finding without one is **unlabelled** (nobody has judged it yet);
- a `true` label that no finding matches is a **miss** (a real mistake the scan does not report);
- a `false` label that no finding matches is a false alarm that is gone (not counted);
- a scan that exits 2 or reports an `internal error` is a **crash**.

Matching is by path, rule code and line; a finding one to three lines away from an unmatched
label of the same path and code still matches it (a rule may move its anchor within a statement).

Stdlib only. CI does not run this: it needs the snapshots, which only the search tool brings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
REPO_ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
import corpus as corpus_mod  # noqa: E402  (bench/corpus.py: the git snapshot reader)
EXPORT_DIR = BENCH / ".cache" / "realworld"
LABEL_DIR = HERE / "labels"
MANIFEST = HERE / "repos.toml"
DEFAULT_MIRRORS = Path(os.environ.get("REALWORLD_MIRRORS", "/work/.mirror"))
VERDICTS = ("true", "false", "debatable")
LINE_SLACK = 3


@dataclasses.dataclass(frozen=True)
class Repo:
    name: str
    commit: str
    kind: str
    otel: bool
    why: str

    @property
    def slug(self) -> str:
        return self.name.replace("/", "__")


@dataclasses.dataclass
class Label:
    path: str
    line: int
    code: str
    verdict: str
    why: str
    matched: bool = False


def load_repos(manifest: Path = MANIFEST) -> list[Repo]:
    manifests = [manifest] if manifest.exists() else sorted(HERE.glob("repos*.toml"))
    repos = []
    for path in manifests:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        repos += [
            Repo(r["name"], r["commit"], r.get("kind", "service"), bool(r.get("otel", False)), r.get("why", ""))
            for r in data.get("repo", [])
        ]
    names = [r.name for r in repos]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise SystemExit(f"repos.toml: listed twice: {', '.join(sorted(duplicates))}")
    return repos


def label_file(repo: Repo) -> Path:
    return LABEL_DIR / f"{repo.slug}.toml"


def load_labels(repo: Repo) -> list[Label]:
    path = label_file(repo)
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    if data.get("commit") not in (None, repo.commit):
        raise SystemExit(f"{path.name}: labels are for commit {data['commit']}, repos.toml pins {repo.commit}")
    labels = []
    for entry in data.get("label", []):
        verdict = entry["verdict"]
        if verdict not in VERDICTS:
            raise SystemExit(f"{path.name}: {entry['path']}:{entry['line']} {entry['code']}: verdict {verdict!r} is not one of {VERDICTS}")
        labels.append(Label(entry["path"], int(entry["line"]), entry["code"], verdict, entry.get("why", "")))
    return labels


def find_mirror(repo: Repo, mirrors: Path) -> Path | None:
    """The bare git directory `fetch` left for this repository (any depth under owner+name/)."""
    base = mirrors / repo.name.replace("/", "+")
    if not base.exists():
        return None
    for candidate in [base, *sorted(base.rglob("*"))]:
        if candidate.is_dir() and (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    return None


def export(repo: Repo, mirrors: Path) -> Path:
    """The repository's tree at its pinned commit, exported once under bench/.cache/realworld/."""
    target = EXPORT_DIR / f"{repo.slug}-{repo.commit[:12]}"
    if (target / ".exported").exists():
        return target
    git_dir = find_mirror(repo, mirrors)
    if git_dir is None:
        raise FileNotFoundError(f"no snapshot of {repo.name} under {mirrors} (bring it with the search tool's fetch)")
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _export_blobs(git_dir, repo.commit, tmp)
    # Its own git work tree: stops the doctor's configuration discovery at the repository root
    # (this checkout's pyproject.toml would otherwise apply) and gives it a `git ls-files` listing.
    subprocess.run(["git", "init", "--quiet", str(tmp)], check=True)
    (tmp / ".exported").write_text(repo.commit, encoding="utf-8")
    with (tmp / ".git" / "info" / "exclude").open("a") as fh:
        fh.write(".exported\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def _export_blobs(git_dir: Path, commit: str, into: Path) -> None:
    """Write every file of the commit that the snapshot holds (see `corpus.snapshot_blobs`)."""
    for name, data in corpus_mod.snapshot_blobs(git_dir, commit):
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


@dataclasses.dataclass
class RepoResult:
    repo: Repo
    seconds: float = 0.0
    crashed: str = ""
    findings: list[dict] = dataclasses.field(default_factory=list)
    errors: list[dict] = dataclasses.field(default_factory=list)
    verdicts: list[tuple[dict, str]] = dataclasses.field(default_factory=list)  # (finding, verdict|'unlabelled')
    misses: list[Label] = dataclasses.field(default_factory=list)


def scan(repo: Repo, tree: Path, doctor: list[str], timeout: float) -> RepoResult:
    result = RepoResult(repo)
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [*doctor, "scan", ".", "--format", "json", "--no-cache", "--exit-zero"],
            cwd=tree, capture_output=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        result.seconds = time.perf_counter() - start
        result.crashed = f"timed out after {timeout:.0f} s"
        return result
    result.seconds = time.perf_counter() - start
    if proc.returncode != 0:
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        result.crashed = f"exit {proc.returncode}: {last}"
        return result
    report = json.loads(proc.stdout)
    result.findings = report.get("findings", [])
    result.errors = report.get("errors", [])
    internal = [e for e in result.errors if "internal error" in e.get("message", "")]
    if internal:
        result.crashed = f"{internal[0]['path']}: {internal[0]['message']}"
    return result


def match(result: RepoResult, labels: list[Label]) -> None:
    by_place: dict[tuple[str, str], list[Label]] = defaultdict(list)
    for label in labels:
        by_place[(label.path, label.code)].append(label)
    pending = []
    for finding in result.findings:
        candidates = by_place.get((finding["path"], finding["code"]), [])
        exact = next((l for l in candidates if l.line == finding["line"] and not l.matched), None)
        if exact is None:
            # Several findings may share one line (two interpolations in one call): one label each.
            exact = next((l for l in candidates if l.line == finding["line"]), None)
        if exact is not None:
            exact.matched = True
            result.verdicts.append((finding, exact.verdict))
        else:
            pending.append(finding)
    for finding in pending:
        candidates = [
            l for l in by_place.get((finding["path"], finding["code"]), [])
            if not l.matched and abs(l.line - finding["line"]) <= LINE_SLACK
        ]
        if candidates:
            label = min(candidates, key=lambda l: abs(l.line - finding["line"]))
            label.matched = True
            result.verdicts.append((finding, label.verdict))
        else:
            result.verdicts.append((finding, "unlabelled"))
    result.misses = [l for l in labels if l.verdict == "true" and not l.matched]


def table(results: list[RepoResult]) -> str:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for result in results:
        for finding, verdict in result.verdicts:
            counts[finding["code"]][verdict] += 1
        for label in result.misses:
            counts[label.code]["miss"] += 1
    total: dict[str, int] = defaultdict(int)
    lines = [
        "| rule | true | false | debatable | unlabelled | missed | precision | recall |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def row(name: str, c: dict[str, int]) -> str:
        t, f, d, u, m = c["true"], c["false"], c["debatable"], c["unlabelled"], c["miss"]
        precision = f"{t / (t + f):.2f}" if t + f else "–"
        recall = f"{t / (t + m):.2f}" if t + m else "–"
        return f"| {name} | {t} | {f} | {d} | {u} | {m} | {precision} | {recall} |"

    for code in sorted(counts):
        lines.append(row(code, counts[code]))
        for key, value in counts[code].items():
            total[key] += value
    lines.append(row("**all**", total))
    crashes = [r for r in results if r.crashed]
    seconds = sum(r.seconds for r in results)
    lines.append("")
    lines.append(
        f"{len(results)} repositories, {sum(len(r.findings) for r in results)} findings, "
        f"{len(crashes)} crashes, {seconds:.0f} s of scanning "
        f"(precision = true / (true + false); recall = true / (true + missed); debatable counted in neither)"
    )
    return "\n".join(lines)


def stub(result: RepoResult, tree: Path) -> str:
    """TOML label records for the unlabelled findings, with the source line to judge."""
    out = []
    for finding, verdict in result.verdicts:
        if verdict != "unlabelled":
            continue
        try:
            source = (tree / finding["path"]).read_text(encoding="utf-8", errors="replace").splitlines()[finding["line"] - 1].strip()
        except (OSError, IndexError):
            source = ""
        out.append(
            "[[label]]\n"
            f'path = {json.dumps(finding["path"])}\nline = {finding["line"]}\ncode = "{finding["code"]}"\n'
            'verdict = "?"\nwhy = ""\n'
            f"# source: {source[:160]}\n# message: {finding['message'][:300]}\n"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.realworld", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", action="append", default=[], help="only this repository (owner/name; repeatable)")
    parser.add_argument("--mirrors", type=Path, default=DEFAULT_MIRRORS, help="where fetched snapshots live")
    parser.add_argument("--doctor", default=None, help="doctor command (default: the doctor beside this interpreter)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--show", choices=("unlabelled", "false", "misses", "all"), action="append", default=[],
                        help="list these findings or labels under the table")
    parser.add_argument("--stubs", action="store_true", help="write label stubs for unlabelled findings to bench/.cache/realworld/stubs/")
    parser.add_argument("--json", type=Path, help="also write the per-finding results here")
    parser.add_argument("--write-readme", action="store_true", help="put the table under '## Results' in bench/realworld/README.md")
    parser.add_argument("--rematch", type=Path, help="match the labels again against the findings of an earlier --json run (no scan)")
    args = parser.parse_args(argv)

    repos = load_repos()
    if args.repo:
        unknown = set(args.repo) - {r.name for r in repos}
        if unknown:
            parser.error(f"not in repos.toml: {', '.join(sorted(unknown))}")
        repos = [r for r in repos if r.name in args.repo]
    doctor = args.doctor.split() if args.doctor else _default_doctor()

    results: list[RepoResult] = []
    earlier = {r["repo"]: r for r in json.loads(args.rematch.read_text())} if args.rematch else None
    for repo in repos:
        if earlier is not None:
            if repo.name not in earlier:
                continue
            record = earlier[repo.name]
            result = RepoResult(repo, seconds=record["seconds"], crashed=record["crashed"], errors=record["errors"])
            result.findings = [{k: v for k, v in f.items() if k != "verdict"} for f in record["findings"]]
            match(result, load_labels(repo))
            results.append(result)
            continue
        try:
            tree = export(repo, args.mirrors)
        except (FileNotFoundError, RuntimeError) as exc:
            print(f"skip {repo.name}: {exc}", file=sys.stderr)
            continue
        result = scan(repo, tree, doctor, args.timeout)
        match(result, load_labels(repo))
        results.append(result)
        state = f"CRASH {result.crashed}" if result.crashed else f"{len(result.findings)} findings"
        print(f"{repo.name:<50} {result.seconds:6.1f} s  {state}", file=sys.stderr)
        if args.stubs:
            text = stub(result, tree)
            stub_dir = EXPORT_DIR / "stubs"
            stub_dir.mkdir(parents=True, exist_ok=True)
            stub_path = stub_dir / f"{repo.slug}.toml"
            if text:
                stub_path.write_text(f'# unlabelled findings of {repo.name} at {repo.commit} (tree: {tree})\n\n{text}', encoding="utf-8")
            else:
                stub_path.unlink(missing_ok=True)

    rendered = table(results)
    print(rendered)
    if args.write_readme:
        _write_readme(rendered, results)
    show = set(args.show)
    for result in results:
        for finding, verdict in result.verdicts:
            if "all" in show or verdict in show:
                print(f"[{verdict}] {result.repo.name} {finding['path']}:{finding['line']} {finding['code']} {finding['message'][:160]}")
        if "misses" in show or "all" in show:
            for label in result.misses:
                print(f"[missed] {result.repo.name} {label.path}:{label.line} {label.code} {label.why}")
        if result.crashed:
            print(f"[crash] {result.repo.name}: {result.crashed}")
    if args.json:
        args.json.write_text(json.dumps([
            {
                "repo": r.repo.name, "commit": r.repo.commit, "seconds": round(r.seconds, 2), "crashed": r.crashed,
                "findings": [{**f, "verdict": v} for f, v in r.verdicts],
                "misses": [dataclasses.asdict(l) for l in r.misses],
                "errors": r.errors,
            }
            for r in results
        ], indent=2), encoding="utf-8")
    return 1 if any(r.crashed for r in results) else 0


def _write_readme(rendered: str, results: list[RepoResult]) -> None:
    readme = HERE / "README.md"
    text = readme.read_text(encoding="utf-8")
    head = text.split("## Results", 1)[0]
    crashes = [f"- {r.repo.name}: {r.crashed}" for r in results if r.crashed]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    body = [
        "## Results",
        "",
        f"`python -m bench.realworld` on {len(results)} repositories, the doctor at commit {commit}:",
        "",
        rendered,
        "",
        *(["Crashes:", *crashes, ""] if crashes else []),
    ]
    readme.write_text(head + "\n".join(body) + "\n", encoding="utf-8")


def _default_doctor() -> list[str]:
    beside = Path(sys.executable).with_name("doctor")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("doctor")
    return [found] if found else [sys.executable, "-m", "otel_sqla_doctor"]


if __name__ == "__main__":
    sys.exit(main())
