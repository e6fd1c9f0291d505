"""Row kernels (passes/rows.py, codegen/rows.py): softmax, log_softmax, layernorm, rmsnorm as one
row_kernel node, through the driver and the C runtime, against jax.jit.

Tolerances (f32): every output is a few elementwise ops on values of the row plus one or two sums
of n terms; summation order differs from XLA's, which moves a sum by up to n*eps*sum|terms|, and
exp/log/rsqrt are within 2e-6 relative (mathfn). So rtol 1e-5 / atol 1e-6 for softmax outputs in
[0, 1] and rtol 1e-5 / atol 1e-5 for log_softmax and the norms (values of order 1-10).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from native import run_against_jit

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.codegen.rows import Schedule
from cerebro.compiler.ir.fused import ROW_KERNEL
from cerebro.frontends.jax import trace

jax.config.update("jax_platforms", "cpu")
_RNG = np.random.default_rng(11)


def _normal(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (_RNG.standard_normal(shape) * scale).astype(np.float32)


def _run(fn, *args) -> tuple[list, np.ndarray, np.ndarray]:
    return run_against_jit(fn, *args, name="rows")


def _one_row_kernel(nodes: list) -> None:
    assert [n.op for n in nodes] == [ROW_KERNEL], [n.op for n in nodes]


def _rmsnorm(gamma: np.ndarray):
    return lambda x: x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6) * gamma


@pytest.mark.parametrize("shape", [(4, 128, 128), (3, 5, 37), (7, 1000), (2, 16384), (16,)], ids=str)
def test_softmax(shape):
    x = _normal(*shape, scale=4.0)
    nodes, got, want = _run(jax.nn.softmax, x)
    _one_row_kernel(nodes)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_softmax_is_three_sweeps_and_keeps_exp():
    traced = trace(jax.nn.softmax, _normal(2, 64), name="rows")
    (node,) = driver.lower(traced.graph)[0].nodes
    plan = Schedule(node)
    assert plan.count == 3 and plan.kept is not None and plan.made[plan.kept].op == "exp"


def test_log_softmax():
    x = _normal(6, 33, 130, scale=3.0)
    nodes, got, want = _run(jax.nn.log_softmax, x)
    _one_row_kernel(nodes)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_softmax_rows_with_inf_and_large_values():
    x = _normal(8, 40, scale=3.0)
    x[0, 3] = -np.inf  # one masked position
    x[1, :] = -np.inf  # a fully masked row: NaN, as in JAX
    x[2, 5] = np.inf  # +inf: NaN in that row, as in JAX
    x[3] += 80.0  # exp would overflow without the max shift
    x[4, 7] = 3e38
    x[5, 9] = np.nan
    nodes, got, want = _run(jax.nn.softmax, x)
    _one_row_kernel(nodes)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [128, 37])
def test_flax_layernorm(n):
    x = _normal(2, 24, n, scale=3.0) + 1.5
    layer = nn.LayerNorm()
    params = layer.init(jax.random.PRNGKey(0), x)
    params = jax.tree_util.tree_map(lambda p: p + _normal(*p.shape, scale=0.5), params)
    nodes, got, want = _run(lambda x: layer.apply(params, x), x)
    _one_row_kernel(nodes)
    assert Schedule(nodes[0]).count == 2
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_layernorm_two_pass_form():
    """mean, then the mean of squared deviations (what flax does with use_fast_variance=False)."""
    x = _normal(10, 96, scale=2.0)
    gamma, beta = _normal(96), _normal(96)

    def layernorm(x):
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + 1e-5) * gamma + beta

    nodes, got, want = _run(layernorm, x)
    _one_row_kernel(nodes)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_rmsnorm():
    x = _normal(3, 20, 256, scale=2.0)
    nodes, got, want = _run(_rmsnorm(_normal(256)), x)
    _one_row_kernel(nodes)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_per_row_output():
    """A region whose output is one value per row (logsumexp)."""
    x = _normal(9, 50, scale=4.0)
    nodes, got, want = _run(lambda x: jax.nn.logsumexp(x, axis=-1), x)
    assert ROW_KERNEL in [n.op for n in nodes]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_not_fused():
    """A lone reduction, a reduction over a leading axis and a row longer than MAX_ROW stay with the
    existing kernels; a value that is also a graph output ends a region instead of being inside one."""
    x = _normal(4, 32)
    nodes, got, want = _run(lambda x: jnp.sum(x, axis=-1), x)
    assert ROW_KERNEL not in [n.op for n in nodes]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    nodes, got, want = _run(lambda x: x / jnp.sum(x, axis=0, keepdims=True), x)
    assert ROW_KERNEL not in [n.op for n in nodes]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    long = _normal(2, 20000)
    nodes, got, want = _run(jax.nn.softmax, long)
    assert ROW_KERNEL not in [n.op for n in nodes]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)

    def shared(x):
        e = jnp.exp(x - jnp.max(x, axis=-1, keepdims=True))
        return e / jnp.sum(e, axis=-1, keepdims=True), e

    traced = trace(shared, x, name="rows")
    graph, *_ = driver.lower(traced.graph)
    kernels = [n for n in graph.nodes if n.op == ROW_KERNEL]
    # e is an output, so it cannot be an intermediate: one kernel makes e, another reads it
    assert len(kernels) == 2 and kernels[0].outputs[0].id == graph.outputs[1].id, kernels
    assert graph.outputs[1].id in [v.id for v in kernels[1].inputs]
    model = runtime.load(driver.build(traced.graph))
    for got, want in zip(model(*traced.flatten_inputs(x)), jax.jit(shared)(x)):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-6)


def test_f64_softmax():
    jax.config.update("jax_enable_x64", True)
    try:
        x = _RNG.standard_normal((5, 70)) * 4
        nodes, got, want = _run(jax.nn.softmax, x)
    finally:
        jax.config.update("jax_enable_x64", False)
    _one_row_kernel(nodes)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("form", ["cheap", "costly", "pow", "min"])
def test_max_min_paths_with_nan(form):
    """max of a cheaply computed row and min of a loaded one take maxnum plus a NaN check; max of
    a costly row (tanh, or pow by 2.5: exp and log) takes llvm.maximum. A row holding a NaN must come
    out NaN on every path."""
    x = _normal(6, 45, scale=3.0)
    x[2, 11] = np.nan
    x[4, 0] = -np.inf
    fns = {"cheap": lambda x: jax.nn.softmax(x * 2.0 + 1.0),
           "costly": lambda x: x - jnp.max(jnp.tanh(x) * 3.0, axis=-1, keepdims=True),
           "pow": lambda x: x - jnp.max(jnp.abs(x) ** 2.5, axis=-1, keepdims=True),
           "min": lambda x: x - jnp.min(x, axis=-1, keepdims=True)}
    nodes, got, want = _run(fns[form], x)
    _one_row_kernel(nodes)
    text = driver.lower(trace(fns[form], x, name="rows").graph)[1]
    exact = "llvm.maximum" in text or "llvm.minimum" in text
    assert exact == (form in ("costly", "pow")) and ("llvm.umax" in text) != exact
    assert np.isnan(got[2]).all() and not np.isnan(got[[0, 1, 3, 5]]).any()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_layernorm_leaves_matmul_epilogue():
    """The bias add after a dense layer stays in the matmul's epilogue; the residual add joins the row."""
    x, w, bias = _normal(32, 64), _normal(64, 64, scale=0.2), _normal(64)
    gamma, beta = _normal(64), _normal(64)

    def block(x):
        h = x + (x @ w + bias)
        mean = jnp.mean(h, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(h - mean), axis=-1, keepdims=True)
        return (h - mean) * jax.lax.rsqrt(var + 1e-5) * gamma + beta

    nodes, got, want = _run(block, x)
    matmul = [n for n in nodes if n.op == "matmul"]
    assert len(matmul) == 1 and "epilogue" in matmul[0].attrs and ROW_KERNEL in [n.op for n in nodes]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("target", ["x86_64", "aarch64"])
def test_other_targets_compile(target):
    """Code for SSE and NEON builds (it runs only on the host, so this checks the object is made)."""
    traced = trace(jax.nn.softmax, _normal(4, 100), name="rows")
    graph, *_ = driver.lower(traced.graph, target)
    _one_row_kernel(graph.nodes)
    assert driver.build(traced.graph, target)[:4] == b"\x7fELF"
