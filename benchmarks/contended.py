"""python -m benchmarks --contended: Cerebro's threads=1 against threads=N with every CPU also busy.

Users run models next to other work. For each model (batch 1) this loads one .cbx twice, with
threads=1 and threads=N (N = runtime.usable_cpus()), and times single calls of both, interleaved,
first on idle CPUs and then with one busy process (a Python spin loop) pinned to every usable CPU.
Reported per model and load: median and p99 latency of each thread count, and N's over 1's ratio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import timing
from benchmarks.backends import _cerebro_loaded
from benchmarks.models import workload

DEFAULT_MODELS = ("mlp", "cnn", "transformer")
BUDGET = timing.Budget(warmup=20, min_repeats=400, min_seconds=2.0, max_seconds=6.0, floor_repeats=20, rounds=4)
SPIN = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True: pass"


def busy_processes(cpus: set[int]) -> list[subprocess.Popen]:
    """One spinning process pinned to each CPU (what `taskset -c CPU python -c 'while True: pass'` does)."""
    return [subprocess.Popen([sys.executable, "-c", SPIN, str(cpu)]) for cpu in sorted(cpus)]


def summary(times: np.ndarray) -> dict:
    return {"median_us": float(np.median(times) * 1e6), "p99_us": float(np.percentile(times, 99) * 1e6),
            "repeats": int(times.size)}


def measure(model: str, threads: int, budget: timing.Budget) -> dict:
    """Both thread counts of one model, idle and contended."""
    from cerebro import runtime

    w = workload(model, 1)
    with tempfile.TemporaryDirectory(prefix="cerebro-contended-") as tmp:
        one, _, path, inputs = _cerebro_loaded(w, 1, Path(tmp))
        many = runtime.load(path, threads=threads)
    for a, b in zip(one(*inputs), many(*inputs), strict=True):
        if a.tobytes() != b.tobytes():
            raise SystemExit(f"{model}: threads={threads} differs from threads=1")
    calls = {"1": lambda: one(*inputs), str(threads): lambda: many(*inputs)}
    record = {"model": model, "threads": threads}
    for load in ("idle", "contended"):
        spinners = busy_processes(os.sched_getaffinity(0)) if load == "contended" else []
        try:
            time.sleep(0.2 if spinners else 0)  # let the spinners start
            samples = timing.sample_interleaved(calls, budget)
        finally:
            for p in spinners:
                p.kill()
                p.wait()
        record[load] = {name: summary(times) for name, times in samples.items()}
    return record


def _cell(result: dict) -> str:
    return f"{result['median_us']:.1f} / {result['p99_us']:.1f}"


def markdown(records: list[dict], command: str) -> str:
    lines = [
        "# Cerebro under a competing load: threads=1 vs threads=N",
        "",
        f"- Command: `{command}`; batch 1; single calls timed with perf_counter, the two thread counts "
        "interleaved; contended: one spinning process pinned to every usable CPU.",
        "- Cells: median us / p99 us; ratio: N's median (p99) over 1's (at most 1.5 is the target).",
        "",
        "| model | N | idle t=1 | idle t=N | idle ratio | contended t=1 | contended t=N | contended ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        n = str(r["threads"])
        cells = [r["model"], n]
        for load in ("idle", "contended"):
            one, many = r[load]["1"], r[load][n]
            cells += [_cell(one), _cell(many),
                      f"{many['median_us'] / one['median_us']:.2f} ({many['p99_us'] / one['p99_us']:.2f})"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + [""])


def main(models: list[str], out: Path, command: str, budget: timing.Budget = BUDGET) -> list[dict]:
    from cerebro import runtime

    threads = max(2, runtime.usable_cpus())
    records = []
    out.mkdir(parents=True, exist_ok=True)
    for model in models:
        records.append(measure(model, threads, budget))
        print(json.dumps(records[-1]), flush=True)
        (out / "contended.json").write_text(json.dumps(records, indent=1))
        (out / "contended.md").write_text(markdown(records, command))
    print(f"wrote {out / 'contended.md'}, contended.json")
    return records
