"""Compile a real Flax model with Cerebro, run it in the user-space runtime and compare with JAX.

    python examples/demo.py            (what scripts/demo.sh runs)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import cerebro


class ConvNet(nn.Module):
    """A small image classifier: conv/batchnorm/pool blocks, then a dense head."""

    classes: int = 10

    @nn.compact
    def __call__(self, x):
        for features in (16, 32):
            x = nn.Conv(features, (3, 3), padding="SAME")(x)
            x = nn.BatchNorm(use_running_average=True)(x)
            x = nn.relu(x)
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.gelu(nn.Dense(64)(x))
        return nn.softmax(nn.Dense(self.classes)(x))


def median_us(fn, *args, repeats: int = 200) -> float:
    fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e6)


def main() -> None:
    model = ConvNet()
    x = jax.random.normal(jax.random.PRNGKey(1), (1, 28, 28, 1), jnp.float32)
    variables = model.init(jax.random.PRNGKey(0), x)

    def predict(variables, x):
        return model.apply(variables, x)

    def deployed(x):  # weights closed over: they become constants in the .cbx weights section
        return model.apply(variables, x)

    print("compiling ConvNet (conv, batchnorm, relu, max_pool, dense, gelu, softmax) with Cerebro ...")
    start = time.perf_counter()
    compiled = cerebro.compile(predict)
    ours = compiled(variables, x)
    print(f"  traced, compiled and loaded in {time.perf_counter() - start:.2f} s")
    reference = jax.jit(predict)(variables, x)
    error = float(np.max(np.abs(np.asarray(ours) - np.asarray(reference))))
    print(f"  max |cerebro - jax| = {error:.2e}   (tolerance 1e-5)")

    with tempfile.TemporaryDirectory() as tmp:
        path = cerebro.compile(deployed).export(Path(tmp) / "convnet.cbx", x)
        loaded = cerebro.load(path)
        print(f"  exported {path.name} with the weights inside: {path.stat().st_size:,} bytes")
        print(f"  signature: {loaded.signature}")
        again = loaded(np.asarray(x))
        error = max(error, float(np.max(np.abs(again - np.asarray(reference)))))
        print(f"  reloaded .cbx: max |cerebro - jax| = {float(np.max(np.abs(again - np.asarray(reference)))):.2e}")

    print(f"  latency, batch 1: cerebro {median_us(compiled, variables, x):.1f} us, "
          f"jax.jit {median_us(jax.jit(predict), variables, x):.1f} us (median of 200, default threads)")
    ok = error <= 1e-5
    print("MATCH" if ok else "MISMATCH")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
