"""16-bit weights read as 16 bits (passes/half_weights.py, codegen/matmul.py): a batch-1 layer whose constant
weights are all bfloat16 (or float16) values streams them as bf16 (f16) and widens them in registers.

The widening is exact, so a model computes bit for bit what it computes with the weights stored as f32
(the pass off). Against jax.jit on the bf16 (f16) model both accumulate in f32 and round once to the
16-bit type, in their own summation orders: within one ulp of it (relative 2^-8 for bf16, 2^-11 for f16).
Layers whose weights are not all 16-bit values, or whose rows fill more than one row block, keep f32, and
so do f16 weights on a target without a hardware f16 conversion (x86-64 without F16C).
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

ULP = {"bfloat16": 2.0 ** -8, "float16": 2.0 ** -11}


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


def _matmul_weight_types(graph: object, target: str = "host") -> list[str]:
    return [node.inputs[1].dtype.name for node in driver.lower(graph, target)[0].nodes if node.op == "matmul"]


def _run(graph: object, x: np.ndarray) -> np.ndarray:
    out = runtime.load(driver.build(graph))(x)
    return np.asarray(out[0] if isinstance(out, (list, tuple)) else out)


def _without_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "narrow_half_weights", lambda graph, target: graph)


SIZES = [96, 64, 64, 10]
X = np.random.default_rng(4).normal(size=(1, SIZES[0])).astype(jnp.bfloat16)
HALVES = [(jnp.bfloat16, "bf16"), (jnp.float16, "f16")]


@pytest.mark.parametrize("dtype, stored", HALVES, ids=["bf16", "f16"])
def test_16_bit_model_streams_16_bit_weights_and_matches_jax_jit(dtype: object, stored: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fn, x, ulp = mlp(SIZES, dtype), X.astype(dtype), ULP[np.dtype(dtype).name]
    graph = trace(fn, x).graph
    assert _matmul_weight_types(graph) == [stored] * 3
    weights = len(driver.lower(graph)[3])
    got = _run(graph, x)
    want = np.asarray(jax.jit(fn)(x), np.float32)
    np.testing.assert_allclose(np.asarray(got, np.float32), want, rtol=ulp, atol=ulp * np.abs(want).max())
    _without_pass(monkeypatch)
    assert _matmul_weight_types(graph) == ["f32"] * 3
    assert weights < 0.55 * len(driver.lower(graph)[3])  # the weights' bytes halved (biases stay f32)
    np.testing.assert_array_equal(_run(graph, x), got)  # widening is exact


def test_weights_stay_f32_when_not_16_bit_values_or_many_rows() -> None:
    f32 = trace(mlp(SIZES, np.float32), X.astype(np.float32)).graph
    assert _matmul_weight_types(f32) == ["f32"] * 3  # random f32 weights are neither bf16 nor f16 values
    batch = trace(mlp(SIZES, jnp.bfloat16), np.repeat(X, 16, axis=0)).graph
    assert _matmul_weight_types(batch) == ["f32"] * 3  # 16 rows: several row blocks reuse each weight
    f16 = trace(mlp(SIZES, jnp.float16), X.astype(jnp.float16)).graph
    assert _matmul_weight_types(f16, "x86_64") == ["f32"] * 3  # x86-64-v2 has no F16C to widen f16
    assert _matmul_weight_types(f16, "x86_64-v3") == ["f16"] * 3


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bf16", "f16"])
def test_16_bit_weights_on_aarch64(dtype: object, tmp_path) -> None:
    """The widening loads, built for aarch64 and run there (qemu off aarch64 hosts)."""
    fn, x, ulp = mlp(SIZES, dtype), X.astype(dtype), ULP[np.dtype(dtype).name]
    graph = trace(fn, x).graph
    want = np.asarray(jax.jit(fn)(x))
    result = run_cbxrun(native.aarch64_runner(tmp_path / "runner"), driver.build(graph, target="aarch64"), [x],
                        tmp_path)
    assert result.returncode == 0, result.stderr
    (got,) = split_outputs((tmp_path / "out.bin").read_bytes(), [want])
    want = want.astype(np.float32)
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=ulp, atol=ulp * np.abs(want).max())
