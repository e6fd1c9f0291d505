"""Winograd convolutions take their sizes as run-time arguments (codegen/winograd.py size_arguments): convs
that differ only in image size, channel count, tile block and column groups (a ResNet's stages) share one
node function per chain, with the bits of one function per conv (sizes as constants) and within float64's
direct conv by the bound tests/test_winograd.py states."""

from __future__ import annotations

import re

import numpy as np
import pytest

import cerebro.compiler.passes.winograd as winograd_pass
from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.codegen import SIZES
from cerebro.compiler.driver import optimise
from cerebro.compiler.ir import DType, Graph
from cerebro.compiler.targets import resolve_target

HOST = resolve_target("host")
BLOCK = winograd_pass.columns(HOST)  # Cout of a column block: 16 with AVX2, 64 with AVX-512
EPS32 = float(np.finfo(np.float32).eps)
PAD = ((1, 1), (1, 1))
# (image size, channels): two stages, the second with a smaller image and twice the channels (a ResNet's),
# both transformed kernels under matmul.STREAMED_B_BYTES (one that streams is a kernel of its own)
STAGES = [(20, BLOCK), (14, 2 * BLOCK)]
NODE_FUNCTION = re.compile(r'^define [^\n]*@"?(node\d+_winograd_conv)"?\(', re.M)


def _conv64(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w_ = x.shape[1:3]
    return sum(np.einsum("nhwc,ck->nhwk", xp[:, i:i + h, j:j + w_], w[i, j].astype(np.float64))
               for i in range(3) for j in range(3))


def _weights(rng: np.random.Generator, c: int) -> np.ndarray:
    return (rng.standard_normal((3, 3, c, c)) / np.sqrt(9 * c)).astype(np.float32)


def _model(weights: list[tuple[np.ndarray, np.ndarray]]) -> Graph:
    """Per stage a ResNet block: relu(conv(x)) then relu(conv(.) + x), so one ReLU and one residual chain each."""
    graph = Graph("stages")
    zero = graph.const(np.zeros((1, 1, 1, 1), np.float32))
    outputs = []
    for (size, c), (w1, w2) in zip(STAGES, weights):
        x = graph.add_input((1, size, size, c), DType.f32, f"x{size}")
        h = graph.add1("max", graph.add1("conv", x, graph.const(w1), strides=(1, 1), padding=PAD), zero)
        y = graph.add1("add", graph.add1("conv", h, graph.const(w2), strides=(1, 1), padding=PAD), x)
        outputs.append(graph.add1("max", y, zero))
    graph.set_outputs(outputs)
    return graph


def _winograd_functions(graph: Graph) -> list[str]:
    _, text, _, _ = driver.lower(graph)
    return NODE_FUNCTION.findall(text)


def test_stages_share_one_function_per_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(12)
    weights = [(_weights(rng, c), _weights(rng, c)) for _, c in STAGES]
    xs = [np.abs(rng.standard_normal((1, size, size, c))).astype(np.float32) for size, c in STAGES]
    graph = optimise(_model(weights), HOST)
    blocks = {node.attrs["block"] for node in graph.nodes if node.op == "winograd_conv"}
    assert [node.op for node in graph.nodes].count("winograd_conv") == 4 and len(blocks) == 2, blocks
    assert len(_winograd_functions(_model(weights))) == 2  # ReLU and residual, whatever the stage
    shared = runtime.load(driver.build(_model(weights)), threads=1)(*xs)
    monkeypatch.delitem(SIZES, "winograd_conv")
    assert len(_winograd_functions(_model(weights))) == 4
    constants = runtime.load(driver.build(_model(weights)), threads=1)(*xs)
    for got, alone in zip(shared, constants):
        np.testing.assert_array_equal(got, alone)
    for got, x, (w1, w2) in zip(shared, xs, weights):
        want = np.maximum(_conv64(np.maximum(_conv64(x, w1), 0), w2) + x, 0)
        # tests/test_winograd.py's measured bound: within 16 eps of the largest output (direct convs 9-10)
        assert np.abs(got - want).max() <= 16 * EPS32 * np.abs(want).max()
