"""A bias add between a matmul and a reshape of its leading dims (GPT-2's Conv1D: addmm, then view to
[batch, seq, n]) runs after the reshape (passes/fuse.py lift_reshapes), so it and the chain reading the
reshape (GELU, a residual add) fuse into the matmul as one epilogue, against jax.jit.

Tolerances (f32): the same matmul and elementwise ops in another order of fusion; the sums are
K = 48 terms of order 1, the tanh approximation within 6 ulp (mathfn): rtol 1e-5, atol 1e-5."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from native import run_against_jit

jax.config.update("jax_platforms", "cpu")
_RNG = np.random.default_rng(3)
B, S, K, N = 2, 16, 48, 64
W = (_RNG.standard_normal((K, N)) / np.sqrt(K)).astype(np.float32)
BIAS = _RNG.standard_normal(N).astype(np.float32)


def _conv1d(x):
    """GPT-2's Conv1D as exported: flatten the leading dims, addmm, view back."""
    return (x.reshape(B * S, K) @ W + BIAS).reshape(B, S, N)


def _matmuls(nodes) -> list:
    return [n for n in nodes if n.op == "matmul"]


def test_gelu_after_reshape_is_one_epilogue():
    x = _RNG.standard_normal((B, S, K)).astype(np.float32)
    nodes, got, want = run_against_jit(lambda x: jax.nn.gelu(_conv1d(x), approximate=True), x)
    (matmul,) = _matmuls(nodes)
    assert [n.op for n in nodes if n.op not in ("reshape",)] == ["matmul"], [n.op for n in nodes]
    assert {"add", "tanh"} <= {n.op for n in matmul.attrs["epilogue"].nodes}
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_residual_after_reshape_joins_the_epilogue():
    x = _RNG.standard_normal((B, S, K)).astype(np.float32)
    r = _RNG.standard_normal((B, S, N)).astype(np.float32)
    nodes, got, want = run_against_jit(lambda x, r: _conv1d(x) + r, x, r)
    (matmul,) = _matmuls(nodes)
    assert [n.op for n in nodes if n.op not in ("reshape",)] == ["matmul"], [n.op for n in nodes]
    assert [n.op for n in matmul.attrs["epilogue"].nodes] == ["add", "add"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_reshape_across_the_last_dim_stays():
    """A reshape that splits the last dim moves columns between rows: the add stays before it."""
    x = _RNG.standard_normal((B * S, K)).astype(np.float32)
    nodes, got, want = run_against_jit(lambda x: jnp.tanh((x @ W + BIAS).reshape(B * S, 8, N // 8)), x)
    (matmul,) = _matmuls(nodes)
    assert [n.op for n in matmul.attrs["epilogue"].nodes] == ["add"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
