"""python -m benchmarks.sort: jnp.sort, jnp.argsort and lax.top_k at 10^5 elements, Cerebro against jax.jit.

Both run in this one process pinned to one CPU (os.sched_setaffinity), XLA with its Eigen thread
pool off and Cerebro's runtime with one thread, on the same random f32 input (a few duplicates,
NaNs and zeros of both signs). Prints each op's median over --runs calls (after a warm-up) and the
ratio; the issue's target is a ratio of at most 2. The machine may be shared: run it quiet.

    python -m benchmarks.sort [--n 100000] [--runs 31] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import numpy as np  # noqa: E402

from benchmarks import machine, one_cpu  # noqa: E402


def _median_seconds(fn: Callable[[], object], runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cases() -> dict[str, Callable]:
    import jax
    import jax.numpy as jnp

    return {
        "sort": jnp.sort,
        "argsort": jnp.argsort,
        "top_k(k=10)": lambda x: jax.lax.top_k(x, 10),
        "sort(axis=-1) of 100 rows": lambda x: jnp.sort(x.reshape(100, -1), axis=-1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=31)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    one_cpu.pin()
    import jax

    import cerebro

    rng = np.random.default_rng(0)
    x = rng.standard_normal(args.n).astype(np.float32)
    x[::97] = np.nan
    x[1::89] = -0.0
    x[2::53] = 1.0
    results = {"machine": machine.describe(), "n": args.n, "threads": 1, "runs": args.runs, "ops": {}}
    for name, fn in _cases().items():
        xla = jax.jit(fn)
        ours = cerebro.compile(fn, cache=False)
        xla_s = _median_seconds(lambda xla=xla: jax.block_until_ready(xla(x)), args.runs)
        ours_s = _median_seconds(lambda ours=ours: ours(x), args.runs)
        results["ops"][name] = {"xla_ms": xla_s * 1e3, "cerebro_ms": ours_s * 1e3, "ratio": ours_s / xla_s}
        print(f"{name:28s} xla {xla_s * 1e3:8.3f} ms   cerebro {ours_s * 1e3:8.3f} ms   ratio {ours_s / xla_s:5.2f}")
    return one_cpu.finish(results, args.json)


if __name__ == "__main__":
    main()
