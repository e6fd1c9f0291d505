"""passes/layout.py: NCHW models (ONNX, built here with onnx.helper) run channels-last between their convs.

Each model is compiled twice in one process, with the layout pass and without it (the pipeline before
it existed); the transposes left must sit at the graph's edges (or be the one a channel shuffle needs),
the optimised graph must have fewer nodes (profile stages), and the outputs must be bit-identical to
the pipeline without the pass and close to ONNX Runtime (rtol 1e-4, atol 1e-5: a different
summation order from ORT's). A float sum over spatial dims (global average pool) adds in the stored
layout's memory order (as the channels-last JAX path does), so there the two pipelines agree within
rtol 1e-5 instead of bit for bit.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx_models import NchwNet

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.ir import DType, Graph, format_graph
from cerebro.compiler.passes import eliminate_dead_nodes, fold_constants
from cerebro.compiler.passes.layout import choose_layouts
from cerebro.compiler.targets import resolve_target
from cerebro.frontends.onnx import import_onnx

RNG = np.random.default_rng(7)
C = 8  # channels of the test convs


def conv_relu_pool_conv_add() -> bytes:
    n = NchwNet(RNG)
    a = n.op("Relu", [n.conv("x", 3, C)])
    p = n.op("MaxPool", [a], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    b = n.op("Relu", [n.conv(p, C, C)])
    return n.model(n.op("Relu", [n.op("Add", [n.conv(b, C, C), p])]))


def concat_of_two_convs() -> bytes:
    n = NchwNet(RNG)
    x = n.op("Relu", [n.conv("x", 3, C)])
    cat = n.op("Concat", [n.op("Relu", [n.conv(x, C, C, k=1)]), n.op("Relu", [n.conv(x, C, C)])], axis=1)
    pooled = n.op("AveragePool", [cat], kernel_shape=[2, 2], strides=[2, 2])
    return n.model(n.conv(n.op("Pad", [pooled, n.const(np.array([0, 0, 1, 0, 0, 0, 0, 1], np.int64))]), 2 * C, C))


def squeeze_excitation() -> bytes:
    n = NchwNet(RNG)
    x = n.op("Relu", [n.conv("x", 3, C)])
    squeezed = n.op("GlobalAveragePool", [x])
    scale = n.op("HardSigmoid", [n.conv(n.op("Relu", [n.conv(squeezed, C, 4, k=1)]), 4, C, k=1)])
    return n.model(n.conv(n.op("Mul", [x, scale]), C, C))


def flatten_gemm_head() -> bytes:
    n = NchwNet(RNG)
    x = n.op("Relu", [n.conv(n.op("Relu", [n.conv("x", 3, C, strides=[2, 2])]), C, C)])
    flat = n.op("Flatten", [n.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])])
    w = n.const((RNG.standard_normal((C * 4, 5)) * 0.1).astype(np.float32))
    return n.model(n.op("Gemm", [flat, w, n.const(RNG.standard_normal(5).astype(np.float32))]))


def channel_shuffle() -> bytes:
    n = NchwNet(RNG)
    x = n.op("Relu", [n.conv("x", 3, C)])
    split = n.op("Reshape", [x, n.const(np.array([1, 2, C // 2, 10, 10], np.int64))])
    shuffled = n.op("Transpose", [split], perm=[0, 2, 1, 3, 4])
    merged = n.op("Reshape", [shuffled, n.const(np.array([1, C, 10, 10], np.int64))])
    half = n.op("Slice", [merged, *(n.const(np.array([v], np.int64)) for v in (C // 2, C, 1))])
    return n.model(n.conv(n.op("Relu", [half]), C // 2, C, group=2))


def _optimised(graph: Graph, layouts: bool, monkeypatch: pytest.MonkeyPatch) -> Graph:
    """The graph driver.optimise makes, with or without the layout pass."""
    with monkeypatch.context() as patch:
        if not layouts:
            patch.setattr(driver, "choose_layouts", lambda g: g)
        return driver.optimise(eliminate_dead_nodes(fold_constants(driver._private_copy(graph))),
                               resolve_target("host"))


def _edge_transposes(graph: Graph) -> tuple[int, list]:
    """(transposes reading a graph input or making a graph output, the other transposes)."""
    inputs, outputs = {v.id for v in graph.inputs}, {v.id for v in graph.outputs}
    edge, inner = 0, []
    for node in graph.nodes:
        if node.op != "transpose":
            continue
        if node.inputs[0].id in inputs or node.outputs[0].id in outputs:
            edge += 1
        else:
            inner.append(node)
    return edge, inner


def _compiled(graph: Graph, layouts: bool, monkeypatch: pytest.MonkeyPatch) -> runtime.LoadedModel:
    with monkeypatch.context() as patch:
        if not layouts:
            patch.setattr(driver, "choose_layouts", lambda g: g)
        return runtime.load(driver.build(graph))


CASES = {  # name -> (model, bit-identical to the pipeline without the pass)
    "conv_relu_pool_conv_add": (conv_relu_pool_conv_add, True),
    "concat_of_two_convs": (concat_of_two_convs, True),
    "squeeze_excitation": (squeeze_excitation, False),  # its global average pool sums channels-last
    "flatten_gemm_head": (flatten_gemm_head, True),
    "channel_shuffle": (channel_shuffle, True),
}


@pytest.mark.parametrize("name", CASES)
def test_nchw_model_runs_channels_last(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    make, exact = CASES[name]
    model = make()
    graph = import_onnx(model)
    before, after = _optimised(graph, False, monkeypatch), _optimised(graph, True, monkeypatch)
    count = sum(n.op == "transpose" for n in before.nodes)
    edge, inner = _edge_transposes(after)
    assert count >= 4 and edge <= 2, format_graph(after)
    if name == "channel_shuffle":  # the shuffle itself: the channel halves swapped, channels-last
        assert [tuple(n.attrs["perm"]) for n in inner] == [(0, 1, 2, 4, 3)], format_graph(after)
    elif name == "flatten_gemm_head":  # Flatten reads NCHW order: one transpose before it
        assert [n.outputs[0].shape for n in inner] == [(1, C, 2, 2)], format_graph(after)
    else:
        assert not inner, format_graph(after)
    assert len(after.nodes) < len(before.nodes) - count // 2
    x = runtime.aligned_empty((1, 3, 10, 10), np.float32)
    x[...] = RNG.standard_normal(x.shape)
    (old,), (new,) = _compiled(graph, False, monkeypatch)(x), _compiled(graph, True, monkeypatch)(x)
    if exact:
        np.testing.assert_array_equal(new.view(np.uint32), old.view(np.uint32))
    else:
        np.testing.assert_allclose(new, old, rtol=1e-5, atol=1e-6)
    (ref,) = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(new, ref, rtol=1e-4, atol=1e-5)


def test_region_keeps_its_transpose_when_propagating_would_add_one() -> None:
    """A permuted value read by a flatten and by exp -> flatten: propagating exp would transpose twice,
    so the region keeps the one transpose it has."""
    graph = Graph("g")
    x = graph.add_input((1, 4, 6, 8), DType.f32, "x")
    t = graph.add1("transpose", x, perm=(0, 2, 3, 1))
    flat = graph.add1("reshape", t, shape=(1, 192))
    exp_flat = graph.add1("reshape", graph.add1("exp", t), shape=(1, 192))
    graph.set_outputs([flat, exp_flat])
    result = choose_layouts(graph)
    assert sum(n.op == "transpose" for n in result.nodes) == 1, format_graph(result)
