"""Depthwise tile shapes (codegen/conv.depthwise_tile) against a float64 numpy convolution.

A 3x3 tile is 2 column vectors x up to 4 rows where the rows even out over the output's last dim and the
channels fill more than one vector, else 1 vector x up to 8 rows (14 on AVX-512); 5x5 and wider kernels
1 vector x up to 8. Each case below picks one of
those shapes (and the register tiles of the other targets' widths, run on this host), with channel counts
off the vector width, stride 2, padding wider on one side and tails; the whole tile (epilogue included)
must match the float64 reference within the f32 bound of test_codegen_kernels.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_codegen_kernels import _FLAVOURS, EPS32, HOST, TILE_FLAVOURS, _module, _random, one_node, run

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.codegen.conv import depthwise_tile, masked_loads
from cerebro.compiler.ir import Graph
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.targets import TARGETS

CASES = [
    # (height, width), kernel, channels, strides, padding ((top, bottom), (left, right))
    ((6, 16), 3, 19, (1, 1), ((1, 1), (1, 1))),  # 4 + 4 + 4 + 4 rows x 2 vectors; 16 + 3 channels
    ((7, 14), 3, 13, (1, 1), ((1, 1), (1, 1))),  # 14 = 7 + 7 rows x 1 vector
    ((9, 17), 3, 24, (2, 2), ((1, 1), (1, 1))),  # stride 2: 9 = 3 + 3 + 3 outputs
    ((5, 11), 3, 8, (1, 2), ((0, 2), (2, 1))),  # uneven padding: 6 = 3 + 3 outputs, columns wholly outside
    ((8, 13), 5, 21, (1, 1), ((2, 2), (2, 2))),  # 5x5: 13 = 7 + 6 rows x 1 vector
    ((12, 23), 5, 10, (2, 2), ((2, 2), (2, 2))),  # 5x5 stride 2: 12 = 6 + 6 outputs
    ((3, 27), 3, 16, (1, 1), ((1, 1), (1, 1))),  # one vector's channels: 27 = 14 + 13 rows on AVX-512, 7s on AVX2
]


def _reference(x: np.ndarray, w: np.ndarray, strides: tuple[int, int], padding: tuple) -> np.ndarray:
    """NHWC depthwise convolution in float64: x [N, H, W, C], w [KH, KW, 1, C]."""
    xp = np.pad(x.astype(np.float64), ((0, 0), *padding, (0, 0)))
    kh, kw = w.shape[:2]
    oh = (xp.shape[1] - kh) // strides[0] + 1
    ow = (xp.shape[2] - kw) // strides[1] + 1
    out = np.zeros((x.shape[0], oh, ow, x.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            window = xp[:, i:i + strides[0] * (oh - 1) + 1:strides[0], j:j + strides[1] * (ow - 1) + 1:strides[1]]
            out += window * w[i, j, 0].astype(np.float64)
    return out


def _node(x: np.ndarray, w: np.ndarray, strides: tuple, padding: tuple):
    return one_node("conv", [x, w], strides=strides, padding=padding, groups=x.shape[-1])


@pytest.mark.parametrize("flavour", TILE_FLAVOURS)
@pytest.mark.parametrize("spatial,kernel,channels,strides,padding", CASES)
def test_depthwise_tile_against_float64(spatial, kernel, channels, strides, padding, flavour):
    rng = np.random.default_rng(channels * 31 + kernel)
    x = _random(rng, (2, *spatial, channels))
    w = _random(rng, (kernel, kernel, 1, channels))
    (out,) = run(_node(x, w, strides, padding), [x, w], flavour)
    want = _reference(x, w, strides, padding)
    bound = 2 * kernel * kernel * EPS32 * _reference(np.abs(x), np.abs(w), strides, padding)
    assert out.shape == want.shape
    assert np.all(np.abs(out - want) <= bound)


# Per vector width (the flavours run() shapes tiles for): the tile shapes CASES run on it.
CASE_TILES = {
    "avx2": {(4, 2), (3, 2), (7, 1), (6, 1)},
    "avx512": {(4, 2), (3, 2), (14, 1), (7, 1), (6, 1)},
}


@pytest.mark.parametrize("flavour", CASE_TILES)
def test_cases_cover_each_tile_shape(flavour):
    """The cases above run 2-vector tiles of 4 and 3 rows and 1-vector tiles of 7 and 6 on AVX2; on AVX-512
    (6x4 zmm matmul tiles) the same 2-vector tiles and 1-vector ones of 14 (with a 13-row tail), 7 and 6.
    Tile shapes only: checked for either width on any host; test_depthwise_tile_against_float64 runs the
    flavours this host can."""
    width, machine = _FLAVOURS[flavour]
    target = dataclasses.replace(HOST, vector_width=width, machine=machine)
    rng = np.random.default_rng(0)
    shapes = set()
    for spatial, kernel, channels, strides, padding in CASES:
        x, w = _random(rng, (1, *spatial, channels)), _random(rng, (kernel, kernel, 1, channels))
        shapes.add(depthwise_tile(target, _node(x, w, strides, padding)))
    assert shapes == CASE_TILES[flavour]


# Per target: the register file (vector registers) and depthwise_tile on MobileNet-like layers (32 channels):
# 3x3 at widths 56, 28, 112, 14, 7, 3x3 stride 2 at 112 and 28, 5x5 at widths 56, 28, 14, 7.
REGISTER_TILES = {
    "x86_64-v3": (16, [(4, 2), (4, 2), (4, 2), (7, 1), (7, 1)], [(4, 2), (7, 1)], [(8, 1), (7, 1), (7, 1), (7, 1)]),
    "x86_64-v4": (32, [(4, 2), (4, 2), (4, 2), (14, 1), (7, 1)], [(4, 2), (7, 1)], [(8, 1), (7, 1), (7, 1), (7, 1)]),
}


@pytest.mark.parametrize("name", REGISTER_TILES)
def test_depthwise_tile_keeps_accumulators_and_weights_in_registers(name):
    """3x3: 2 vectors x 4 rows (8 accumulators, 6 weights) where 4-row tiles even out, on AVX2 (16 ymm) and
    AVX-512 (32 zmm: 8 x 2 tiles spilled a kernel row's loaded columns); 14 outputs give 7 + 7 rows of one
    vector on AVX2 instead of a 2-row tail, 14 rows on AVX-512 (stride 2: 7 + 7, a 14-row tile's 30 columns
    spilled). 5x5 keeps one vector and up to 8 rows on
    both. Every tile's accumulators and one kernel row's weights leave 2 registers free (the loaded input
    column and one temporary). Explicit targets: no AVX2 or AVX-512 CPU needed to choose their tiles."""
    registers, three, three_stride2, five = REGISTER_TILES[name]
    target = TARGETS[name]
    rng = np.random.default_rng(1)

    def tile(width: int, kernel: int, stride: int = 1) -> tuple[int, int]:
        x, w = _random(rng, (1, width, width, 32)), _random(rng, (kernel, kernel, 1, 32))
        return depthwise_tile(target, _node(x, w, (stride, stride), ((kernel // 2,) * 2,) * 2))

    got = ([tile(n, 3) for n in (56, 28, 112, 14, 7)], [tile(112, 3, 2), tile(28, 3, 2)],
           [tile(n, 5) for n in (56, 28, 14, 7)])
    assert got == (three, three_stride2, five)
    for kernel, tiles in ((3, three + three_stride2), (5, five)):
        for rows, vectors in tiles:
            assert rows * vectors + kernel * vectors <= registers - 2, (kernel, rows, vectors)


@pytest.mark.parametrize("act", ["hardswish", "silu"])
def test_depthwise_tile_epilogues_through_build(act):
    """bias + hardswish (one row at a time) and bias + SiLU (two rows a vector) on 4 x 2 and 7 x 1 tiles,
    threads 1 and 2 the same bits, within f32 error of float64 (the activation's own error added)."""
    rng = np.random.default_rng(2)
    x = _random(rng, (2, 14, 28, 20))
    w, b = _random(rng, (3, 3, 1, 20)), _random(rng, (1, 1, 1, 20))
    graph = Graph("dw")
    y = graph.add1("conv", graph.add_input(x.shape, DType.f32, "x"), graph.const(w), strides=(1, 1),
                   padding=((1, 1), (1, 1)), groups=20)
    y = graph.add1("add", y, graph.const(b))
    f32 = lambda v: graph.const(np.full((1, 1, 1, 1), v, np.float32))  # noqa: E731
    if act == "silu":
        y = graph.add1("mul", y, graph.add1("logistic", y))
    else:
        t = graph.add1("min", graph.add1("max", graph.add1("add", y, f32(3)), f32(0)), f32(6))
        y = graph.add1("mul", y, graph.add1("mul", t, f32(1 / 6)))
    graph.set_outputs([y])
    data = build(graph)
    (one,) = runtime.load(data)(x)
    (two,) = runtime.load(data, threads=2)(x)
    np.testing.assert_array_equal(two, one)
    z = _reference(x, w, (1, 1), ((1, 1), (1, 1))) + b
    want = z / (1 + np.exp(-z)) if act == "silu" else z * np.clip(z + 3, 0, 6) / 6
    magnitude = _reference(np.abs(x), np.abs(w), (1, 1), ((1, 1), (1, 1))) + np.abs(b)
    assert np.all(np.abs(one - want) <= 2 * 10 * EPS32 * magnitude + 8 * EPS32 * np.abs(want) + 1e-6)


def test_padded_columns_are_masked_loads_on_avx():
    """With AVX a padded column of a 3x3 tile is one masked vector load (no select, which LLVM turned into a
    branch around the load); SSE and 5x5 tiles keep the select (a masked load on SSE is a branch per lane)."""
    rng = np.random.default_rng(3)
    x, w = _random(rng, (1, 6, 16, 16)), _random(rng, (3, 3, 1, 16))
    node = _node(x, w, (1, 1), ((1, 1), (1, 1)))
    sse = dataclasses.replace(HOST, vector_width=_FLAVOURS["sse"][0])
    assert not masked_loads(sse, node) and "llvm.masked.load" not in str(_module(node, sse))
    if HOST.vector_width < 8:
        pytest.skip("no AVX on this host")
    assert masked_loads(HOST, node) and f"llvm.masked.load.v{HOST.vector_width}f32" in str(_module(node, HOST))
    unpadded = _node(x, w, (1, 1), ((0, 0), (0, 0)))
    assert "llvm.masked.load" not in str(_module(unpadded, HOST))
    wide = _node(x, _random(rng, (5, 5, 1, 16)), (1, 1), ((2, 2), (2, 2)))
    assert "llvm.masked.load" not in str(_module(wide, HOST))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64])
def test_masked_loads_of_other_types(dtype):
    """i32, i64 and f64 depthwise tiles (vpmaskmovd/q, vmaskmovpd) against an exact or float64 reference."""
    rng = np.random.default_rng(4)
    x = _random(rng, (2, 7, 9, 11), dtype)
    w = _random(rng, (3, 3, 1, 11), dtype)
    (out,) = run(_node(x, w, (1, 2), ((1, 1), (2, 1))), [x, w])
    want = _reference(x, w, (1, 2), ((1, 1), (2, 1)))
    if np.issubdtype(dtype, np.integer):
        np.testing.assert_array_equal(out, want.astype(dtype))
    else:
        np.testing.assert_allclose(out, want, rtol=1e-13, atol=1e-12)
