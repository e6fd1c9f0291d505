"""python -m benchmarks.loops: a 1000-step lax.scan of a small RNN cell, Cerebro against jax.jit.

The cell is h = tanh(x @ W + h @ U + b) with h of 32 and x of 16 floats; the scan returns the last
state and every state (1000 x 32). Both run in this one process pinned to one CPU, XLA with its
Eigen thread pool off and Cerebro's runtime with one thread, sampled in interleaved rounds
(benchmarks/timing.py). Prints the medians and their ratio; the issue's target is at most 1.5.

    python -m benchmarks.loops [--steps 1000] [--quick] [--json out.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import numpy as np  # noqa: E402

from benchmarks import machine, one_cpu, timing  # noqa: E402

HIDDEN, FEATURES = 32, 16


def rnn(h0, xs, w, u, b):
    import jax.numpy as jnp
    from jax import lax

    def cell(h, x):
        h = jnp.tanh(x @ w + h @ u + b)
        return h, h

    return lax.scan(cell, h0, xs)


def inputs(steps: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    return (rng.normal(size=HIDDEN).astype(np.float32), rng.normal(size=(steps, FEATURES)).astype(np.float32),
            (rng.normal(size=(FEATURES, HIDDEN)) * 0.3).astype(np.float32),
            (rng.normal(size=(HIDDEN, HIDDEN)) * 0.2).astype(np.float32), rng.normal(size=HIDDEN).astype(np.float32))


def main(argv: list[str] | None = None) -> dict:
    parser = one_cpu.parser(__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args(argv)
    one_cpu.pin()
    import jax

    import cerebro

    data = inputs(args.steps)
    xla = jax.jit(rnn)
    ours = cerebro.compile(rnn, cache=False)
    for got, want in zip(ours(*data), xla(*data)):
        np.testing.assert_allclose(got, np.asarray(want), rtol=0, atol=1e-4)
    calls = {"xla": lambda: jax.block_until_ready(xla(*data)), "cerebro": lambda: ours(*data)}
    times = timing.sample_interleaved(calls, one_cpu.budget(args))
    summary = {name: timing.summarize(samples) for name, samples in times.items()}
    ratio = summary["cerebro"]["median_ms"] / summary["xla"]["median_ms"]
    results = {"machine": machine.describe(), "steps": args.steps, "threads": 1, **summary, "ratio": ratio}
    print(f"rnn scan of {args.steps} steps (h={HIDDEN}, x={FEATURES}, tanh): xla {summary['xla']['median_ms']:.3f} ms"
          f"   cerebro {summary['cerebro']['median_ms']:.3f} ms   ratio {ratio:.2f}")
    return one_cpu.finish(results, args.json)


if __name__ == "__main__":
    main()
