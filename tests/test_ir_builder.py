"""compiler/ir/builder.py: the one way both frontends add IR (node, inferred outputs, folding, location)."""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import DType, Graph
from cerebro.compiler.ir.builder import FOLD_GROWTH_LIMIT, Builder


def test_a_node_gets_its_location_and_inferred_output():
    graph = Graph()
    b = Builder(graph, "model.py:3 (in f)")
    x = graph.add_input((2, 3), DType.f32, "x")
    y = b.elementwise("add", x, b.const(np.float32(1)))
    (node,) = [n for n in graph.nodes if n.op == "add"]
    assert node.loc == "model.py:3 (in f)" and (y.shape, y.dtype) == ((2, 3), DType.f32)
    assert node.inputs[1].shape == (1, 1)  # the scalar was brought to x's rank


def test_constant_inputs_fold_by_the_reference_implementation():
    b = Builder(Graph())
    quotient = b.add("div", b.const(np.array([7, -7, 5], np.int32)), b.const(np.array([2, 2, 0], np.int32)))
    assert quotient.is_const and not b.graph.nodes
    assert quotient.data.tolist() == [3, -3, -1]  # XLA's meaning (truncation; x / 0 = -1), not numpy's
    assert b.transpose(b.const(np.arange(6).reshape(2, 3)), (1, 0)).data.tolist() == [[0, 3], [1, 4], [2, 5]]


def test_a_fold_that_would_grow_the_weights_stays_a_node():
    b = Builder(Graph())
    big = b.broadcast(b.const(np.float32(0)), (FOLD_GROWTH_LIMIT + 1,))
    assert not big.is_const and [n.op for n in b.graph.nodes] == ["broadcast_in_dim"]  # the reshape folded


def test_no_ops_add_nothing():
    graph = Graph()
    b = Builder(graph)
    x = graph.add_input((2, 3), DType.i32, "x")
    assert b.reshape(x, (2, 3)) is x and b.transpose(x, (0, 1)) is x and b.convert(x, DType.i32) is x
    assert b.broadcast(x, (2, 3)) is x and not graph.nodes


def test_both_frontends_build_with_it():
    from cerebro.frontends.jax.context import Context
    from cerebro.frontends.onnx.table import Ctx

    assert issubclass(Context, Builder) and issubclass(Ctx, Builder)
    ctx = Ctx(Graph(), "Relu", "r0", {}, 17)
    x = ctx.graph.add_input((4,), DType.f32, "x")
    ctx.add("max", x, ctx.broadcast(ctx.const(np.float32(0)), (4,)))
    assert ctx.graph.nodes[-1].loc == "node 'r0' (Relu)"
