"""What every single-CPU micro-benchmark (sort, loops, half_weights, int8_weights) shares: its command
line (--quick, --json), pinning this process to one CPU, and writing the results it returns."""

from __future__ import annotations

import argparse
import json
import os

from benchmarks import timing


def parser(doc: str) -> argparse.ArgumentParser:
    """A parser described by the module docstring's first line, with --quick and --json."""
    made = argparse.ArgumentParser(description=doc.splitlines()[0])
    made.add_argument("--quick", action="store_true", help="a short sampling budget (timing.QUICK)")
    made.add_argument("--json", help="also write the results here")
    return made


def budget(args: argparse.Namespace) -> timing.Budget:
    return timing.QUICK if args.quick else timing.FULL


def pin() -> None:
    """Run on the lowest CPU this process may use (the benchmarks state one thread)."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def finish(results: dict, path: str | None) -> dict:
    """Write results as JSON to path when one is given; returns them."""
    if path:
        with open(path, "w") as out:
            json.dump(results, out, indent=2)
    return results
