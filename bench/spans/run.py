"""The 1 GB streaming measurement for `doctor spans` (not a test).

    python bench/spans/run.py                 # ~1 GiB, results in bench/spans/results.json
    python bench/spans/run.py --size-mb 200   # smaller, quicker

1. Builds a big OTLP JSON lines file (the collector file exporter's format) in a temp directory by
   replaying the recorded fixtures (tests/spans/fixtures/*.otlp.jsonl) over and over with fresh
   trace and span ids and shifted timestamps, so every copy is a distinct trace.
2. Runs `doctor spans --format json` on it in a child process and measures wall time and CPU time
   (throughput in MB/s of input, per wall second and per CPU second: on a shared machine the
   second is the fairer one) and the child's peak RSS (getrusage RUSAGE_CHILDREN, ru_maxrss).
3. Writes the numbers, the machine and the findings count to results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FIXTURES = ROOT / "tests" / "spans" / "fixtures"
SOURCES = ["n_plus_one.otlp.jsonl", "selectinload.otlp.jsonl", "duplicates.otlp.jsonl", "pool_wait.otlp.jsonl", "unended.otlp.jsonl"]


def _rewrite(node, suffix: str, shift: int):
    for rs in node["resourceSpans"]:
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                span["traceId"] = span["traceId"][:24] + suffix
                span["spanId"] = span["spanId"][:8] + suffix
                if span.get("parentSpanId"):
                    span["parentSpanId"] = span["parentSpanId"][:8] + suffix
                for key in ("startTimeUnixNano", "endTimeUnixNano"):
                    if key in span:
                        span[key] = str(int(span[key]) + shift)
    return node


def generate(target: Path, size_bytes: int) -> tuple[int, int]:
    templates = [line for name in SOURCES for line in (FIXTURES / name).read_text().splitlines() if line.strip()]
    written = copies = 0
    rng = random.Random(7)
    with open(target, "w", encoding="utf-8") as out:
        while written < size_bytes:
            suffix = f"{rng.getrandbits(32):08x}"
            shift = copies * 2_000_000_000  # two seconds apart: no accidental overlap between copies
            for line in templates:
                text = json.dumps(_rewrite(json.loads(line), suffix, shift), separators=(",", ":")) + "\n"
                out.write(text)
                written += len(text)
            copies += 1
    return written, copies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="doctor-bench-") as tmp:
        big = Path(tmp) / "big.otlp.jsonl"
        t0 = time.perf_counter()
        size, copies = generate(big, args.size_mb * 1024 * 1024)
        generate_s = time.perf_counter() - t0
        command = [sys.executable, "-m", "otel_sqla_doctor", "spans", "--format", "json", str(big)]
        t0 = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_kib, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        if proc.returncode not in (0, 1):
            print(proc.stderr, file=sys.stderr)
            return 2
        report = json.loads(proc.stdout)
    results = {
        "input_bytes": size,
        "input_mb": round(size / 1e6, 1),
        "copies_of_the_fixtures": copies,
        "spans": report["stats"]["spans"],
        "traces": report["stats"]["traces"],
        "split_traces": report["stats"]["split_traces"],
        "findings": {f["code"]: f["occurrences"] for f in report["findings"]},
        "wall_seconds": round(wall, 1),
        "throughput_mb_per_s": round(size / 1e6 / wall, 1),
        "cpu_seconds": round(cpu, 1),
        "throughput_mb_per_cpu_s": round(size / 1e6 / cpu, 1),  # fairer on a shared machine
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "spans_per_second": round(report["stats"]["spans"] / wall),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "generate_seconds": round(generate_s, 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
