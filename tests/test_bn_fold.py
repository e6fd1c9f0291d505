"""Batch norm folded into the conv before it (compiler/passes/conv_scale.py): the same outputs as JAX's
unfolded batch norm within float rounding, one bias add left per conv, and chains it must not fold kept."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import cerebro
from cerebro.compiler.ir import DType, Graph
from cerebro.compiler.ir.interpret import run_graph
from cerebro.compiler.passes import fold_constants
from cerebro.compiler.passes.conv_scale import fold_conv_scales
from cerebro.frontends.jax.tracer import capture, lower

RNG = np.random.default_rng(7)


def _conv_bn_model():
    import flax.linen as nn

    class ConvBN(nn.Module):
        @nn.compact
        def __call__(self, x):
            y = nn.relu(nn.BatchNorm(use_running_average=True)(nn.Conv(16, (3, 3), padding="SAME")(x)))
            y = nn.BatchNorm(use_running_average=True)(nn.Conv(32, (1, 1), use_bias=False)(y))
            return nn.relu(y + nn.BatchNorm(use_running_average=True)(nn.Conv(32, (3, 3), padding="SAME",
                                                                              use_bias=False)(x)))

    module = ConvBN()
    x = RNG.standard_normal((2, 12, 12, 8), dtype=np.float32)
    shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)  # traced, not run: no XLA compiles
    params = jax.tree_util.tree_map(lambda p: RNG.standard_normal(p.shape).astype(np.float32) * 0.5,
                                    shapes["params"])
    # trained-looking statistics: each channel its own mean and variance
    stats = {bn: {"mean": RNG.standard_normal(v["mean"].shape).astype(np.float32),
                  "var": RNG.uniform(0.2, 3.0, v["var"].shape).astype(np.float32)}
             for bn, v in shapes["batch_stats"].items()}
    variables = {"params": params, "batch_stats": stats}

    def fn(x):
        return module.apply(variables, x)

    return fn, x


def test_flax_conv_batch_norm_matches_jax_with_one_bias_add_per_conv() -> None:
    fn, x = _conv_bn_model()
    graph = fold_constants(lower(capture(fn, x)).graph)
    users = graph.users()
    readers = [users[node.outputs[0].id] for node in graph.nodes if node.op == "conv"]
    assert len(readers) == 3 and all(len(r) == 1 and r[0].op == "add" for r in readers)
    # batch norm's sub, mul and add (and the conv's bias) are one add; the residual sum's two biases one
    biased = [r[0] for r in readers if r[0].inputs[1].is_const]
    assert len(biased) == 2 and all(add.inputs[1].shape[:-1] == (1, 1, 1) for add in biased)
    assert [r[0] for r in readers if r[0] not in biased][0].inputs[0] is biased[1].outputs[0]
    expected = np.asarray(jax.jit(fn)(x), np.float64)
    got = cerebro.compile(fn, cache=False)(x)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-6 * scale)


def _conv_graph(dtype: DType = DType.f32) -> tuple[Graph, object]:
    g = Graph("g")
    x = g.add_input((1, 5, 5, 3), dtype, "x")
    w = g.const(RNG.standard_normal((3, 3, 3, 4)), dtype)
    y = g.add1("conv", x, w, strides=(1, 1), padding=((1, 1), (1, 1)))
    return g, y


def _per_channel(dtype: DType = DType.f32, shape: tuple = (1, 1, 1, 4)) -> object:
    return Graph.const(None, RNG.uniform(0.5, 2.0, shape), dtype)


def test_scale_then_offset_folds_to_the_same_values() -> None:
    g, y = _conv_graph()
    out = g.add1("add", g.add1("mul", _per_channel(), g.add1("sub", y, _per_channel())), _per_channel())
    g.set_outputs([out])
    x = RNG.standard_normal((1, 5, 5, 3)).astype(np.float32)
    (before,) = run_graph(g, [x])
    fold_conv_scales(g)
    assert [n.op for n in g.nodes] == ["conv", "add"]
    (after,) = run_graph(g, [x])
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


def test_a_scale_alone_leaves_no_add() -> None:
    g, y = _conv_graph()
    g.set_outputs([g.add1("mul", y, _per_channel())])
    x = RNG.standard_normal((1, 5, 5, 3)).astype(np.float32)
    (before,) = run_graph(g, [x])
    fold_conv_scales(g)
    assert [n.op for n in g.nodes] == ["conv"] and g.nodes[0].outputs[0] is g.outputs[0]
    np.testing.assert_allclose(run_graph(g, [x])[0], before, rtol=1e-6, atol=1e-6)


def test_two_biased_convs_summed_take_one_bias() -> None:
    g, y = _conv_graph()
    x2 = g.nodes[0].inputs[0]
    z = g.add1("conv", x2, g.const(RNG.standard_normal((1, 1, 3, 4)), DType.f32), strides=(1, 1),
               padding=((0, 0), (0, 0)))
    g.set_outputs([g.add1("add", g.add1("add", y, _per_channel()), g.add1("add", _per_channel(), z))])
    x = RNG.standard_normal((1, 5, 5, 3)).astype(np.float32)
    (before,) = run_graph(g, [x])
    fold_conv_scales(g)
    assert [n.op for n in g.nodes] == ["conv", "conv", "add", "add"] and g.nodes[-1].inputs[1] is z
    np.testing.assert_allclose(run_graph(g, [x])[0], before, rtol=1e-6, atol=1e-6)


def _second_reader(g: Graph, y: object) -> None:
    g.set_outputs([g.add1("mul", y, _per_channel()), y])


def _constant_minus_conv(g: Graph, y: object) -> None:
    g.set_outputs([g.add1("mul", g.add1("sub", _per_channel(), y), _per_channel())])


def _per_pixel(g: Graph, y: object) -> None:
    g.set_outputs([g.add1("mul", y, _per_channel(shape=(1, 5, 5, 4)))])


def _infinite_scale(g: Graph, y: object) -> None:
    g.set_outputs([g.add1("mul", y, Graph.const(None, np.full((1, 1, 1, 4), np.inf), DType.f32))])


@pytest.mark.parametrize("tail", [_second_reader, _constant_minus_conv, _per_pixel, _infinite_scale])
def test_chains_it_must_not_fold_are_kept(tail) -> None:
    g, y = _conv_graph()
    tail(g, y)
    ops, w = [n.op for n in g.nodes], g.nodes[0].inputs[1]
    fold_conv_scales(g)
    assert [n.op for n in g.nodes] == ops and g.nodes[0].inputs[1] is w and g.nodes[0].outputs[0] is y


def test_integer_conv_is_not_scaled() -> None:
    g, y = _conv_graph(DType.i32)
    g.set_outputs([g.add1("mul", y, _per_channel(DType.i32))])
    fold_conv_scales(g)
    assert [n.op for n in g.nodes] == ["conv", "mul"]
