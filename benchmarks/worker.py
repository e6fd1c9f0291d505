"""One benchmark configuration (model, batch, threads), run in its own process.

The parent (benchmarks.__main__) sets the thread environment and CPU affinity before this
process starts, so XLA, ONNX Runtime and OpenBLAS see them at import time. Usage:
    python -m benchmarks.worker --model mlp --batch 1 --threads 1 --result out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from benchmarks import timing
from benchmarks.backends import BACKENDS, Prepared, Unavailable, describe_error
from benchmarks.models import Workload, workload

# An output is right when max|got - ref| <= ATOL + RTOL * max|ref|.
RTOL = 1e-3
ATOL = 1e-4


def reference(w: Workload) -> np.ndarray:
    """The expected output: JAX op by op (no jit), unless the workload brings its own."""
    if w.reference is not None:
        return w.reference
    import jax.numpy as jnp

    return np.asarray(w.fn(*(jnp.asarray(a) for a in w.inputs)))


def prepare(
    name: str, w: Workload, threads: int | None, ref: np.ndarray, workdir: Path
) -> tuple[dict, Prepared | None]:
    """Compile one backend and check its output against the reference; never raises.

    Returns the result so far and the prepared model, or None when it must not be timed
    (skipped, failed, or wrong output: a benchmark of a wrong model is worthless).
    """
    try:
        prepared = BACKENDS[name](w, threads, workdir)
    except Unavailable as why:
        return {"status": "skipped", "reason": str(why)}, None
    except Exception as error:
        return {"status": "error", "reason": describe_error(error), "traceback": traceback.format_exc()}, None
    result = {"compile_s": prepared.compile_s, **prepared.info}
    try:
        got = np.asarray(prepared.output())
        if got.shape != ref.shape:
            problem = f"output shape {got.shape}, expected {ref.shape}"
        else:
            diff = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
            result["max_abs_diff"] = diff
            tolerance = ATOL + RTOL * float(np.max(np.abs(ref)))
            problem = None if diff <= tolerance else f"max|diff| {diff:.3g} > tolerance {tolerance:.3g}"  # NaN fails
    except Exception as error:
        prepared.close()
        return {**result, "status": "error", "reason": describe_error(error), "traceback": traceback.format_exc()}, None
    if problem:
        prepared.close()
        return {**result, "status": "wrong", "reason": problem}, None
    return {**result, "status": "ok"}, prepared


def time_all(results: dict[str, dict], prepared: dict[str, Prepared], budget: timing.Budget, calls: int = 1) -> None:
    """Time the prepared backends in interleaved rounds and add median/p90 to their results (per call, each
    sample timing `calls` calls in a row)."""
    try:
        samples = timing.sample_interleaved({name: timing.repeated(p.call, calls) for name, p in prepared.items()},
                                            budget)
        for name, times in samples.items():
            results[name].update(timing.summarize(times / calls), calls_per_sample=calls)
    except Exception as error:
        for name in prepared:
            results[name].update(status="error", reason=describe_error(error), traceback=traceback.format_exc())
    finally:
        for p in prepared.values():
            p.close()


def run(model: str, batch: int, threads: int | None, backends: list[str], budget: timing.Budget) -> dict:
    record = {
        "model": model,
        "batch": batch,
        "threads": threads or "default",
        "cpus_available": len(os.sched_getaffinity(0)),
        "backends": {},
    }
    start = time.perf_counter()
    w = workload(model, batch)
    ref = reference(w)
    record.update(reference=w.reference_name, flops=w.flops, notes=w.notes, input_shapes=[a.shape for a in w.inputs])
    results, ready = record["backends"], {}
    with tempfile.TemporaryDirectory(prefix="cerebro-bench-") as tmp:
        for name in backends:
            results[name], prepared = prepare(name, w, threads, ref, Path(tmp))
            if prepared is not None:
                ready[name] = prepared
            print(f"  {name}: {results[name]['status']} {results[name].get('reason', '')}", file=sys.stderr, flush=True)
        time_all(results, ready, budget, w.calls_per_sample)
    for name, result in results.items():
        if result["status"] == "ok":
            print(f"  {name}: {result['median_ms']:.3f} ms", file=sys.stderr, flush=True)
    record["wall_s"] = time.perf_counter() - start
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--threads", default="default", help="1 or 'default'")
    parser.add_argument("--backends", default="cerebro,xla,ort")
    parser.add_argument("--budget", default="{}", help="JSON of benchmarks.timing.Budget fields")
    parser.add_argument("--result", required=True, help="where to write the JSON record")
    args = parser.parse_args(argv)
    threads = None if args.threads == "default" else int(args.threads)
    budget = timing.Budget(**json.loads(args.budget))
    record = run(args.model, args.batch, threads, args.backends.split(","), budget)
    Path(args.result).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
