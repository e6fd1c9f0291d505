"""A constant scalar scale next to a matmul folded into its weights (compiler/passes/matmul_scale.py):
attention's query projection, (x @ Wq + bq) / sqrt(head_dim), then shares the key and value projections'
function, and a global mean's divide before a classifier is no node of its own. The folded weights are
rounded once from float64, so the outputs match JAX's unfolded ones within float rounding: rtol 1e-5 and
2e-6 of the output's largest magnitude (K <= 64 here; f32 eps is 1.2e-7). Chains it must not fold are kept."""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest

import cerebro
from cerebro.compiler.driver import lower
from cerebro.compiler.ir import DType, Graph
from cerebro.compiler.ir.interpret import run_graph
from cerebro.compiler.passes.matmul_scale import fold_matmul_scales
from cerebro.frontends.jax.tracer import capture
from cerebro.frontends.jax.tracer import lower as jax_lower

RNG = np.random.default_rng(5)


def _attention_pool_model():
    """One attention block (query scaled by 1/sqrt(16)), then a mean over the tokens and a classifier."""
    import flax.linen as nn

    class AttentionPool(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = x + nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=64)(x, x)
            return nn.Dense(10)(x.mean(axis=1))

    module = AttentionPool()
    x = RNG.standard_normal((2, 24, 64), dtype=np.float32)
    shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)  # traced, not run: no XLA compiles
    params = jax.tree_util.tree_map(lambda p: RNG.standard_normal(p.shape).astype(np.float32) * 0.3,
                                    shapes["params"])

    def fn(x):
        return module.apply({"params": params}, x)

    return fn, x


def _check(got: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-6 * np.abs(expected).max())


def test_query_projection_shares_the_key_and_value_projections_function() -> None:
    fn, x = _attention_pool_model()
    graph = jax_lower(capture(fn, x)).graph
    optimised, text, _, _ = lower(graph, "host")
    matmuls = [n for n in optimised.nodes if n.op == "matmul" and n.inputs[1].is_const]
    projections = [n for n in matmuls if n.inputs[1].shape == (64, 64) and n.outputs[0].rank == 4]
    assert len(projections) == 3
    epilogues = {tuple(inner.op for inner in n.attrs["epilogue"].nodes) for n in projections}
    assert epilogues == {("add",)}  # q's divide by sqrt(16) is in its weights and bias
    assert not any(n.op == "div" and n.inputs[1].is_const and n.inputs[1].size == 1 for n in optimised.nodes)
    functions = set(re.findall(r'call void @"(node\d+_matmul)"', text))
    # q, k and v one function; the scores, x V, the output projection and the classifier one each
    assert len(functions) == 5, functions
    expected = np.asarray(jax.jit(fn)(x), np.float64)
    _check(cerebro.compile(fn, cache=False)(x), expected)


def _dense_graph(dtype: DType = DType.f32, rows: int = 3) -> tuple[Graph, object, object]:
    g = Graph("g")
    x = g.add_input((rows, 8), dtype, "x")
    w = g.const(RNG.standard_normal((8, 6)), dtype)
    return g, x, g.add1("matmul", x, w)


def _scalar(value: float, dtype: DType = DType.f32, rank: int = 2) -> object:
    return Graph.const(None, np.full((1,) * rank, value), dtype)


def _bias(dtype: DType = DType.f32) -> object:
    return Graph.const(None, RNG.standard_normal((1, 6)), dtype)


def _folds(build, count: int, dtype: DType = DType.f32) -> None:
    """build(graph) -> output; after the fold `count` nodes are left, with the unfolded graph's values
    within rounding."""
    g = build()
    x = RNG.standard_normal(g.inputs[0].shape).astype(dtype.numpy)
    (want,) = run_graph(g, [x])
    fold_matmul_scales(g)
    assert len(g.nodes) == count, [n.op for n in g.nodes]
    (got,) = run_graph(g, [x])
    _check(got, np.asarray(want, np.float64))


def test_bias_then_divide_folds_into_weights_and_bias() -> None:
    def build():
        g, _, y = _dense_graph()
        g.set_outputs([g.add1("div", g.add1("add", y, _bias()), _scalar(4.0))])
        return g
    _folds(build, 2)  # matmul, add


def test_scale_through_reshape_and_transpose_before_the_bias() -> None:
    def build():
        g, _, y = _dense_graph()
        moved = g.add1("transpose", g.add1("reshape", y, shape=(3, 2, 3)), perm=(0, 2, 1))
        scaled = g.add1("mul", _scalar(0.37, rank=3), moved)
        g.set_outputs([g.add1("add", g.add1("reshape", scaled, shape=(3, 6)), _bias())])
        return g
    _folds(build, 5)  # matmul, reshape, transpose, reshape, add: the mul is in the weights


def test_divide_before_the_matmul_folds() -> None:
    def build():
        g = Graph("g")
        x = g.add_input((2, 5, 8), DType.f32, "x")
        mean = g.add1("div", g.add1("reduce_sum", x, axes=(1,)), _scalar(5.0))
        g.set_outputs([g.add1("add", g.add1("matmul", mean, g.const(RNG.standard_normal((8, 6)), DType.f32)),
                              _bias())])
        return g
    _folds(build, 3)  # reduce_sum, matmul, add


@pytest.mark.parametrize("case", ["shared", "zero", "integer", "not_constant"])
def test_chains_it_must_not_fold_are_kept(case: str) -> None:
    dtype = DType.i32 if case == "integer" else DType.f32
    g, x, y = _dense_graph(dtype)
    biased = g.add1("add", y, _bias(dtype))
    divisor = {"zero": _scalar(0.0), "integer": _scalar(2, dtype)}.get(case, _scalar(3.0))
    if case == "not_constant":
        divisor = g.add_input((1, 1), DType.f32, "d")
    out = g.add1("div", biased, divisor)
    g.set_outputs([out, biased] if case == "shared" else [out])  # shared: the biased sum is read twice
    ops = [n.op for n in g.nodes]
    fold_matmul_scales(g)
    assert [n.op for n in g.nodes] == ops
