"""A conv tile's long epilogue chain (hardswish, SiLU: codegen/epilogue.py outlines) runs in a function of
its own, one per distinct chain and width in the module (rows_function), instead of a copy in every tile
phase; the same ops per element, so the same bits as the chain inline. Short chains (bias, ReLU) stay
inline."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.codegen import epilogue
from cerebro.compiler.driver import lower
from cerebro.compiler.ir import DType, Graph

# tile phases: 49 pixels in blocks of 6 and 5 rows (dense) or 7 (depthwise); 40 channels = a block and a tail
_X = (2, 7, 7, 40)
_DEFINE = re.compile(r'^define [^@]*@"(epilogue\.[^"]+)"', re.M)


def _scalar(graph: Graph, value: float):
    return graph.const(np.full((1, 1, 1, 1), value, np.float32))


def _activation(graph: Graph, y, act: str):
    if act == "hardswish":  # as ONNX HardSwish imports: y * min(max(y / 6 + 0.5, 0), 1)
        gate = graph.add1("add", graph.add1("mul", y, _scalar(graph, 1 / 6)), _scalar(graph, 0.5))
        gate = graph.add1("min", graph.add1("max", gate, _scalar(graph, 0.0)), _scalar(graph, 1.0))
        return graph.add1("mul", y, gate)
    if act == "silu":
        return graph.add1("mul", y, graph.add1("logistic", y))
    return graph.add1("max", y, _scalar(graph, 0.0))


def _convs(rng: np.random.Generator, act: str, kinds: tuple[str, ...]) -> tuple[Graph, list[np.ndarray]]:
    """Convs in sequence, each with bias and `act`: 1x1 dense (40 -> 40), 3x3 depthwise padded, 3x3 dense."""
    graph = Graph("outlined")
    y = graph.add_input(_X, DType.f32, "x")
    weights = []
    for kind in kinds:
        shape, groups, pad = {"pointwise": ((1, 1, 40, 40), 1, 0), "depthwise": ((3, 3, 1, 40), 40, 1),
                              "dense": ((3, 3, 40, 40), 1, 1)}[kind]
        w = (rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))).astype(np.float32)
        bias = rng.standard_normal(40).astype(np.float32)
        weights.append((w, bias, groups, pad))
        y = graph.add1("conv", y, graph.const(w), strides=(1, 1), padding=((pad, pad), (pad, pad)), groups=groups)
        y = _activation(graph, graph.add1("add", y, graph.const(bias.reshape(1, 1, 1, -1))), act)
    graph.set_outputs([y])
    return graph, weights


def _reference(x: np.ndarray, weights: list, act: str) -> np.ndarray:
    """float64 NumPy: each conv as a sum over kernel positions of shifted, padded inputs."""
    y = x.astype(np.float64)
    for w, bias, groups, pad in weights:
        padded = np.pad(y, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        out = np.zeros(y.shape[:3] + (w.shape[-1],))
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                window = padded[:, i:i + y.shape[1], j:j + y.shape[2], :]
                out += window * w[i, j, 0] if groups > 1 else window @ w[i, j].astype(np.float64)
        y = out + bias
        if act == "hardswish":
            y = y * np.clip(y / 6 + 0.5, 0, 1)
        elif act == "silu":
            y = y / (1 + np.exp(-y))
        else:
            y = np.maximum(y, 0)
    return y


@pytest.mark.parametrize("act", ["hardswish", "silu"])
@pytest.mark.parametrize("kind", ["pointwise", "depthwise", "dense"])
def test_long_chain_outlined_same_bits(monkeypatch: pytest.MonkeyPatch, act: str, kind: str) -> None:
    rng = np.random.default_rng(len(act) + len(kind))
    graph, weights = _convs(rng, act, (kind,))
    x = rng.standard_normal(_X).astype(np.float32) * 3
    text = lower(graph)[1]
    names = _DEFINE.findall(text)
    assert names and len(set(names)) == len(names)  # one per width, each defined once
    conv_body = re.search(r'define [^@]*@"node\d+_conv".*?\n}', text, re.S).group(0)
    assert "logistic" not in conv_body and "fcmp" not in conv_body and "call void @\"epilogue." in conv_body
    (outlined,) = runtime.load(build(graph))(x)
    monkeypatch.setattr(epilogue, "outlines", lambda node: False)
    assert not _DEFINE.findall(lower(graph)[1])
    (inline,) = runtime.load(build(graph))(x)
    np.testing.assert_array_equal(outlined.view(np.uint32), inline.view(np.uint32))
    np.testing.assert_allclose(outlined, _reference(x, weights, act), rtol=2e-5, atol=2e-5)


def test_equal_chains_share_one_function_per_width() -> None:
    """Two pointwise convs and a dense 3x3 with hardswish: one rows function per tile width (the chain's
    literals the same), not one per node function."""
    rng = np.random.default_rng(7)
    graph, weights = _convs(rng, "hardswish", ("pointwise", "dense", "pointwise"))
    text = lower(graph)[1]
    functions = re.findall(r'define [^@]*@"node\d+_conv"', text)
    names = _DEFINE.findall(text)
    widths = {int(name.split(".")[1]) for name in names}
    assert len(functions) >= 2 and len(names) == len(widths)
    x = rng.standard_normal(_X).astype(np.float32)
    (got,) = runtime.load(build(graph))(x)
    np.testing.assert_allclose(got, _reference(x, weights, "hardswish"), rtol=2e-5, atol=2e-5)


def test_short_chains_stay_inline() -> None:
    graph, _ = _convs(np.random.default_rng(1), "relu", ("pointwise", "depthwise"))
    assert not _DEFINE.findall(lower(graph)[1])


def test_chain_key_never_merges_by_an_elided_repr() -> None:
    """An attr that is not a plain value (an array, whose repr elides) keys its node alone."""
    graph, _ = _convs(np.random.default_rng(2), "hardswish", ("pointwise", "pointwise"))
    first, second = [n for n in graph.nodes if n.op == "max"][:2]
    big = [np.zeros(5000), np.ones(5000)]
    keys = [epilogue._attr_key(value, node) for value, node in zip(big, (first, second))]
    assert keys[0] != keys[1] and epilogue._attr_key((1, 2.5, "x", DType.f32), first) == (1, 2.5, "x", "f32")
