"""A conv's pixel blocks end in blocks of one row fewer rather than a short tail (codegen/conv.py
_pixel_grid): a tail of 1-4 rows has too few accumulators to cover the multiply-add latency, so ResNet's
7x7 layers (49 = 4 x 6 + 5 x 5, not 8 x 6 + 1) ran their last block at the speed of a full one."""

from __future__ import annotations

import numpy as np
import pytest
from test_cnn_kernels import _lax_conv
from test_codegen_kernels import EPS32, _random, one_node

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.codegen.conv import _axes, _pixel_grid, _pixel_plan
from cerebro.compiler.ir import DType, Graph


@pytest.mark.parametrize("side,counts,short", [(7, [4, 5], 5), (56, [521, 2], 5), (4, [1, 2], 5), (6, [6, 0], 0)])
def test_pixel_blocks_even_out(side: int, counts: list[int], short: int):
    x, w = np.zeros((1, side, side, 32), np.float32), np.zeros((3, 3, 32, 8), np.float32)
    node = one_node("conv", [x, w], strides=(1, 1), padding=((1, 1), (1, 1)))
    plan = _pixel_plan(node, 6)
    assert plan.flat and _pixel_grid(None, plan, _axes(node), 1) == ([1], counts) and plan.short == short


def _same_conv_on_threads(x: np.ndarray, w: np.ndarray) -> None:
    """A padded 3x3 conv of x by w: within float64's bound of the direct conv, the same bits on 1-3 threads."""
    graph = Graph("tiles")
    y = graph.add1("conv", graph.add_input(x.shape, DType.f32, "x"), graph.const(w), strides=(1, 1),
                   padding=((1, 1), (1, 1)))
    graph.set_outputs([y])
    data = build(graph)
    (one,) = runtime.load(data, threads=1)(x)
    want = _lax_conv(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 1)
    bound = 2 * 9 * x.shape[-1] * EPS32 * _lax_conv(np.abs(x), np.abs(w), (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 1)
    assert np.all(np.abs(one - want) <= bound + 1e-30)
    for threads in (2, 3):
        (got,) = runtime.load(data, threads=threads)(x)
        np.testing.assert_array_equal(got, one, err_msg=f"threads={threads}")


def test_evened_blocks_same_bits_on_threads():
    rng = np.random.default_rng(7)
    _same_conv_on_threads(_random(rng, (2, 7, 7, 40)), _random(rng, (3, 3, 40, 24)))


@pytest.mark.parametrize("side", [7, 5])
def test_taller_tile_of_a_weights_outer_conv(side: int):
    """A 3x3 conv whose weights outweigh its image and whose outputs are few (ResNet's 7 x 7 stage) takes
    targets.conv_tile's taller tile where the host has one (12 x 2 zmm on an Intel AVX-512 core), its kernel
    packed for it: within float64's bound of the direct conv, the same bits on 1-3 threads."""
    from cerebro.compiler.targets import conv_tile, matmul_tile, resolve_target

    host = resolve_target("host")
    rng = np.random.default_rng(side)
    x, w = _random(rng, (1, side, side, 96)), _random(rng, (3, 3, 96, 160))
    node = one_node("conv", [x, w], strides=(1, 1), padding=((1, 1), (1, 1)))
    assert conv_tile(host, node) == matmul_tile(host, side * side)
    _same_conv_on_threads(x, w)


def test_more_rows_where_the_outputs_fill_half_the_vectors():
    """A 3x3 conv whose output channels fill at most half the tile's vectors (DenseNet's 128 -> 32) runs as
    many more rows as fill the accumulators, up to MAX_TILE_ROWS (conv.dense_rows): within float64's bound,
    the same bits on 1-3 threads."""
    from cerebro.compiler.codegen import conv
    from cerebro.compiler.codegen.matmul import MAX_TILE_ROWS
    from cerebro.compiler.targets import lanes, micro_tile, resolve_target

    host = resolve_target("host")
    rng = np.random.default_rng(28)
    x, w = _random(rng, (1, 28, 28, 40)), _random(rng, (3, 3, 40, 32))
    node = one_node("conv", [x, w], strides=(1, 1), padding=((1, 1), (1, 1)))
    rows, vectors = micro_tile(host)
    used = -(-32 // lanes(host, DType.f32))
    assert conv.dense_rows(node, host) == (min(MAX_TILE_ROWS, rows * vectors // used) if 2 * used <= vectors else rows)
    _same_conv_on_threads(x, w)
