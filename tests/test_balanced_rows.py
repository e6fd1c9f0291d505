"""Row tiles even out where the last one would be short (codegen/matmul.balanced_rows): a tail of under a
third of a tile has too few accumulators to cover the multiply-add latency, so 49 rows of a 12-row tile run
as 4 x 10 + 9, in matmuls and in convs (ResNet's 7 x 7 stage), with results matching numpy's float64."""

from __future__ import annotations

import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.codegen import conv, matmul
from cerebro.compiler.ir import DType, Graph

_RNG = np.random.default_rng(21)


@pytest.mark.parametrize(("length", "rows", "balanced"), [
    (49, 12, 10),  # 4 x 12 + 1 -> 4 x 10 + 9
    (25, 12, 9),  # 2 x 12 + 1 -> 2 x 9 + 7
    (51, 12, 11),  # 4 x 12 + 3 -> 4 x 11 + 7
    (52, 12, 12),  # a tail of 4: a third of the tile, kept
    (48, 12, 12),
    (1, 12, 1),
    (13, 6, 5),  # 2 x 6 + 1 -> 2 x 5 + 3
    (49, 6, 6),  # 9 tiles of 6 at least: conv's 4 x 6 + 5 x 5 evens them out
])
def test_balanced_rows(length: int, rows: int, balanced: int) -> None:
    assert matmul.balanced_rows(length, rows) == balanced


def _conv_graph(w: np.ndarray) -> Graph:
    g = Graph("c")
    x = g.add_input((1, 7, 7, w.shape[2]), DType.f32, "x")
    y = g.add1("conv", x, g.const(w), strides=(1, 1), padding=((1, 1), (1, 1)), lhs_dilation=(1, 1),
               rhs_dilation=(1, 1), groups=1)
    g.set_outputs([y])
    return g


def test_a_seven_by_seven_conv_walks_even_pixel_blocks() -> None:
    """49 output pixels in 12-row tiles: 4 blocks of 10 and one of 9, not a 1-pixel tail."""
    w = _RNG.standard_normal((3, 3, 32, 64)).astype(np.float32)
    (node,) = [n for n in _conv_graph(w).nodes if n.op == "conv"]
    plan = conv._pixel_plan(node, 12)
    assert (plan.rows, plan.short, plan.fewer) == (10, 9, True)
    assert conv._pixel_grid(None, plan, conv._axes(node), 1)[1] == [4, 1]


def _reference_conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    padded = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((1, 7, 7, w.shape[3]))
    for i in range(3):
        for j in range(3):
            out += np.einsum("nhwc,co->nhwo", padded[:, i:i + 7, j:j + 7], w[i, j].astype(np.float64))
    return out


@pytest.mark.parametrize("threads", [1, 2])
def test_balanced_tiles_compute_the_product(threads: int) -> None:
    """A 49-row matmul and a 7 x 7 3x3 conv whose kernel outweighs its image (the conv's 12-row tile where
    the host has one), against float64 numpy: sums of 2048 / 1152 products, rtol 1e-4, atol 1e-4."""
    a = _RNG.standard_normal((49, 2048)).astype(np.float32)
    b = (_RNG.standard_normal((2048, 96)) / 45).astype(np.float32)
    g = Graph("m")
    x = g.add_input(a.shape, DType.f32, "x")
    g.set_outputs([g.add1("matmul", x, g.const(b))])
    (got,) = runtime.load(driver.build(g), threads=threads)(a)
    np.testing.assert_allclose(np.asarray(got), a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-4)

    image = _RNG.standard_normal((1, 7, 7, 128)).astype(np.float32)
    w = (_RNG.standard_normal((3, 3, 128, 96)) / 34).astype(np.float32)
    (got,) = runtime.load(driver.build(_conv_graph(w)), threads=threads)(image)
    np.testing.assert_allclose(np.asarray(got), _reference_conv(image, w), rtol=1e-4, atol=1e-4)
