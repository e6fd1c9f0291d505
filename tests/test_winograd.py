"""Winograd F(2x2, 3x3) convolutions (passes/winograd.py, codegen/winograd.py, ir/winograd.py): against a
float64 numpy conv, with padding 1 and 0, odd sizes, batch 2, fused epilogues (bias + ReLU, residual
add), bit-identical on 1 and 2 threads; the op's reference interpreter; a small residual block; which
convs the selection rule takes."""

from __future__ import annotations

import numpy as np
import pytest

import cerebro.compiler.passes.winograd as winograd_pass
from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.driver import STAGE_FLOPS, optimise, split_stages
from cerebro.compiler.ir import DType, Graph, Node, Value
from cerebro.compiler.ir.interpret import run_graph
from cerebro.compiler.targets import resolve_target

EPS32 = float(np.finfo(np.float32).eps)
HOST = resolve_target("host")
# Cout of a column block: the Winograd kernel takes multiples of it (16 with AVX2, 64 with AVX-512)
BLOCK = winograd_pass.columns(HOST)
# The elementwise bound: 4x the direct conv's worst-case rounding bound. Measured on ResNet-like layers
# (He-init weights, post-ReLU inputs), max |error| / (eps * max |output|): direct 9-10, Winograd 4-5, so
# the max error must also stay within TYPICAL of those (a kernel coefficient off by 1e-4 fails it)
WORST_OVER_DIRECT = 4.0
TYPICAL = 16.0


def _conv64(x: np.ndarray, w: np.ndarray, pad: tuple) -> np.ndarray:
    (top, bottom), (left, right) = pad
    xp = np.pad(x.astype(np.float64), ((0, 0), (top, bottom), (left, right), (0, 0)))
    out_h, out_w = xp.shape[1] - 2, xp.shape[2] - 2
    return sum(np.einsum("nhwc,ck->nhwk", xp[:, i:i + out_h, j:j + out_w], w[i, j].astype(np.float64))
               for i in range(3) for j in range(3))


def _bound(x: np.ndarray, w: np.ndarray, pad: tuple) -> np.ndarray:
    return WORST_OVER_DIRECT * 2 * 9 * x.shape[-1] * EPS32 * _conv64(np.abs(x), np.abs(w), pad) + 1e-30


def _layer(x: np.ndarray, w: np.ndarray, pad: tuple, tail: str, extra: np.ndarray) -> Graph:
    graph = Graph("layer")
    xv = graph.add_input(x.shape, DType.f32, "x")
    y = graph.add1("conv", xv, graph.const(w), strides=(1, 1), padding=pad)
    if tail == "bias_relu":
        y = graph.add1("max", graph.add1("add", y, graph.const(extra)), graph.const(np.zeros((1, 1, 1, 1), np.float32)))
    elif tail == "residual":
        y = graph.add1("add", y, graph.add_input(extra.shape, DType.f32, "skip"))
    graph.set_outputs([y])
    return graph


def _ops(make: callable) -> list[str]:
    return [node.op for node in optimise(make(), HOST).nodes]


CASES = [  # (x shape, Cout, padding, tail): 2, 3 and 2 column blocks (32, 48, 32 channels with AVX2)
    ((1, 12, 12, 32), 2 * BLOCK, ((1, 1), (1, 1)), ""),
    ((2, 9, 11, 32), 3 * BLOCK, ((0, 0), (0, 0)), "bias_relu"),
    ((1, 13, 15, 64), 2 * BLOCK, ((1, 1), (1, 1)), "residual"),
]


@pytest.mark.parametrize("shape,cout,pad,tail", CASES)
def test_layer_within_bound_and_same_bits_on_threads(shape, cout, pad, tail):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal((3, 3, shape[-1], cout)) / np.sqrt(9 * shape[-1])).astype(np.float32)
    want = _conv64(x, w, pad)
    extra = np.zeros(0, np.float32)
    if tail == "bias_relu":
        extra = rng.standard_normal((1, 1, 1, cout)).astype(np.float32)
        want = np.maximum(want + extra, 0)
    elif tail == "residual":
        extra = rng.standard_normal(want.shape).astype(np.float32)
        want = want + extra

    def make() -> Graph:
        return _layer(x, w, pad, tail, extra)

    assert "winograd_conv" in _ops(make) and "conv" not in _ops(make)
    data = build(make())
    args = (x, extra) if tail == "residual" else (x,)
    (one,) = runtime.load(data, threads=1)(*args)
    assert np.all(np.abs(one - want) <= _bound(x, w, pad)), np.abs(one - want).max()
    assert np.abs(one - want).max() <= TYPICAL * EPS32 * np.abs(want).max()
    (two,) = runtime.load(data, threads=2)(*args)
    np.testing.assert_array_equal(two, one)
    (sliced,) = runtime.load(build(make(), stage_flops=100_000), threads=2)(*args)  # slices start within blocks
    np.testing.assert_array_equal(sliced, one)


def test_units_fit_the_stage_budget():
    """A unit is one column block of a block of tiles, so a big Winograd conv is sliced into stages
    within the kernel module's default FPU-section budget (units of all columns: ResNet's 14x14
    256->256, 12.6 MFLOP each, over 3x the budget)."""
    rng = np.random.default_rng(9)
    w = (rng.standard_normal((3, 3, 256, 256)) / 48).astype(np.float32)
    graph = optimise(_layer(np.zeros((1, 14, 14, 256), np.float32), w, ((1, 1), (1, 1)), "", None), HOST)
    assert [node.op for node in graph.nodes] == ["winograd_conv"] or HOST.vector_width < 8
    stages = split_stages(graph.nodes, STAGE_FLOPS, HOST)
    assert len(stages) > 1 and max(sum(piece.flops for piece in stage) for stage in stages) <= STAGE_FLOPS


def test_reference_interpreter_runs_the_transforms():
    """The op's reference (what the lowered graph means) is the Winograd algorithm on the transformed kernel."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 9, 11, 32)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 32, 3 * BLOCK)) / 17).astype(np.float32)
    bias = rng.standard_normal((1, 1, 1, 3 * BLOCK)).astype(np.float32)
    graph = optimise(_layer(x, w, ((1, 0), (0, 1)), "bias_relu", bias), HOST)
    assert [node.op for node in graph.nodes] == ["winograd_conv"]
    (got,) = run_graph(graph, [x])
    want = np.maximum(_conv64(x, w, ((1, 0), (0, 1))) + bias, 0)
    assert np.all(np.abs(got - want) <= _bound(x, w, ((1, 0), (0, 1))))


def _block(x: np.ndarray, w1: np.ndarray, w2: np.ndarray, b1: np.ndarray, b2: np.ndarray) -> Graph:
    """ResNet's basic block: relu(conv(relu(conv(x) + b1)) + b2 + x)."""
    graph = Graph("block")
    xv = graph.add_input(x.shape, DType.f32, "x")
    zero = graph.const(np.zeros((1, 1, 1, 1), np.float32))
    pad = ((1, 1), (1, 1))
    h = graph.add1("max", graph.add1("add", graph.add1("conv", xv, graph.const(w1), strides=(1, 1), padding=pad),
                                     graph.const(b1)), zero)
    y = graph.add1("add", graph.add1("conv", h, graph.const(w2), strides=(1, 1), padding=pad), graph.const(b2))
    graph.set_outputs([graph.add1("max", graph.add1("add", y, xv), zero)])
    return graph


def test_residual_block_against_float64_and_direct(monkeypatch):
    rng = np.random.default_rng(11)
    c = 2 * BLOCK
    x = rng.standard_normal((2, 16, 16, c)).astype(np.float32)
    w1, w2 = ((rng.standard_normal((3, 3, c, c)) / np.sqrt(9 * c)).astype(np.float32) for _ in range(2))
    b1, b2 = (rng.standard_normal((1, 1, 1, c)).astype(np.float32) for _ in range(2))
    pad = ((1, 1), (1, 1))
    h = np.maximum(_conv64(x, w1, pad) + b1, 0)
    want = np.maximum(_conv64(h, w2, pad) + b2 + x, 0)
    assert _ops(lambda: _block(x, w1, w2, b1, b2)).count("winograd_conv") == 2
    (got,) = runtime.load(build(_block(x, w1, w2, b1, b2)), threads=2)(x)
    monkeypatch.setattr(winograd_pass, "PAYS", winograd_pass.Threshold(1 << 30, 0, 0, 0))
    assert "winograd_conv" not in _ops(lambda: _block(x, w1, w2, b1, b2))
    (direct,) = runtime.load(build(_block(x, w1, w2, b1, b2)), threads=2)(x)
    scale = np.abs(want).max()
    error, direct_error = np.abs(got - want).max(), np.abs(direct - want).max()
    assert error <= 64 * 9 * c * EPS32 * scale and error <= WORST_OVER_DIRECT * max(direct_error, EPS32 * scale)


def _conv_node(shape: tuple, cout: int, strides: tuple = (1, 1), kernel: int = 3, **attrs: object) -> Node:
    x = Value(shape, DType.f32)
    kernel_shape = (kernel, kernel, shape[-1], cout)
    w = Value(kernel_shape, DType.f32, data=np.zeros(kernel_shape, np.float32))
    out = Value((shape[0], shape[1] - (kernel - 1) + 2 if strides == (1, 1) else shape[1] // 2, shape[2], cout),
                DType.f32)
    return Node("conv", [x, w], [out], {"strides": strides, "padding": ((1, 1), (1, 1)), **attrs})


@pytest.mark.parametrize("node,taken", [
    (_conv_node((1, 56, 56, 64), 64), True),  # ResNet layer1
    (_conv_node((1, 14, 14, 256), 256), True),  # ResNet layer3: a 4 MiB transformed kernel
    (_conv_node((1, 7, 7, 512), 512), False),  # 16 MiB: streamed from memory by every unit
    (_conv_node((1, 56, 56, 64), 64, strides=(2, 2)), False),
    (_conv_node((1, 56, 56, 64), 64, rhs_dilation=(2, 2)), False),
    (_conv_node((1, 56, 56, 64), 64, groups=2), False),
    (_conv_node((1, 56, 56, 16), 64), False),  # too few input channels for the transforms to pay
    (_conv_node((1, 4, 4, 64), 64), False),  # 4 tiles
    (_conv_node((1, 56, 56, 64), 64, kernel=5), False),
])
def test_selection(node: Node, taken: bool):
    assert winograd_pass.pays(node, HOST) is taken or HOST.vector_width < 8
