"""python -m benchmarks.half_weights: batch-1 dense layers on bf16/f16 weights, Cerebro against itself and jax.jit.

Models: an MLP 784-512-512-10 (relu) and one 4096x4096 dense layer, input one row. Variants, for bf16
and f16: `cerebro bf16` (weights kept 16-bit, widened in registers: passes/half_weights.py), `cerebro
bf16 widened` (the same model with that pass off: weights stored as f32, as before it) and `xla bf16`
(jax.jit of the model); and `cerebro f32` (the model in float32). One process pinned to one CPU, XLA's
Eigen pool off, Cerebro's runtime on one thread, sampled in interleaved rounds (benchmarks/timing.py).

    python -m benchmarks.half_weights [--quick] [--json out.json]
"""

from __future__ import annotations

import os
from unittest import mock

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import numpy as np  # noqa: E402

from benchmarks import machine, one_cpu, timing  # noqa: E402

MODELS = {"mlp 784-512-512-10": [784, 512, 512, 10], "dense 4096x4096": [4096, 4096]}


def dense_stack(sizes: list[int], dtype: object, seed: int = 0) -> tuple[object, np.ndarray]:
    """fn(x) applying dense layers (relu between them) with weights closed over, and one input row."""
    import jax

    rng = np.random.default_rng(seed)
    layers = [((rng.normal(size=(a, b)) / np.sqrt(a)).astype(dtype), (rng.normal(size=b) * 0.1).astype(dtype))
              for a, b in zip(sizes, sizes[1:])]

    def fn(x):
        for k, (w, b) in enumerate(layers):
            x = x @ w + b
            if k < len(layers) - 1:
                x = jax.nn.relu(x)
        return x

    return fn, rng.normal(size=(1, sizes[0])).astype(dtype)


def variants(sizes: list[int]) -> dict[str, object]:
    import jax
    import jax.numpy as jnp

    import cerebro
    from cerebro.compiler import driver

    calls = {}
    for name, dtype in (("bf16", jnp.bfloat16), ("f16", jnp.float16)):
        fn, x = dense_stack(sizes, dtype)
        xla, ours = jax.jit(fn), cerebro.compile(fn, cache=False)
        with mock.patch.object(driver, "narrow_half_weights", lambda graph, target: graph):
            widened = cerebro.compile(fn, cache=False)
            widened(x)  # compiled here, with the pass off
        want = np.asarray(xla(x), np.float32)
        for got in (ours(x), widened(x)):
            np.testing.assert_allclose(np.asarray(got, np.float32), want, rtol=2 ** -7, atol=2 ** -7)
        calls.update({f"cerebro {name}": lambda ours=ours, x=x: ours(x),
                      f"cerebro {name} widened": lambda widened=widened, x=x: widened(x),
                      f"xla {name}": lambda xla=xla, x=x: jax.block_until_ready(xla(x))})
    f32, x32 = dense_stack(sizes, np.float32)
    ours_f32 = cerebro.compile(f32, cache=False)
    return {**calls, "cerebro f32": lambda: ours_f32(x32)}


def main(argv: list[str] | None = None) -> dict:
    args = one_cpu.parser(__doc__).parse_args(argv)
    one_cpu.pin()
    results: dict = {"machine": machine.describe(), "threads": 1, "models": {}}
    for name, sizes in MODELS.items():
        times = timing.sample_interleaved(variants(sizes), one_cpu.budget(args))
        summary = {variant: timing.summarize(samples) for variant, samples in times.items()}
        results["models"][name] = summary
        print(f"{name}: " + "   ".join(f"{v} {s['median_ms']:.3f} ms" for v, s in summary.items()))
    return one_cpu.finish(results, args.json)


if __name__ == "__main__":
    main()
