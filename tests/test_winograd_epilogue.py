"""A Winograd conv's fused epilogue (codegen/winograd.py _outputs): a chain epilogue.vectorises (bias +
ReLU, a residual add) is written as vector code, no loop for LLVM's loop vectoriser (whose alias checks
and remainders made a third of the kernel's IR and its LLVM time); any other chain (tanh) stays a loop.
Both against a float64 conv."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.driver import lower, optimise
from cerebro.compiler.ir import DType, Graph
from cerebro.compiler.passes.winograd import columns
from cerebro.compiler.targets import resolve_target

HOST = resolve_target("host")
PAD = ((1, 1), (1, 1))


def _conv64(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    xp = np.pad(x.astype(np.float64), ((0, 0), *PAD, (0, 0)))
    h, w_ = x.shape[1], x.shape[2]
    return sum(np.einsum("nhwc,ck->nhwk", xp[:, i:i + h, j:j + w_], w[i, j].astype(np.float64))
               for i in range(3) for j in range(3))


def _layer(x: np.ndarray, w: np.ndarray, bias: np.ndarray, tail: str) -> Graph:
    graph = Graph(f"winograd_{tail}")
    xv = graph.add_input(x.shape, DType.f32, "x")
    y = graph.add1("add", graph.add1("conv", xv, graph.const(w), strides=(1, 1), padding=PAD), graph.const(bias))
    if tail == "relu":
        y = graph.add1("max", y, graph.const(np.zeros((1, 1, 1, 1), np.float32)))
    else:
        y = graph.add1(tail, y)
    graph.set_outputs([y])
    return graph


def _kernel_text(graph: Graph) -> str:
    text = lower(graph)[1]
    return re.search(r'^define [^\n]*@"node\d+_winograd_conv"\(.*?^}', text, re.M | re.S).group(0)


@pytest.mark.parametrize("tail,numpy_tail,loop", [("relu", lambda v: np.maximum(v, 0), False),
                                                 ("tanh", np.tanh, True)])
def test_epilogue_as_vector_code_where_it_vectorises(tail, numpy_tail, loop) -> None:
    if HOST.vector_width < 8:
        pytest.skip("Winograd convs are laid out for 8-lane targets only")
    rng = np.random.default_rng(21)
    cout = 2 * columns(HOST)  # two column blocks: 32 channels with AVX2, 128 with AVX-512
    x = rng.standard_normal((1, 12, 12, 32)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 32, cout)) / 17).astype(np.float32)
    bias = rng.standard_normal((1, 1, 1, cout)).astype(np.float32)
    graph = _layer(x, w, bias, tail)
    assert [node.op for node in optimise(_layer(x, w, bias, tail), HOST).nodes] == ["winograd_conv"]
    assert ('"ep.body' in _kernel_text(graph)) == loop
    (got,) = runtime.load(build(graph))(x)
    np.testing.assert_allclose(got, numpy_tail(_conv64(x, w) + bias), rtol=2e-5, atol=2e-5)


def test_outputs_one_register_of_columns_at_a_time() -> None:
    """Where every tile is whole (12x12 outputs, 2x2 tiles), the output transform and its epilogue run on one
    vector of a column block at a time, in a loop (v), not written out per vector with the epilogue on the
    whole block (<columns x float>, which LLVM splits into registers): a sixth of the kernel's LLVM time
    (cnn's Winograd conv 0.109 -> 0.093 CPU s)."""
    if HOST.vector_width < 8:
        pytest.skip("Winograd convs are laid out for 8-lane targets only")
    rng = np.random.default_rng(22)
    cout = 2 * columns(HOST)
    x = rng.standard_normal((1, 12, 12, 32)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 32, cout)) / 17).astype(np.float32)
    bias = rng.standard_normal((1, 1, 1, cout)).astype(np.float32)
    graph = _layer(x, w, bias, "relu")
    text = _kernel_text(graph)
    widths = {int(n) for n in re.findall(r"<(\d+) x float>", text)}
    assert widths == {HOST.vector_width}, widths
    assert '"v.body"' in text
    (got,) = runtime.load(build(graph))(x)
    np.testing.assert_allclose(got, np.maximum(_conv64(x, w) + bias, 0), rtol=2e-5, atol=2e-5)
