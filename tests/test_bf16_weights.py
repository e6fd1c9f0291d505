"""bf16 weights read as bf16 (passes/bf16_weights.py, codegen/matmul.py): a batch-1 layer whose constant
weights are all bfloat16 values streams them as bf16 and widens them in registers.

The widening is exact, so a model computes bit for bit what it computes with the weights stored as f32
(the pass off). Against jax.jit on the bf16 model both accumulate in f32 and round once to bf16, in their
own summation orders: within one bf16 ulp (relative 2^-8). Layers whose weights are not all bf16 values,
or whose rows fill more than one row block, keep f32 weights.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import native
import numpy as np
import pytest
from test_aarch64_runtime import run_cbxrun, split_outputs

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.frontends.jax import trace

BF16_ULP = 2.0 ** -8


def mlp(sizes: list[int], dtype: object, seed: int = 3) -> object:
    rng = np.random.default_rng(seed)
    layers = [((rng.normal(size=(a, b)) / np.sqrt(a)).astype(dtype), (rng.normal(size=b) * 0.1).astype(dtype))
              for a, b in zip(sizes, sizes[1:])]

    def fn(x):
        for k, (w, b) in enumerate(layers):
            x = x @ w + b
            if k < len(layers) - 1:
                x = jax.nn.relu(x)
        return x

    return fn


def _matmul_weight_types(graph: object) -> list[str]:
    return [node.inputs[1].dtype.name for node in driver.lower(graph)[0].nodes if node.op == "matmul"]


def _run(graph: object) -> np.ndarray:
    out = runtime.load(driver.build(graph))(X)
    return np.asarray(out[0] if isinstance(out, (list, tuple)) else out)


def _without_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "narrow_bf16_weights", lambda graph, target: graph)


SIZES = [96, 64, 64, 10]
X = np.random.default_rng(4).normal(size=(1, SIZES[0])).astype(jnp.bfloat16)


def test_bf16_model_streams_bf16_weights_and_matches_jax_jit(monkeypatch: pytest.MonkeyPatch) -> None:
    fn = mlp(SIZES, jnp.bfloat16)
    graph = trace(fn, X).graph
    assert _matmul_weight_types(graph) == ["bf16"] * 3
    weights = len(driver.lower(graph)[3])
    got = _run(graph)
    want = np.asarray(jax.jit(fn)(X), np.float32)
    np.testing.assert_allclose(np.asarray(got, np.float32), want, rtol=BF16_ULP, atol=BF16_ULP * np.abs(want).max())
    _without_pass(monkeypatch)
    assert _matmul_weight_types(graph) == ["f32"] * 3
    assert weights < 0.55 * len(driver.lower(graph)[3])  # the weights' bytes halved (biases stay f32)
    np.testing.assert_array_equal(_run(graph), got)  # widening is exact


def test_weights_stay_f32_when_not_bf16_values_or_many_rows() -> None:
    f32 = trace(mlp(SIZES, np.float32), X.astype(np.float32)).graph
    assert _matmul_weight_types(f32) == ["f32"] * 3  # random f32 weights are not bf16 values
    batch = trace(mlp(SIZES, jnp.bfloat16), np.repeat(X, 16, axis=0)).graph
    assert _matmul_weight_types(batch) == ["f32"] * 3  # 16 rows: several row blocks reuse each weight


def test_bf16_weights_on_aarch64(tmp_path) -> None:
    """The widening loads, built for aarch64 and run there (qemu off aarch64 hosts)."""
    fn = mlp(SIZES, jnp.bfloat16)
    graph = trace(fn, X).graph
    want = np.asarray(jax.jit(fn)(X))
    result = run_cbxrun(native.aarch64_runner(tmp_path / "runner"), driver.build(graph, target="aarch64"), [X],
                        tmp_path)
    assert result.returncode == 0, result.stderr
    (got,) = split_outputs((tmp_path / "out.bin").read_bytes(), [want])
    want = want.astype(np.float32)
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=BF16_ULP, atol=BF16_ULP * np.abs(want).max())
