"""Where a Cerebro compile's time goes: the compiler's phases (compiler/progress.py) timed, and grouped
into the columns of the zoo report."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cerebro.compiler.progress import Reporter

# compiler phase (compiler/driver.py, plus the zoo worker's "import" and "load") -> report column
GROUPS = {
    "import": "import",
    "verify": "passes",
    "fold constants": "passes",
    "optimise": "passes",
    "stages and memory plan": "passes",
    "lower to LLVM IR": "emit IR",
    "LLVM optimise": "LLVM",
    "LLVM parse": "LLVM",  # this and the next: the names before commit 2ca7c72, in results recorded then
    "LLVM optimise (O3)": "LLVM",
    "LLVM machine code": "LLVM",
    "write .cbx": "write+load",
    "write file": "write+load",  # the .cbx bytes to disk (the zoo worker's file, this script's temporary one)
    "load": "write+load",
}
COLUMNS = ("import", "passes", "emit IR", "LLVM", "write+load")


class PhaseClock(Reporter):
    """Seconds per phase name, summed over repeats (verify runs twice)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._begun: dict[str, float] = {}

    def start(self, name: str) -> None:
        self._begun[name] = time.perf_counter()

    def end(self, name: str) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - self._begun.pop(name)


def grouped(phases: dict[str, float]) -> dict[str, float]:
    """The report's columns from a compile's phase seconds; a phase not in GROUPS counts as 'other'."""
    columns: dict[str, float] = {}
    for name, seconds in phases.items():
        column = GROUPS.get(name, "other")
        columns[column] = columns.get(column, 0.0) + seconds
    return columns


def one_core_seconds(onnx_file: Path) -> dict[str, float]:
    """CPU seconds per report column (plus 'total') of importing, building and loading one ONNX file, in
    this process; the caller pins it to one core."""
    from cerebro import runtime
    from cerebro.compiler.driver import build_sealed
    from cerebro.compiler.progress import phase, timed
    from cerebro.frontends.onnx import import_onnx

    with tempfile.TemporaryDirectory() as folder, timed() as times:
        with phase("import"):
            graph = import_onnx(onnx_file.read_bytes())
        cbx = Path(folder) / "model.cbx"
        sealed = build_sealed(graph, target="host")
        with phase("write file"):
            sealed.write(cbx)
            del sealed
        with phase("load"):
            runtime.load(cbx, threads=1)
    columns = grouped(times.cpu_seconds)
    columns["total"] = times.total_cpu_seconds
    return columns


def main(argv: list[str] | None = None) -> None:
    """python -m benchmarks.zoo.phases [--batch N] [--cache DIR] MODEL...: one pinned process per model,
    a table of one-core CPU seconds per phase column (the compile-time target is total <= 5 s)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "cerebro" / "zoo")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # the child: one model, JSON out
    args = parser.parse_args(argv)
    if args.one:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        print(json.dumps(one_core_seconds(args.cache / args.models[0] / f"b{args.batch}.onnx")))
        return
    print("| model | " + " | ".join(COLUMNS) + " | other | total |")
    print("|---" * (len(COLUMNS) + 3) + "|")
    for model in args.models:
        done = subprocess.run([sys.executable, "-m", "benchmarks.zoo.phases", "--one", "--batch", str(args.batch),
                               "--cache", str(args.cache), model], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"| {model} | failed: {(done.stderr.strip().splitlines() or ['?'])[-1]} |", flush=True)
            continue
        columns = json.loads(done.stdout.splitlines()[-1])
        other = columns["total"] - sum(columns.get(c, 0.0) for c in COLUMNS)
        cells = [f"{columns.get(c, 0.0):.2f}" for c in COLUMNS] + [f"{other:.2f}", f"{columns['total']:.2f}"]
        print(f"| {model} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
