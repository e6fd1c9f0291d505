"""A conv tile's f32 epilogue of adds, multiplies and max/min (bias, ReLU, ReLU6, hardswish) is emitted as
vector code per row (codegen/epilogue.py apply_rows_vector), not as a loop for LLVM's vectoriser: the same
ops per element, so the same bits as the loop, special values included, and both within rounding of a
float64 reference. Channel counts with tails (a tile row of 16 + 8 + 3 channels) and depthwise tiles of
7 rows take it too."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.codegen import conv, epilogue
from cerebro.compiler.driver import lower
from cerebro.compiler.ir import DType, Graph

EPS32 = float(np.finfo(np.float32).eps)
SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, -3.0, 3.0, 6.0, -2.9999998, 3e38, -3e38]


def _scalar(graph: Graph, value: float):
    return graph.const(np.full((1, 1, 1, 1), value, np.float32))


def _act(graph: Graph, y, act: str):
    """The activations as PyTorch's ONNX export writes them (hardswish: x * min(max(x + 3, 0), 6) / 6)."""
    if act == "relu":
        return graph.add1("max", y, _scalar(graph, 0.0))
    if act == "relu6":
        return graph.add1("min", graph.add1("max", y, _scalar(graph, 0.0)), _scalar(graph, 6.0))
    gate = graph.add1("min", graph.add1("max", graph.add1("add", y, _scalar(graph, 3.0)), _scalar(graph, 0.0)),
                      _scalar(graph, 6.0))
    return graph.add1("mul", y, graph.add1("mul", gate, _scalar(graph, 1 / 6)))


def _want(y: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return np.where(np.isnan(y), y, np.maximum(y, 0))
    if act == "relu6":
        return np.where(np.isnan(y), y, np.clip(y, 0, 6))
    with np.errstate(all="ignore"):
        return y * np.where(np.isnan(y), y, np.clip(y + 3, 0, 6)) * (1 / 6)


def _conv64(x: np.ndarray, w: np.ndarray, groups: int, padding: int) -> np.ndarray:
    """float64 stride-1 conv, NHWC x and [KH, KW, Cin/groups, Cout] w: depthwise (groups = channels) or dense 1x1."""
    with np.errstate(invalid="ignore"):
        if groups == 1:
            return x.astype(np.float64) @ w[0, 0].astype(np.float64)
        padded = np.pad(x.astype(np.float64), ((0, 0), (padding,) * 2, (padding,) * 2, (0, 0)))
        rows, cols = x.shape[1] + 2 * padding - w.shape[0] + 1, x.shape[2] + 2 * padding - w.shape[1] + 1
        return sum(padded[:, i:i + rows, j:j + cols] * w[i, j, 0].astype(np.float64)
                   for i in range(w.shape[0]) for j in range(w.shape[1]))


def _graph(x: np.ndarray, w: np.ndarray, bias: np.ndarray, groups: int, padding: int, act: str) -> Graph:
    graph = Graph("vector_epilogue")
    y = graph.add1("conv", graph.add_input(x.shape, DType.f32, "x"), graph.const(w), strides=(1, 1),
                   padding=((padding, padding),) * 2, groups=groups)
    graph.set_outputs([_act(graph, graph.add1("add", y, graph.const(bias.reshape(1, 1, 1, -1))), act)])
    return graph


@pytest.mark.parametrize("act", ["relu", "relu6", "hardswish"])
@pytest.mark.parametrize("groups,channels,padding", [(1, 27, 0), (27, 27, 1)])
def test_vector_epilogue_same_bits_as_the_loop(monkeypatch: pytest.MonkeyPatch, act: str, groups: int,
                                                channels: int, padding: int):
    """A dense 1x1 conv (rows of 16 + 8 + 3 channels) and a depthwise 3x3 one (7-row tiles, channel tail 11),
    the special values reaching the epilogue (identity weights, zero bias on their channel; inf * 0 = nan
    where other taps or channels meet them, in the float64 reference too)."""
    rng = np.random.default_rng(channels + groups)
    x = (rng.standard_normal((2, 5, 7, channels)) * 4).astype(np.float32)
    x[..., 0].flat[:len(SPECIALS)] = SPECIALS
    if groups == 1:
        w = np.eye(channels, dtype=np.float32).reshape(1, 1, channels, channels)
    else:
        w = np.zeros((3, 3, 1, channels), np.float32)
        w[1, 1] = 1  # the centre tap: each output is its input, but where a neighbour is inf or nan
    bias = rng.standard_normal(channels).astype(np.float32)
    bias[0] = 0
    graph = _graph(x, w, bias, groups, padding, act)
    text = lower(graph)[1]
    (vector,) = runtime.load(build(graph))(x)
    monkeypatch.setattr(epilogue, "VECTOR_OPS", frozenset())
    assert lower(graph)[1] != text  # the loop instead
    (loop,) = runtime.load(build(graph))(x)
    np.testing.assert_array_equal(vector.view(np.uint32), loop.view(np.uint32))
    y = _conv64(x, w, groups, padding) + bias
    want = _want(y, act)
    finite = np.isfinite(want)
    np.testing.assert_array_equal(np.isnan(vector), np.isnan(want))
    np.testing.assert_array_equal(vector[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    # f32 roundings of the bias add and, for hardswish, of x + 3, the two products and 1/6: a few ulp of |y|(|y| + 3)
    bound = 4 * EPS32 * (np.abs(y) + 3) * (np.abs(y) + 1)
    assert np.all(np.abs(vector[finite] - want[finite]) <= bound[finite])


@pytest.mark.parametrize("act", ["relu", "hardswish"])
def test_vector_epilogue_against_float64(act: str):
    """A real depthwise 3x3 conv (random weights, 11 channels: a tile of 8 and a tail of 3) and a 1x1 conv
    after it, both with their epilogues, against float64."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 9, 13, 11)).astype(np.float32)
    dw, b1 = rng.standard_normal((3, 3, 1, 11)).astype(np.float32), rng.standard_normal(11).astype(np.float32)
    pw, b2 = rng.standard_normal((1, 1, 11, 19)).astype(np.float32), rng.standard_normal(19).astype(np.float32)
    graph = Graph("dw_pw")
    y = graph.add1("conv", graph.add_input(x.shape, DType.f32, "x"), graph.const(dw), strides=(1, 1),
                   padding=((1, 1), (1, 1)), groups=11)
    y = _act(graph, graph.add1("add", y, graph.const(b1.reshape(1, 1, 1, -1))), act)
    y = graph.add1("conv", y, graph.const(pw), strides=(1, 1), padding=((0, 0), (0, 0)))
    graph.set_outputs([_act(graph, graph.add1("add", y, graph.const(b2.reshape(1, 1, 1, -1))), act)])
    (got,) = runtime.load(build(graph))(x)
    hidden = _want(_conv64(x, dw, 11, 1) + b1, act)
    want = _want(hidden @ pw[0, 0].astype(np.float64) + b2, act)
    scale = np.abs(hidden) @ np.abs(pw[0, 0]) + np.abs(b2) + 1
    assert np.all(np.abs(got - want) <= 64 * EPS32 * scale)  # 9- and 11-term f32 sums and the activations' roundings


def _loads_of_output(text: str, function: str, inputs: int) -> int:
    """Loads in `function`'s unoptimised IR whose address is an element of its output (argument inputs + 1)."""
    body = text[text.index(f'@"{function}"('):]
    body = body[:body.index("\n}\n")]
    output = re.findall(r'ptr noalias (%"\.\d+")', body.splitlines()[0])[inputs]
    elements = set(re.findall(r'(%"\.\d+") = getelementptr [^,]+, ptr ' + re.escape(output) + ",", body))
    return sum(re.search(r"load [^,]+, ptr (%\"\.\d+\")", line).group(1) in elements
               for line in body.splitlines() if " = load " in line)


def test_vector_epilogue_runs_on_the_accumulators(monkeypatch: pytest.MonkeyPatch):
    """A dense conv tile's vector chain (bias and ReLU; longer ones are outlined) takes its accumulators and
    stores once: its node function loads nothing back from its output, where storing the product first
    loaded every row again; the same bits."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 5, 7, 27)).astype(np.float32)
    w = rng.standard_normal((1, 1, 27, 27)).astype(np.float32)
    graph = _graph(x, w, rng.standard_normal(27).astype(np.float32), 1, 0, "relu")
    conv_node = next(node for node in lower(graph)[0].nodes if node.op == "conv")
    (on,) = runtime.load(build(graph))(x)
    assert _loads_of_output(lower(graph)[1], "node0_conv", len(conv_node.inputs)) == 0
    monkeypatch.setattr(conv, "_on_accumulators", lambda modes: False)
    assert _loads_of_output(lower(graph)[1], "node0_conv", len(conv_node.inputs)) > 0  # stored, then loaded
    (stored,) = runtime.load(build(graph))(x)
    np.testing.assert_array_equal(on.view(np.uint32), stored.view(np.uint32))
