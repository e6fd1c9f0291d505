"""python -m benchmarks.compile_models: one-core CPU seconds of compiling the benchmark models, Cerebro vs XLA.

One fresh process per model, pinned to one CPU (--cpu), times in CPU seconds (steadier than wall time on
a shared machine), each the minimum of --runs compiles after a first (the first is reported apart: it
also compiles Cerebro's Python, and JAX's); neither side's imports are counted (jax's or cerebro's, which
imports jax):
- XLA: jax.jit(fn).lower(x).compile();
- Cerebro, cold: trace + build + load with no cache at all (cerebro.compile(cache=False)), and where that
  time went (compiler/progress.py's phases of the least of the runs);
- Cerebro, kernel cache warm: the same, with every kernel's optimised bitcode already in a kernel cache
  (compiler/kernel_cache.py; filled by one compile first), as a model whose kernels an earlier model of
  this machine shared would compile. The cold number is the one to compare; this one says what the
  cache saves.
JAX's in-memory caches are cleared before each compile of either: kept, a repeated jax.jit(fn).lower(x)
.compile() of the same function is served whole from them (0.000 CPU s), and Cerebro's trace in part.

    python -m benchmarks.compile_models [--models mlp,cnn,transformer,resnet18] [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import machine
from cerebro.compiler.progress import PhaseTimes, timed

REPO = Path(__file__).resolve().parent.parent
MODELS = ("mlp", "cnn", "transformer", "resnet18")
SETUPS = ("xla", "cold", "warm")
# column -> the compiler phases (compiler/progress.py names) it adds up
PHASES = {"graph passes": ("verify", "fold constants", "optimise", "stages and memory plan"),
          "lower to LLVM IR": ("lower to LLVM IR",), "LLVM optimise": ("LLVM optimise",),
          "LLVM machine code": ("LLVM machine code",), "write .cbx": ("write .cbx",)}


def _seconds(compile_once: Callable[[], Any], runs: int) -> dict[str, Any]:
    """CPU s of the first compile and the least of `runs` more, with that one's compiler phases."""
    def one() -> PhaseTimes:
        with timed() as times:
            compile_once()
        return times

    first = one()
    best = min((one() for _ in range(runs)), key=lambda times: times.total_cpu_seconds)
    return {"first": first.total_cpu_seconds, "min": best.total_cpu_seconds, "phases": best.cpu_seconds}


def _phase_row(name: str, cold: dict[str, Any]) -> str:
    """Where the least cold compile went: PHASES (several phases each), what no phase covers (JAX's trace,
    the jaxpr's conversion, loading) and the whole."""
    spent = [sum(cold["phases"].get(phase, 0.0) for phase in phases) for phases in PHASES.values()]
    cells = " | ".join(f"{s:.3f}" for s in [cold["min"] - sum(spent), *spent])
    return f"| {name} | {cells} | {cold['min']:.3f} |"


def child(name: str, runs: int) -> dict[str, Any]:
    """In a fresh pinned process: the CPU seconds of each setup for one model at batch 1."""
    import jax

    import cerebro
    from benchmarks.models import workload
    from cerebro import runtime
    from cerebro.compiler import kernel_cache

    w = workload(name, 1)

    def xla() -> None:
        jax.clear_caches()
        jax.jit(w.fn).lower(*w.inputs).compile()

    def ours() -> None:
        jax.clear_caches()  # its trace starts afresh too
        compiled = cerebro.compile(w.fn, name=w.name, cache=False)
        runtime.load(compiled._build(compiled._capture(w.inputs, {}), "host"))

    results = {"xla": _seconds(xla, runs), "cold": _seconds(ours, runs)}
    with tempfile.TemporaryDirectory(prefix="cerebro-kernels-") as directory, kernel_cache.using(Path(directory)):
        results["warm"] = _seconds(ours, runs)  # its "first" fills the kernel cache: a cold compile
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--runs", type=int, default=3, help="compiles after the first; the minimum is reported")
    parser.add_argument("--cpu", type=int, default=0, help="the CPU each process is pinned to")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.runs)))
        return 0
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CEREBRO_COMPILE_CACHE": "0"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    results, loads = {}, {}
    for name in args.models.split(","):
        before = os.getloadavg()[0]
        proc = subprocess.run([sys.executable, "-m", "benchmarks.compile_models", "--child", name,
                               "--runs", str(args.runs)], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=1800, preexec_fn=lambda: os.sched_setaffinity(0, {args.cpu}))
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        loads[name] = (before, os.getloadavg()[0])
    info = machine.describe()
    print(f"one-core CPU s of a compile, min of {args.runs} after a first; {info['cpu']}, commit {info['commit']}")
    print("| model | XLA | Cerebro cold | cold / XLA | Cerebro, kernel cache warm | warm / XLA | first compile "
          "(XLA / cold) | load avg |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        xla, cold, warm = (r[s]["min"] for s in SETUPS)
        print(f"| {name} | {xla:.3f} | {cold:.3f} | {cold / xla:.1f}x | {warm:.3f} | {warm / xla:.1f}x | "
              f"{r['xla']['first']:.2f} / {r['cold']['first']:.2f} | {loads[name][0]:.1f}-{loads[name][1]:.1f} |")
    print("\nwhere the least cold compile went, CPU s (trace: JAX's trace, the jaxpr to IR, loading)")
    print(f"| model | trace | {' | '.join(PHASES)} | total |")
    print("|---" * (len(PHASES) + 3) + "|")
    for name, r in results.items():
        print(_phase_row(name, r["cold"]))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "load": loads, "machine": info}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
