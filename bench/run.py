"""Benchmark `doctor scan` against ruff (S608), bandit (B608) and semgrep (one local rule).

    python bench/run.py            # full run: 3 corpora, 3 repetitions (about 15 min on 2 cores)
    python bench/run.py --quick    # smoke: the application corpus, 1 repetition

Creates `bench/.cache/venv` with the pinned peers (bench/requirements.txt), fetches the pinned
sdists (bench/corpus.py), runs every tool on the same files with the order rotated per
repetition, and writes medians and doctor/peer ratios to `bench/results/latest.{md,json}`
(`quick.*` with --quick). It is not a test: it never fails on a missed target, only on a broken
setup. A doctor that crashes or is missing is recorded as a failed row, never fatal.

Stdlib only: it runs with any Python 3.10+, before anything is installed.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import venv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus as corpus_mod  # noqa: E402

BENCH_DIR = corpus_mod.BENCH_DIR
REPO_DIR = BENCH_DIR.parent
CACHE_DIR = corpus_mod.CACHE_DIR
VENV_DIR = CACHE_DIR / "venv"
OUT_TMP = CACHE_DIR / "out"
RESULTS_DIR = BENCH_DIR / "results"
REQUIREMENTS = BENCH_DIR / "requirements.txt"
SEMGREP_RULE = BENCH_DIR / "semgrep-rule.yaml"
DOCTOR_CACHE = ".otel_sqla_doctor_cache"
PENDING_RESTORE = CACHE_DIR / "out" / "changed-file.path"  # + .orig: the bytes to put back


def restore_pending() -> None:
    """Undo the 'one changed file' edit of a run that was killed before it could."""
    if PENDING_RESTORE.is_file():
        target = Path(PENDING_RESTORE.read_text().strip())
        backup = PENDING_RESTORE.with_suffix(".orig")
        if backup.is_file() and target.parent.is_dir():
            target.write_bytes(backup.read_bytes())
            log(f"restored {target} from an interrupted run")
        PENDING_RESTORE.unlink()

# The targets of issue 12 (scan engine v2). Ratios are doctor / peer on each application corpus.
# The goal beyond them is 0.15x bandit for a cold scan (issue 6's target, not met by this design).
TARGETS = {
    "cold_vs_bandit": 0.5,
    "cold_vs_semgrep": 1.0,
    "warm_vs_ruff": 3.0,
    "changed_file_s": 0.5,
    "help_s": 0.25,
    "rss_mb": 500.0,
    "file_12k_vs_6k": 2.2,  # linear: twice the functions, at most 2.2x the time
}

PEERS = ("ruff", "bandit", "semgrep")
DOCTOR_UNITS = ("doctor_cold", "doctor_cached", "doctor_help", "doctor_scaling")
# Rows of the per-corpus table, in display order. doctor_cached yields fill / warm / changed.
ROWS = (
    "ruff", "bandit", "semgrep",
    "doctor_cold", "doctor_fill", "doctor_warm", "doctor_changed_tree", "doctor_changed_files",
)  # fmt: skip
ROW_LABELS = {
    "ruff": "ruff S608 (--no-cache)",
    "bandit": "bandit B608",
    "semgrep": "semgrep 1 rule (all files)",
    "doctor_cold": "doctor scan --no-cache (cold)",
    "doctor_fill": "doctor scan, empty cache (fills it)",
    "doctor_warm": "doctor scan, warm cache",
    "doctor_changed_tree": "doctor scan ., 1 file changed, warm",
    "doctor_changed_files": "doctor scan FILE, 1 file changed, warm",
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- running one command -------------------------------------------------------------------------


@dataclass
class Sample:
    ok: bool
    wall: float = 0.0
    cpu: float = 0.0  # user + sys of the process and all its waited-for children
    maxrss_mb: float = 0.0  # largest single process (wait4's ru_maxrss)
    tree_rss_mb: Optional[float] = None  # sampled peak of the summed RSS of the process tree
    tree_pss_mb: Optional[float] = None  # same with PSS (shared pages split between processes)
    findings: Optional[int] = None
    files: Optional[int] = None
    errors: Optional[int] = None
    rc: Optional[int] = None
    reason: str = ""

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None and v != ""}


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    out.extend(int(x) for x in fh.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return out


def _tree_memory(root: int) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) in bytes over `root` and its descendants."""
    rss = pss = 0
    stack, seen = [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except (OSError, ValueError):
            pass
        stack.extend(_children(pid))
    return rss, pss


class _MemorySampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            rss, pss = _tree_memory(self.pid)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)


def run_cmd(
    cmd: list[str],
    *,
    cwd: Path,
    timeout: float,
    ok_codes: tuple[int, ...] = (0, 1),
    parse: Optional[Callable[[bytes], dict]] = None,
    env: Optional[dict] = None,
    sample_memory: bool = False,
) -> Sample:
    """Run `cmd`, time it (wall, CPU incl. children, max RSS via wait4), parse its stdout."""
    OUT_TMP.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=OUT_TMP) as out, tempfile.TemporaryFile(dir=OUT_TMP) as err:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        except OSError as exc:
            return Sample(ok=False, reason=f"cannot start {cmd[0]}: {exc}")
        sampler = _MemorySampler(proc.pid) if sample_memory else None
        if sampler:
            sampler.start()
        timer = threading.Timer(timeout, lambda: _kill_group(proc.pid))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # interrupted: take the whole process group down with us
            _kill_group(proc.pid)
            raise
        finally:
            timer.cancel()
            if sampler:
                sampler.stopped.set()
                sampler.join()
        wall = time.perf_counter() - start
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
        sample = Sample(
            ok=True,
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            maxrss_mb=usage.ru_maxrss / 1024,
            rc=rc,
        )
        if sampler and sampler.peak_rss:
            sample.tree_rss_mb = sampler.peak_rss / 2**20
            sample.tree_pss_mb = sampler.peak_pss / 2**20
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if rc not in ok_codes:
        tail = stderr.decode(errors="replace").strip().splitlines()[-3:]
        why = f"timed out after {timeout:.0f} s" if rc == -signal.SIGKILL and wall >= timeout else f"exit {rc}"
        sample.ok = False
        sample.reason = f"{why}: {' | '.join(tail)[:300]}"
        return sample
    if parse:
        try:
            sample.__dict__.update(parse(stdout))
        except Exception as exc:  # a sanity count, not worth failing the timing over
            sample.reason = f"output not parsed: {type(exc).__name__}: {exc}"[:200]
    return sample


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


# -- output parsers (findings and files seen, as a sanity check) --------------------------------


def parse_ruff(out: bytes) -> dict:
    return {"findings": len(json.loads(out or b"[]"))}


def parse_bandit(out: bytes) -> dict:
    data = json.loads(out)
    metrics = data.get("metrics", {})
    return {
        "findings": len(data.get("results", [])),
        "files": len([k for k in metrics if k != "_totals"]),
        "errors": len(data.get("errors", [])),
    }


def parse_semgrep(out: bytes) -> dict:
    data = json.loads(out)
    scanned = data.get("paths", {}).get("scanned")
    return {
        "findings": len(data.get("results", [])),
        **({"files": len(scanned)} if scanned is not None else {}),
        "errors": len(data.get("errors", [])),
    }


def parse_doctor(out: bytes) -> dict:
    data = json.loads(out)
    return {
        "findings": len(data.get("findings", [])),
        "files": data.get("files_scanned"),
        "errors": len(data.get("errors", [])),
    }


# -- setup ---------------------------------------------------------------------------------------


def venv_bin(name: str) -> Path:
    return VENV_DIR / ("Scripts" if os.name == "nt" else "bin") / name


def ensure_tools_venv() -> None:
    """bench/.cache/venv with the pinned peers; reinstalled when requirements.txt changes."""
    stamp = VENV_DIR / ".requirements.sha256"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == digest and all(venv_bin(t).exists() for t in PEERS):
        return
    log(f"creating {VENV_DIR.relative_to(REPO_DIR)} and installing the peers from {REQUIREMENTS.name} ...")
    if not venv_bin("python").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV_DIR)
    subprocess.run(
        [str(venv_bin("python")), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        check=True,
    )
    stamp.write_text(digest + "\n")


def resolve_doctor(arg: Optional[str]) -> list[str]:
    if arg:
        return shlex.split(arg)
    found = shutil.which("doctor")
    if found:
        return [found]
    return [sys.executable, "-m", "otel_sqla_doctor"]


def _first_line(cmd: list[str], cwd: Path = REPO_DIR) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable ({exc})"
    text = (proc.stdout or proc.stderr).strip()
    if proc.returncode != 0:
        return f"unavailable (exit {proc.returncode}: {text.splitlines()[-1] if text else ''})"
    return text.splitlines()[0] if text else ""


def machine_info() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu,
        "memory": f"{int(mem.split()[0]) / 2**20:.0f} GiB" if mem.endswith("kB") else mem,
        "platform": platform.platform(),
        "harness_python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
    }


def doctor_sources_digest(doctor: list[str]) -> str:
    """A digest of the doctor's Python sources as the doctor command imports them, to notice a
    checkout that changed under a long run (the numbers would then mix versions)."""
    probe = "import hashlib, pathlib, otel_sqla_doctor as m; h = hashlib.sha1(); " \
        "[h.update(p.read_bytes()) for p in sorted(pathlib.Path(m.__file__).parent.rglob('*.py'))]; print(h.hexdigest()[:12])"
    python = doctor_python(doctor)
    if python is None:
        return ""
    env = doctor_env(doctor)
    try:
        # Not from the repository root: '' on sys.path would shadow a --doctor-ref snapshot.
        OUT_TMP.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([*python, "-c", probe], capture_output=True, text=True, timeout=60, env=env, cwd=OUT_TMP)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def doctor_python(doctor: list[str]) -> Optional[list[str]]:
    """The interpreter behind the doctor command: `[python]` for `python -m ...`, the shebang of a
    console script, after any leading `env VAR=...`."""
    cmd = list(doctor)
    if cmd and Path(cmd[0]).name == "env":
        cmd = [c for c in cmd[1:] if "=" not in c]
    if not cmd:
        return None
    if len(cmd) >= 3 and cmd[1] == "-m":
        return [cmd[0]]
    try:
        first = Path(cmd[0]).read_bytes()[:300].splitlines()[0].decode()
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    return shlex.split(first[2:]) if first.startswith("#!") else None


def doctor_env(doctor: list[str]) -> dict:
    env = dict(os.environ)
    if doctor and Path(doctor[0]).name == "env":
        for item in doctor[1:]:
            if "=" not in item:
                break
            k, v = item.split("=", 1)
            env[k] = v
    return env


def export_ref(ref: str) -> Path:
    """`git archive REF otel_sqla_doctor` into bench/.cache/doctor-SHA: a frozen doctor, so that a
    run is not measuring a working tree that others are editing."""
    sha = subprocess.run(["git", "rev-parse", "--short=12", ref], cwd=REPO_DIR, capture_output=True, text=True, check=True).stdout.strip()
    target = CACHE_DIR / f"doctor-{sha}"
    if not (target / "otel_sqla_doctor" / "__init__.py").is_file():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", "--format=tar", sha, "otel_sqla_doctor"], cwd=REPO_DIR, capture_output=True, check=True).stdout
        import io
        import tarfile

        with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
            tf.extractall(target)
    return target


def git_state() -> dict:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO_DIR, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = git("status", "--porcelain", "--", "otel_sqla_doctor")
    return {"commit": git("rev-parse", "--short=12", "HEAD"), "doctor_sources_dirty": bool(dirty)}


# -- the measurements ----------------------------------------------------------------------------


@dataclass
class Bench:
    doctor: list[str]
    timeout: float
    help_runs: int
    samples: dict = field(default_factory=dict)  # (corpus key, row) -> [Sample]
    changed_files: dict = field(default_factory=dict)  # corpus key -> the file edited
    ruff_files: dict = field(default_factory=dict)  # corpus key -> `ruff --show-files` count
    doctor_timed_out: dict = field(default_factory=dict)  # corpus key -> why its doctor rows are skipped
    doctor_broken: str = ""
    semgrep_env: dict = field(default_factory=dict)
    first_key: str = ""  # the corpus whose turn also runs the one-file scaling rows

    def add(self, key: str, row: str, sample: Sample) -> None:
        self.samples.setdefault((key, row), []).append(sample)
        state = f"{sample.wall:7.2f}s" if sample.ok else "FAILED"
        extra = f" findings={sample.findings}" if sample.findings is not None else ""
        extra += f" files={sample.files}" if sample.files is not None else ""
        extra += f" ({sample.reason})" if sample.reason else ""
        log(f"  {key:<11} {row:<22} {state}{extra}")

    # peers
    def ruff(self, key: str, root: Path) -> None:
        cmd = [str(venv_bin("ruff")), "check", "--isolated", "--no-cache", "--select", "S608", "--output-format", "json", "."]
        sample = run_cmd(cmd, cwd=root, timeout=self.timeout, parse=parse_ruff)
        sample.files = self.ruff_files.get(key)  # from the untimed `--show-files` warm-up
        self.add(key, "ruff", sample)

    def bandit(self, key: str, root: Path) -> None:
        cmd = [str(venv_bin("bandit")), "-q", "-r", "-t", "B608", "-f", "json", "."]
        self.add(key, "bandit", run_cmd(cmd, cwd=root, timeout=self.timeout, parse=parse_bandit))

    def semgrep(self, key: str, root: Path) -> None:
        cmd = [
            str(venv_bin("semgrep")), "scan", "--metrics=off", "--disable-version-check",
            "--config", str(SEMGREP_RULE), "--json", "--quiet", "--no-git-ignore", "--max-target-bytes", "0", ".",
        ]  # fmt: skip
        self.add(key, "semgrep", run_cmd(cmd, cwd=root, timeout=self.timeout, parse=parse_semgrep, env=self.semgrep_env))

    # doctor
    def _doctor_failed(self, key: str, rows: tuple[str, ...]) -> bool:
        reason = self.doctor_broken or self.doctor_timed_out.get(key, "")
        if reason:
            for row in rows:
                self.add(key, row, Sample(ok=False, reason=reason))
            return True
        return False

    def _scan(self, root: Path, *args: str, sample_memory: bool = False) -> Sample:
        cmd = [*self.doctor, "scan", *args, "--format", "json"]
        return run_cmd(cmd, cwd=root, timeout=self.timeout, parse=parse_doctor, sample_memory=sample_memory)

    def doctor_cold(self, key: str, root: Path) -> None:
        if self._doctor_failed(key, ("doctor_cold",)):
            return
        sample = self._scan(root, ".", "--no-cache", sample_memory=True)
        self.add(key, "doctor_cold", sample)
        if not sample.ok and sample.reason.startswith("timed out"):
            # The cached rows would time out too (filling the cache is a cold scan): skip them
            # on this corpus for the rest of the run rather than spend the timeout four times.
            self.doctor_timed_out[key] = f"skipped: the cold scan timed out after {self.timeout:.0f} s"

    def doctor_cached(self, key: str, root: Path) -> None:
        rows = ("doctor_fill", "doctor_warm", "doctor_changed_tree", "doctor_changed_files")
        if self._doctor_failed(key, rows):
            return
        shutil.rmtree(root / DOCTOR_CACHE, ignore_errors=True)
        fill = self._scan(root, ".")
        self.add(key, "doctor_fill", fill)
        if not fill.ok and fill.reason.startswith("timed out"):
            self.doctor_timed_out[key] = f"skipped: filling the cache timed out after {self.timeout:.0f} s"
            self._doctor_failed(key, rows[1:])
            return
        self.add(key, "doctor_warm", self._scan(root, "."))
        # One changed file: append a comment (new content hash, same code) to a file that
        # mentions sqlalchemy, rescan with the cache, then put the original bytes back.
        changed = corpus_mod.changed_file_candidate(root)
        original = changed.read_bytes()
        relative = str(changed.relative_to(root))
        # A backup outside the corpus: an interrupted run restores it on the next start.
        PENDING_RESTORE.parent.mkdir(parents=True, exist_ok=True)
        PENDING_RESTORE.with_suffix(".orig").write_bytes(original)
        PENDING_RESTORE.write_text(str(changed))
        try:
            changed.write_bytes(original + f"\n# bench: edited {time.time_ns()}\n".encode())
            self.add(key, "doctor_changed_tree", self._scan(root, "."))
            # The pre-commit form: only the changed file is named (resolved against its project).
            changed.write_bytes(original + f"\n# bench: edited again {time.time_ns()}\n".encode())
            self.add(key, "doctor_changed_files", self._scan(root, relative))
        finally:
            changed.write_bytes(original)
            PENDING_RESTORE.unlink()
        self.changed_files[key] = relative

    def doctor_scaling(self, key: str, root: Path) -> None:
        """One generated file of 6,000 and of 12,000 small functions (plus one create_async_engine),
        scanned cold on its own: the cost of a file must grow linearly with its size (issue 12)."""
        if self.doctor_broken or key != self.first_key:
            return
        for size in (6000, 12000):
            # Each file in its own project: `scan FILE` indexes the file's whole project.
            base = CACHE_DIR / "scaling" / f"functions_{size}"
            if not (base / ".git").is_dir():
                base.mkdir(parents=True, exist_ok=True)
                subprocess.run(["git", "init", "--quiet", str(base)], check=True)
            name = f"generated_{size}.py"
            target = base / name
            if not target.is_file():
                body = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(size))
                target.write_text(
                    "from sqlalchemy.ext.asyncio import create_async_engine\n\n"
                    'engine = create_async_engine("postgresql+asyncpg://app@db/app")\n\n\n' + body
                )
            sample = run_cmd([*self.doctor, "scan", name, "--no-cache", "--format", "json"], cwd=base, timeout=self.timeout, parse=parse_doctor)
            self.add("*", f"doctor_file_{size // 1000}k", sample)

    def doctor_help(self, key: str, root: Path) -> None:
        if self.doctor_broken:
            self.samples.setdefault(("*", "doctor_help"), []).append(Sample(ok=False, reason=self.doctor_broken))
            return
        for _ in range(self.help_runs):
            sample = run_cmd([*self.doctor, "--help"], cwd=root, timeout=self.timeout, ok_codes=(0,))
            self.samples.setdefault(("*", "doctor_help"), []).append(sample)
        walls = [s.wall for s in self.samples[("*", "doctor_help")][-self.help_runs :] if s.ok]
        log(f"  {'*':<11} {'doctor_help':<22} {statistics.median(walls) if walls else float('nan'):7.3f}s (median of {len(walls)})")


def check_doctor(doctor: list[str]) -> str:
    """'' when `doctor scan` is usable, else why not (recorded on every doctor row)."""
    try:
        proc = subprocess.run([*doctor, "scan", "--help"], capture_output=True, text=True, timeout=120, cwd=REPO_DIR)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"doctor unavailable: {exc}"
    if proc.returncode != 0 or "--no-cache" not in proc.stdout:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        return f"`doctor scan --help` exit {proc.returncode}: {tail[0][:200]}"
    return ""


# -- summary -------------------------------------------------------------------------------------


def _median(values: list[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def summarize(bench: Bench, keys: list[str]) -> dict:
    rows: dict = {}
    for key in keys + ["*"]:
        for (k, row), samples in bench.samples.items():
            if k != key:
                continue
            good = [s for s in samples if s.ok]
            entry = {
                "runs": len(samples),
                "ok_runs": len(good),
                "wall_median": _median([s.wall for s in good]),
                "wall_min": min((s.wall for s in good), default=None),
                "wall_max": max((s.wall for s in good), default=None),
                "cpu_median": _median([s.cpu for s in good]),
                "maxrss_mb": max((s.maxrss_mb for s in good), default=None),
                "findings": sorted({s.findings for s in good if s.findings is not None}),
                "files": sorted({s.files for s in good if s.files is not None}),
                "errors": sorted({s.errors for s in good if s.errors is not None}),
                "failures": sorted({s.reason for s in samples if not s.ok}),
                "samples": [s.to_dict() for s in samples],
            }
            tree = [s for s in good if s.tree_rss_mb is not None]
            if tree:
                entry["tree_rss_mb"] = max(s.tree_rss_mb for s in tree)
                entry["tree_pss_mb"] = max(s.tree_pss_mb for s in tree)
            rows.setdefault(key, {})[row] = entry
    return rows


def _paired(bench: Bench, key: str, num: str, den: str) -> list[float]:
    """doctor/peer per repetition (both ran in the same repetition), which cancels slow phases."""
    a, b = bench.samples.get((key, num), []), bench.samples.get((key, den), [])
    return [x.wall / y.wall for x, y in zip(a, b) if x.ok and y.ok and y.wall > 0]


RATIOS = (
    ("cold_vs_bandit", "doctor_cold", "bandit"),
    ("cold_vs_semgrep", "doctor_cold", "semgrep"),
    ("cold_vs_ruff", "doctor_cold", "ruff"),
    ("warm_vs_ruff", "doctor_warm", "ruff"),
)


def ratios(bench: Bench, rows: dict, keys: list[str]) -> dict:
    out: dict = {}
    for key in keys:
        for name, num, den in RATIOS:
            n, d = rows.get(key, {}).get(num, {}), rows.get(key, {}).get(den, {})
            value = None
            if n.get("wall_median") and d.get("wall_median"):
                value = n["wall_median"] / d["wall_median"]
            paired = _paired(bench, key, num, den)
            out.setdefault(key, {})[name] = {
                "ratio_of_medians": value,
                "paired_min": min(paired, default=None),
                "paired_max": max(paired, default=None),
                "target_max": TARGETS.get(name),
            }
    return out


def verdicts(rows: dict, rats: dict, app_keys) -> list[dict]:
    def check(name: str, value: Optional[float], limit: float, where: str, unit: str) -> dict:
        status = "n/a" if value is None else ("met" if value <= limit else "MISSED")
        if name == "changed_file_s" and value is not None:
            status = "met" if value < limit else "MISSED"
        return {"target": name, "where": where, "value": value, "limit": limit, "unit": unit, "status": status}

    out = []
    for app_key in ([app_keys] if isinstance(app_keys, str) else app_keys):
        app = rows.get(app_key, {})
        for name in ("cold_vs_bandit", "cold_vs_semgrep", "warm_vs_ruff"):
            out.append(check(name, rats.get(app_key, {}).get(name, {}).get("ratio_of_medians"), TARGETS[name], app_key, "x"))
        for row in ("doctor_changed_tree", "doctor_changed_files"):
            out.append(check("changed_file_s", app.get(row, {}).get("wall_median"), TARGETS["changed_file_s"], f"{app_key}: {row}", "s"))
    out.append(check("help_s", rows.get("*", {}).get("doctor_help", {}).get("wall_median"), TARGETS["help_s"], "doctor --help", "s"))
    six, twelve = (rows.get("*", {}).get(f"doctor_file_{k}k", {}).get("wall_median") for k in (6, 12))
    out.append(check("file_12k_vs_6k", twelve / six if six and twelve else None, TARGETS["file_12k_vs_6k"], "one generated file, cold", "x"))
    # Memory on every corpus measured (the largest decides); the scan's footprint is the
    # process tree's PSS (RSS summed over the pool double-counts pages shared after fork).
    worst, where = None, ""
    for key, per in rows.items():
        cold = per.get("doctor_cold", {})
        value = cold.get("tree_pss_mb") or cold.get("maxrss_mb")
        if value is not None and (worst is None or value > worst):
            worst, where = value, key
    out.append(check("rss_mb", worst, TARGETS["rss_mb"], f"{where}: cold scan, process tree PSS" if where else "", "MB"))
    return out


def _fmt(value: Optional[float], digits: int = 2) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def render_markdown(result: dict) -> str:
    lines = []
    meta = result["meta"]
    lines.append(f"# Benchmark results ({meta['mode']})")
    lines.append("")
    lines.append(
        f"{meta['date']}, {meta['reps']} repetition(s), tool order rotated per repetition; "
        f"medians of wall seconds. Project commit {meta['git']['commit']}"
        f"{' (doctor sources modified)' if meta['git']['doctor_sources_dirty'] else ''}; run took {meta['duration_s'] / 60:.1f} min."
    )
    ds = meta.get("doctor_sources") or {}
    if meta.get("doctor_ref"):
        lines.append(f"Doctor measured as committed at `{meta['doctor_ref']['ref']}` (sources digest {ds.get('start')}).")
    if ds.get("changed_during_run"):
        lines.append(f"**Warning: the doctor's sources changed during this run ({ds['start']} → {ds['end']}); its rows mix versions.**")
    m = meta["machine"]
    lines.append(
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']}, {m['platform']}, harness Python {m['harness_python']}, "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_start'])}"
        + (f", at end {', '.join(f'{x:.2f}' for x in m['loadavg_end'])}." if m.get("loadavg_end") else ".")
    )
    lines.append("Tools: " + "; ".join(f"{k} `{v}`" for k, v in meta["tools"].items()) + ".")
    for note in meta.get("notes", []):
        lines.append(f"Note: {note}")
    lines.append("")
    lines.append("This is a shared, noisy 2-core machine: read the ratios, not the seconds.")
    lines.append("")

    lines.append("## Targets (issue 12)")
    lines.append("")
    lines.append("| target | where | measured | limit | status |")
    lines.append("|---|---|---|---|---|")
    for v in result["verdicts"]:
        unit = v["unit"]
        value = _fmt(v["value"], 3) + ("" if v["value"] is None else unit if unit != "x" else "×")
        limit = ("< " if v["target"] == "changed_file_s" else "≤ ") + _fmt(v["limit"], 2) + (unit if unit != "x" else "×")
        lines.append(f"| {v['target']} | {v['where']} | {value} | {limit} | {v['status']} |")
    lines.append("")

    lines.append("## Ratios doctor / peer (median wall ÷ median wall; per-repetition range in brackets)")
    lines.append("")
    lines.append("| corpus | " + " | ".join(name for name, _, _ in RATIOS) + " |")
    lines.append("|---|" + "---|" * len(RATIOS))
    for key, per in result["ratios"].items():
        cells = []
        for name, _, _ in RATIOS:
            r = per[name]
            cell = _fmt(r["ratio_of_medians"], 3) + ("×" if r["ratio_of_medians"] is not None else "")
            if r["paired_min"] is not None and r["paired_min"] != r["paired_max"]:
                cell += f" [{_fmt(r['paired_min'], 3)}–{_fmt(r['paired_max'], 3)}]"
            if r["target_max"] is not None and r["ratio_of_medians"] is not None and key in result["meta"].get("applications", [result["meta"]["application"]]):
                cell += " ✓" if r["ratio_of_medians"] <= r["target_max"] else " ✗"
            cells.append(cell)
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Targets apply to the application corpora (" + ", ".join(result["meta"].get("applications", [result["meta"]["application"]])) + "): cold ≤ "
        f"{TARGETS['cold_vs_bandit']}× bandit, ≤ {TARGETS['cold_vs_semgrep']}× semgrep; warm ≤ {TARGETS['warm_vs_ruff']}× ruff "
        "(the goal beyond: cold ≤ 0.15× bandit)."
    )
    lines.append("")

    for key, info in result["corpora"].items():
        c = info["count"]
        lines.append(
            f"## {info['name']} {info['version']} ({info['role']}): {c['files']:,} files, {c['lines']:,} lines, "
            f"{c['bytes'] / 1e6:.1f} MB; {c['mention_sqlalchemy']:,} mention sqlalchemy, {c['mention_opentelemetry']:,} opentelemetry"
        )
        lines.append("")
        lines.append("| tool / mode | wall s median [min–max] | CPU s | files/s | max RSS MB (1 process) | findings | files seen | errors | runs ok |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        per = result["rows"].get(key, {})
        for row in ROWS:
            e = per.get(row)
            if not e:
                continue
            label = ROW_LABELS[row]
            if e["ok_runs"] == 0:
                lines.append(f"| {label} | failed: {'; '.join(e['failures'])[:160]} | | | | | | | 0/{e['runs']} |")
                continue
            wall = e["wall_median"]
            rng = f" [{_fmt(e['wall_min'])}–{_fmt(e['wall_max'])}]" if e["runs"] > 1 else ""
            rate = f"{c['files'] / wall:,.0f}" if wall else "—"
            rss = _fmt(e["maxrss_mb"], 0)
            if e.get("tree_pss_mb") is not None:
                rss += f" (tree: RSS {_fmt(e['tree_rss_mb'], 0)}, PSS {_fmt(e['tree_pss_mb'], 0)})"
            lines.append(
                f"| {label} | {_fmt(wall, 3)}{rng} | {_fmt(e['cpu_median'])} | {rate} | {rss} | "
                f"{'/'.join(map(str, e['findings'])) or '—'} | {'/'.join(map(str, e['files'])) or '—'} | "
                f"{'/'.join(map(str, e['errors'])) or '—'} | {e['ok_runs']}/{e['runs']} |"
            )
        if info.get("changed_file"):
            lines.append("")
            lines.append(f"Changed file: `{info['changed_file']}` (a comment appended, then restored).")
        lines.append("")
    h = result["rows"].get("*", {}).get("doctor_help")
    if h:
        if h["ok_runs"]:
            lines.append(f"`doctor --help`: median {_fmt(h['wall_median'], 3)} s [{_fmt(h['wall_min'], 3)}–{_fmt(h['wall_max'], 3)}] over {h['ok_runs']} runs.")
        else:
            lines.append(f"`doctor --help`: failed ({'; '.join(h['failures'])[:200]}).")
        lines.append("")
    for size in (6, 12):
        r = result["rows"].get("*", {}).get(f"doctor_file_{size}k")
        if r and r["ok_runs"]:
            lines.append(f"One generated file of {size},000 functions, scanned cold on its own: median {_fmt(r['wall_median'], 3)} s.")
    lines.append("")
    lines.append(
        "Columns: wall and CPU (user+sys, children included) are medians over the repetitions; files/s = corpus files ÷ median wall; "
        "max RSS is the largest single process (wait4), and for the cold scan the process tree was also sampled every 0.1 s "
        "(RSS summed double-counts pages shared by forked workers; PSS does not). Findings and files seen are each tool's own "
        "counts, a sanity check only: the rules differ (S608/B608 flag any SQL-looking string; the semgrep rule and the doctor "
        "look for SQLAlchemy/OpenTelemetry mistakes)."
    )
    lines.append("")
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------------


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="smoke run: the application corpus, 1 repetition")
    parser.add_argument("--corpus", action="append", choices=[c.key for c in corpus_mod.CORPORA], help="only this corpus (repeatable)")
    parser.add_argument("--tools", default="ruff,bandit,semgrep,doctor", help="comma-separated subset of ruff,bandit,semgrep,doctor")
    parser.add_argument("--doctor", help="the doctor command (default: `doctor` on PATH, else `python -m otel_sqla_doctor`)")
    parser.add_argument("--doctor-ref", help="measure the doctor as committed at this git ref (exported to bench/.cache), run by --doctor-python")
    parser.add_argument("--doctor-python", help="interpreter with the doctor's dependencies, for --doctor-ref (default: the one behind `doctor` on PATH)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before one run is killed and recorded as failed")
    parser.add_argument("--help-runs", type=int, default=5, help="`doctor --help` runs per repetition")
    parser.add_argument("--offline", action="store_true", help="use the cached sdists and venv; fetch nothing")
    parser.add_argument("--rerender", type=Path, help="only rewrite the .md from this results .json")
    parser.add_argument("--out", type=Path, help="results file stem (default bench/results/latest, or quick with --quick)")
    args = parser.parse_args(argv)

    if args.rerender:
        result = json.loads(args.rerender.read_text())
        args.rerender.with_suffix(".md").write_text(render_markdown(result))
        return 0
    started = time.time()
    loadavg_start = os.getloadavg()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    restore_pending()
    reps = args.reps or (1 if args.quick else 3)
    selected = [c for c in corpus_mod.CORPORA if (args.corpus and c.key in args.corpus) or (not args.corpus and (not args.quick or c.key == corpus_mod.APPLICATION))]
    tools = {t.strip() for t in args.tools.split(",") if t.strip()}
    out_stem = args.out or RESULTS_DIR / ("quick" if args.quick else "latest")

    if not args.offline:
        ensure_tools_venv()
    roots = corpus_mod.prepare(selected, offline=args.offline, log=log)
    doctor = resolve_doctor(args.doctor)
    doctor_ref = None
    if args.doctor_ref:
        snapshot = export_ref(args.doctor_ref)
        python = [args.doctor_python] if args.doctor_python else (doctor_python(resolve_doctor(None)) or [sys.executable])
        doctor = ["env", f"PYTHONPATH={snapshot}", *python, "-m", "otel_sqla_doctor"]
        doctor_ref = {"ref": f"{args.doctor_ref} = {snapshot.name.removeprefix('doctor-')}", "snapshot": str(snapshot.relative_to(REPO_DIR))}
        log(f"doctor: {' '.join(doctor)}")
    digest_start = doctor_sources_digest(doctor) if "doctor" in tools else ""
    bench = Bench(doctor=doctor, timeout=args.timeout, help_runs=max(1, args.help_runs if not args.quick else min(args.help_runs, 3)))
    bench.first_key = selected[0].key if selected else ""
    bench.semgrep_env = {**os.environ, "SEMGREP_SEND_METRICS": "off", "SEMGREP_ENABLE_VERSION_CHECK": "0"}
    if "doctor" in tools:
        bench.doctor_broken = check_doctor(doctor)
        if bench.doctor_broken:
            log(f"doctor rows will be recorded as failed: {bench.doctor_broken}")

    tool_versions = {}
    if "ruff" in tools:
        tool_versions["ruff"] = _first_line([str(venv_bin("ruff")), "--version"])
    if "bandit" in tools:
        tool_versions["bandit"] = _first_line([str(venv_bin("bandit")), "--version"])
    if "semgrep" in tools:
        tool_versions["semgrep"] = _first_line([str(venv_bin("semgrep")), "--version", "--disable-version-check"])
    if "doctor" in tools:
        tool_versions["doctor"] = _first_line([*doctor, "--version"]) + f" ({' '.join(doctor)})"

    units: list[str] = [t for t in PEERS if t in tools] + (list(DOCTOR_UNITS) if "doctor" in tools else [])
    counts = {c.key: corpus_mod.count(roots[c.key]) for c in selected}
    for c in selected:
        n = counts[c.key]
        log(f"corpus {c.name} {c.version}: {n['files']:,} files, {n['lines']:,} lines")

    # Warm-up (untimed): the page cache for every corpus, .pyc files and start-up for each tool.
    # bandit, semgrep and the doctor's scans keep no state between runs, so their first timed
    # run is not special; ruff is warmed because it is so short that a cold page cache shows.
    log("warm-up (untimed) ...")
    for c in selected:
        corpus_mod.count(roots[c.key])
        if "ruff" in tools:
            shown = run_cmd(
                [str(venv_bin("ruff")), "check", "--isolated", "--no-cache", "--select", "S608", "--show-files", "."],
                cwd=roots[c.key], timeout=args.timeout, ok_codes=(0,),
                parse=lambda out: {"files": sum(1 for line in out.splitlines() if line.strip())},
            )  # fmt: skip
            bench.ruff_files[c.key] = shown.files
    if "doctor" in tools and not bench.doctor_broken:
        run_cmd([*doctor, "--help"], cwd=REPO_DIR, timeout=args.timeout, ok_codes=(0,))

    for rep in range(reps):
        order = units[rep % len(units) :] + units[: rep % len(units)]
        log(f"repetition {rep + 1}/{reps}: {', '.join(order)}")
        for c in selected:
            for unit in order:
                getattr(bench, unit)(c.key, roots[c.key])

    rows = summarize(bench, [c.key for c in selected])
    keys = [c.key for c in selected]
    rats = ratios(bench, rows, keys)
    app_key = corpus_mod.APPLICATION if corpus_mod.APPLICATION in keys else keys[0]
    app_keys = [k for k in corpus_mod.APPLICATIONS if k in keys] or [app_key]
    machine = machine_info()
    digest_end = doctor_sources_digest(doctor) if "doctor" in tools else ""
    if digest_start != digest_end:
        log(f"WARNING: the doctor's sources changed during the run ({digest_start} -> {digest_end}); its numbers mix versions")
    machine["loadavg_start"], machine["loadavg_end"] = loadavg_start, os.getloadavg()
    result = {
        "meta": {
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "mode": "quick" if args.quick else "full",
            "reps": reps,
            "duration_s": time.time() - started,
            "machine": machine,
            "tools": tool_versions,
            "doctor_command": doctor,
            "git": git_state(),
            "doctor_ref": doctor_ref,
            "doctor_sources": {"start": digest_start, "end": digest_end, "changed_during_run": digest_start != digest_end},
            "application": app_key,
            "applications": app_keys,
            "targets": TARGETS,
        },
        "corpora": {
            c.key: {
                "name": c.name,
                "version": c.version,
                "role": c.role,
                "count": counts[c.key],
                "changed_file": bench.changed_files.get(c.key),
            }
            for c in selected
        },
        "rows": rows,
        "ratios": rats,
        "verdicts": verdicts(rows, rats, app_keys),
    }
    result["meta"]["duration_s"] = time.time() - started
    markdown = render_markdown(result)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out_stem}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    Path(f"{out_stem}.md").write_text(markdown)
    print(markdown)
    log(f"wrote {Path(f'{out_stem}.md')} and .json in {(time.time() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
