"""python -m benchmarks.compile_cache: a compile of ResNet50 served from the compile cache in a new process.

One process compiles (cold) into a private cache directory; then --runs fresh processes each compile
the same model again and time the phases of that compile (wall and CPU seconds): the JAX trace
(jax.make_jaxpr), the cache key (jaxpr and weights hashed), the cache read and its hash check, the
runtime's load (which checks the hash again), and any lowering or LLVM compile (none on a hit).
Prints the median of each phase with the machine it ran on; the model's first run is timed apart,
it is not part of the compile. The machine may be shared: CPU time is the steadier number.

    python -m benchmarks.compile_cache --runs 5 [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import machine

REPO = Path(__file__).resolve().parent.parent
# phase -> (module, attribute) timed in the child; a class attribute is "Class.method"
PHASES = {
    "trace": ("cerebro.frontends.jax.tracer", "capture"),
    "key": ("cerebro.frontends.jax.tracer", "Captured.fingerprint"),
    "lower": ("cerebro.frontends.jax.tracer", "lower"),
    "cache_get": ("cerebro.cache", "CompileCache.get"),
    "llvm_compile": ("cerebro.compiler.driver", "build_sealed"),
    "runtime_load": ("cerebro.runtime", "load"),
    "first_run": ("cerebro.runtime", "LoadedModel.__call__"),
}


def resnet50() -> tuple[Callable, Any]:
    """jax_resnet's ResNet50 (25.6 M parameters, 102 MB) with random weights, and an input: shapes come
    from eval_shape, since a real init costs tens of seconds and the weights' values do not matter here."""
    import jax
    from jax_resnet import ResNet50

    model = ResNet50(n_classes=1000)
    x = np.random.default_rng(1).standard_normal((1, 224, 224, 3), dtype=np.float32)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
    rng = np.random.default_rng(0)

    def random(path: tuple, shape: Any) -> np.ndarray:
        values = rng.standard_normal(shape.shape) * 0.05
        return (np.abs(values) + 1 if path[-1].key == "var" else values).astype(shape.dtype)  # variances > 0

    variables = jax.tree_util.tree_map_with_path(random, shapes)

    def resnet50(x):
        return model.apply(variables, x)

    return resnet50, x


MODELS = {"resnet50": resnet50}


def _timed(times: dict[str, list[float]], phase: str, real: Callable) -> Callable:
    @functools.wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return real(*args, **kwargs)
        finally:
            spent = times.setdefault(phase, [0.0, 0.0])
            spent[0] += time.perf_counter() - wall
            spent[1] += time.process_time() - cpu

    return wrapper


def child(model: str) -> dict[str, Any]:
    """In a fresh process: cerebro.compile(model)(x) with each phase timed; returns the times."""
    import importlib

    import cerebro

    times: dict[str, list[float]] = {}
    for phase, (module_name, attribute) in PHASES.items():
        owner: Any = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, _timed(times, phase, getattr(owner, name)))
    fn, x = MODELS[model]()
    wall, cpu = time.perf_counter(), time.process_time()
    output = cerebro.compile(fn)(x)
    total = [time.perf_counter() - wall, time.process_time() - cpu]
    first_run = times.get("first_run", [0.0, 0.0])
    result = {phase: times.get(phase, [0.0, 0.0]) for phase in PHASES}
    result["compile_total"] = [total[0] - first_run[0], total[1] - first_run[1]]
    result["output_sum"] = float(np.asarray(output, np.float64).sum())
    return result


def run_child(model: str, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.compile_cache", "--child", model], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _sha256_hardware() -> str | None:
    from cerebro import _runtime

    return _runtime.SHA256_HARDWARE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="second processes to time (the median is reported)")
    parser.add_argument("--model", choices=sorted(MODELS), default="resnet50")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    with tempfile.TemporaryDirectory(prefix="cerebro-cache-bench-") as directory:
        env = {**os.environ, "CEREBRO_COMPILE_CACHE": "1", "CEREBRO_CACHE_DIR": directory,
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        cold = run_child(args.model, env)
        hits = [run_child(args.model, env) for _ in range(args.runs)]
    missed = [i for i, hit in enumerate(hits) if hit["llvm_compile"][0] or hit["lower"][0]]
    if missed:
        raise SystemExit(f"runs {missed} compiled again: the cache did not serve them")
    phases = [*PHASES, "compile_total"]
    medians = {p: [statistics.median(h[p][i] for h in hits) for i in (0, 1)] for p in phases}
    info = machine.describe()
    print(f"{args.model}: compile served from the cache in a new process, median of {args.runs} runs "
          f"(cold compile {cold['compile_total'][0]:.1f} s wall)")
    print(f"machine: {info['cpu']}, {info['usable_cpus']} usable CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"runtime SHA-256 on {_sha256_hardware() or 'portable C'}; commit {info['commit']}")
    print(f"{'phase':<16}{'wall s':>9}{'CPU s':>9}")
    for phase in phases:
        print(f"{phase:<16}{medians[phase][0]:9.3f}{medians[phase][1]:9.3f}")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "runs": hits, "cold": cold, "medians": medians,
                                         "machine": info}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
