"""CNN kernels tuned on torchvision models (issue 14): depthwise and padded convolutions against jax.lax.

Depthwise tiles run along the last spatial dim and load each input column of a tile's span once for
every (output, kernel column) pair that reads it (codegen/conv.py), so the cases cover what changes
which columns a tile reads: stride and dilation along that dim, padding wider than the kernel (columns
wholly outside), input dilation, tile rows evened out over the dim (9 = 5 + 4, 14 = 7 + 7), kernels
of 3 (two channel vectors) and 5 (one), channel counts off the vector width, 1-D and 3-D.

A padded pixel of a grouped or dense convolution is read from a constant row of zeros (one pointer
select per row and kernel position, not one value select per element), so a padded position still
multiplies its weight by zero: an infinite weight there gives NaN, as in the reference.

Tolerance, as in test_codegen_kernels: f32 sums of n products in two orders each err by at most
about n*eps*sum|a*b|, so outputs agree within 2*n*eps*sum|a*b| elementwise.
"""

from __future__ import annotations

import numpy as np
import pytest
from jax import lax
from test_codegen_kernels import _DIMENSION_NUMBERS, EPS32, HOST, _module, _random, one_node, run

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.codegen import conv
from cerebro.compiler.codegen.conv import depthwise_tile
from cerebro.compiler.ir import Graph
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.targets import micro_tile

DEPTHWISE_CASES = [
    # spatial, kernel, channels, strides, padding, lhs_dilation, rhs_dilation
    ((9, 9), (3, 3), 20, (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1)),  # rows 5 + 4; channels 16 + 4
    ((14, 14), (5, 5), 24, (1, 1), ((2, 2), (2, 2)), (1, 1), (1, 1)),  # rows 7 + 7; one vector
    ((11, 12), (5, 5), 9, (2, 2), ((2, 2), (2, 2)), (1, 1), (1, 1)),
    ((6, 13), (3, 3), 8, (1, 2), ((1, 1), (4, 3)), (1, 1), (1, 3)),  # dilated columns, some wholly padding
    ((5, 7), (3, 3), 8, (1, 1), ((2, 2), (2, 2)), (2, 2), (1, 1)),  # input dilation (transposed conv)
    ((7, 6), (3, 3), 16, (2, 1), ((0, 0), (0, 0)), (1, 1), (1, 1)),  # no padding
    ((30,), (7,), 12, (1,), ((3, 3),), (1,), (1,)),  # 1-D
    ((4, 5, 9), (3, 3, 3), 8, (1, 1, 2), ((1, 1), (1, 1), (1, 1)), (1, 1, 1), (1, 1, 1)),  # 3-D
]


def _lax_conv(a, b, strides, padding, lhs, rhs, groups):
    return np.asarray(lax.conv_general_dilated(a, b, strides, padding, lhs, rhs, _DIMENSION_NUMBERS[a.ndim - 2],
                                               feature_group_count=groups, precision=lax.Precision.HIGHEST))


@pytest.mark.parametrize("spatial,kernel,channels,strides,padding,lhs,rhs", DEPTHWISE_CASES)
def test_depthwise(spatial, kernel, channels, strides, padding, lhs, rhs):
    rng = np.random.default_rng(channels * 7 + len(spatial))
    x = _random(rng, (2, *spatial, channels))
    w = _random(rng, (*kernel, 1, channels))
    attrs = dict(strides=strides, padding=padding, lhs_dilation=lhs, rhs_dilation=rhs, groups=channels)
    (out,) = run(one_node("conv", [x, w], **attrs), [x, w])
    want = _lax_conv(x, w, strides, padding, lhs, rhs, channels)
    bound = 2 * int(np.prod(kernel)) * EPS32 * _lax_conv(np.abs(x), np.abs(w), strides, padding, lhs, rhs, channels)
    assert out.shape == want.shape
    assert np.all(np.abs(out - want) <= bound + 1e-30)


def test_depthwise_padding_multiplies_infinite_weights():
    """A padded position is a zero times the weight, as in the reference: an infinite weight gives NaN there."""
    x = np.ones((1, 4, 9, 8), np.float32)
    w = np.ones((3, 3, 1, 8), np.float32)
    w[0, 0, 0, 3] = np.inf
    attrs = dict(strides=(1, 1), padding=((1, 1), (1, 1)), groups=8)
    (out,) = run(one_node("conv", [x, w], **attrs), [x, w])
    want = _lax_conv(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 8)
    assert np.isnan(want[0, 0, :, 3]).all() and np.isnan(out[0, 0, :, 3]).all()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want))


def test_depthwise_tile_rows_even_out():
    """Rows per tile: up to 8 along the output's last dim (2-vector 3x3 tiles 4, AVX-512's 1-vector 3x3 tiles 14:
    tests/test_depthwise_tiles.py), spread evenly (no 1-row tail)."""
    def rows(width: int, kernel: int) -> tuple[int, int]:
        graph = Graph("dw")
        x = graph.add_input((1, width, width, 32), DType.f32, "x")
        w = graph.add_input((kernel, kernel, 1, 32), DType.f32, "w")
        pad = kernel // 2
        node = graph.add1("conv", x, w, strides=(1, 1), padding=((pad, pad), (pad, pad)), groups=32).producer
        return depthwise_tile(HOST, node)

    for n in (7, 14, 28, 56, 9, 112):
        tile_rows = rows(n, 3)[0]
        assert tile_rows <= 14 and n % tile_rows in (0, tile_rows - 1), n
    assert [rows(n, 5)[0] for n in (7, 14, 28, 56, 9, 112)] == [7, 7, 7, 8, 5, 8]
    assert rows(7, 5)[1] == 1 and rows(56, 3)[1] == min(2, micro_tile(HOST)[1])


@pytest.mark.filterwarnings("ignore:threads=3 is more than")  # on a 2-CPU machine: still exact
def test_depthwise_with_epilogue_same_bits_on_threads():
    """Through build: bias + ReLU fused on the depthwise tile, and threads=1/2/3 give the same bits."""
    rng = np.random.default_rng(3)
    x = _random(rng, (2, 15, 15, 24))
    w, b = _random(rng, (3, 3, 1, 24)), _random(rng, (1, 1, 1, 24))
    graph = Graph("dw")
    xv = graph.add_input(x.shape, DType.f32, "x")
    y = graph.add1("conv", xv, graph.const(w), strides=(2, 2), padding=((1, 1), (1, 1)), groups=24)
    y = graph.add1("max", graph.add1("add", y, graph.const(b)), graph.const(np.zeros((1, 1, 1, 1), np.float32)))
    graph.set_outputs([y])
    data = build(graph)
    want = np.maximum(_lax_conv(x, w, (2, 2), ((1, 1), (1, 1)), (1, 1), (1, 1), 24) + b, 0)
    (ones,) = runtime.load(data)(x)
    magnitude = _lax_conv(np.abs(x), np.abs(w), (2, 2), ((1, 1), (1, 1)), (1, 1), (1, 1), 24) + np.abs(b)
    assert np.all(np.abs(ones - want) <= 2 * 10 * EPS32 * magnitude)
    for threads in (2, 3):
        (got,) = runtime.load(data, threads=threads)(x)
        np.testing.assert_array_equal(got, ones, err_msg=f"threads={threads}")


def test_streamed_depthwise_prefetches_rows_ahead_same_bits(monkeypatch: pytest.MonkeyPatch):
    """A depthwise input of STREAMED_INPUT_BYTES or more (batch 8 MobileNet: 26 MB) prefetches each column
    it loads PREFETCH_OUTPUT_ROWS output rows down, past the buffer's end on the last rows (a prefetch
    never faults); a smaller input does not. The values, and so the bits, are the same either way."""
    rng = np.random.default_rng(5)
    x, w = _random(rng, (3, 11, 10, 24)), _random(rng, (3, 3, 1, 24))
    node = one_node("conv", [x, w], strides=(2, 2), padding=((1, 1), (1, 1)), groups=24)
    assert "llvm.prefetch" not in str(_module(node, HOST))
    (cached,) = run(node, [x, w])
    monkeypatch.setattr(conv, "STREAMED_INPUT_BYTES", x.nbytes)
    assert "llvm.prefetch" in str(_module(node, HOST))
    (streamed,) = run(node, [x, w])
    np.testing.assert_array_equal(streamed, cached)


@pytest.mark.parametrize("groups,cin,cout", [(1, 16, 24), (1, 3, 8), (4, 32, 8)])
def test_padded_conv_reads_a_zero_row(groups, cin, cout):
    rng = np.random.default_rng(cin + cout)
    x = _random(rng, (2, 7, 10, cin))
    w = _random(rng, (3, 3, cin // groups, cout))
    w[0, 2, 0, 1] = np.inf  # meets padding at the top row and the right column
    strides, padding = (1, 2), ((1, 1), (2, 1))
    attrs = dict(strides=strides, padding=padding, groups=groups)
    (out,) = run(one_node("conv", [x, w], **attrs), [x, w])
    want = _lax_conv(x, w, strides, padding, (1, 1), (1, 1), groups)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
    assert np.isnan(want).any()
    finite = np.isfinite(want)
    w[0, 2, 0, 1] = 0
    bound = 2 * 9 * (cin // groups) * EPS32 * _lax_conv(np.abs(x), np.abs(w), strides, padding, (1, 1), (1, 1), groups)
    assert np.all(np.abs(out[finite] - want[finite]) <= bound[finite] + 1e-30)


def test_explicit_padding_same_bits_as_padding_in_the_tile(monkeypatch: pytest.MonkeyPatch):
    """passes/explicit_pad.py: a stem-like conv (Cin 3, 7x7/2, padding 3) and a dense 3x3 one (Cin 32) read a
    padded copy and have no padding of their own; a wide (Cin 128), a grouped and a depthwise conv keep theirs. The
    outputs are bit-identical to the tile's own padding (the pass turned off) and close to lax. (The 3x3 one
    would be a Winograd conv, which folds the padded copy back: passes/winograd.py is turned off here.)"""
    from cerebro.compiler import driver
    from cerebro.compiler.passes import explicit_pad, winograd

    monkeypatch.setattr(winograd, "PAYS", winograd.Threshold(1 << 30, 0, 0, 0))

    rng = np.random.default_rng(11)
    x = _random(rng, (2, 23, 20, 3))
    stem, dense = _random(rng, (7, 7, 3, 32)), _random(rng, (3, 3, 32, 128))
    wide, grouped, depthwise = _random(rng, (3, 3, 128, 16)), _random(rng, (3, 3, 4, 8)), _random(rng, (3, 3, 1, 8))
    graph = Graph("pads")
    y = graph.add1("conv", graph.add_input(x.shape, DType.f32, "x"), graph.const(stem), strides=(2, 2),
                   padding=((3, 3), (3, 3)))
    y = graph.add1("conv", y, graph.const(dense), strides=(1, 1), padding=((1, 1), (1, 1)))
    y = graph.add1("conv", y, graph.const(wide), strides=(1, 1), padding=((1, 1), (1, 1)))
    y = graph.add1("conv", y, graph.const(grouped), strides=(1, 1), padding=((1, 1), (1, 1)), groups=4)
    y = graph.add1("conv", y, graph.const(depthwise), strides=(1, 1), padding=((1, 1), (1, 1)), groups=8)
    graph.set_outputs([y])
    nodes = driver.lower(graph)[0].nodes
    convs = [node for node in nodes if node.op == "conv"]
    assert [n.op for n in nodes if n.op in ("pad", "conv")] == ["pad", "conv", "pad", "conv", "conv", "conv", "conv"]
    assert [any(lo or hi for lo, hi in c.attrs["padding"]) for c in convs] == [False, False, True, True, True]
    (got,) = runtime.load(build(graph))(x)
    monkeypatch.setattr(explicit_pad, "MAX_CHANNELS", 0)
    assert "pad" not in [n.op for n in driver.lower(graph)[0].nodes]
    (alone,) = runtime.load(build(graph))(x)
    np.testing.assert_array_equal(got, alone)
    want = x
    for w, strides, pad, groups in ((stem, (2, 2), 3, 1), (dense, (1, 1), 1, 1), (wide, (1, 1), 1, 1),
                                    (grouped, (1, 1), 1, 4), (depthwise, (1, 1), 1, 8)):
        want = _lax_conv(want, w, strides, ((pad, pad), (pad, pad)), (1, 1), (1, 1), groups)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
