"""matmul_integer with pairs_b (codegen/matmul_int.py): constant [N, K] weights stored as [K/2, N, 2], so a
register tile of rows x columns multiplies each row's (a[k], a[k+1]) pair, broadcast, with 2 weights of
every column (vpmaddwd on AVX2) and needs no horizontal sums. Bit-exact against numpy in int64 and against
the IR reference interpreter, for row and column tails, u8 and i8 activations with per-row zero points and
i8 and u8 weights, on this host and with general-purpose registers only (x86_64-gpr)."""

from __future__ import annotations

import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.ir import DType, Graph, IRError, Value
from cerebro.compiler.ir.int8_layouts import pair_layout
from cerebro.compiler.ir.interpret import run_graph

# (M, K, N): one pair, row tails of every size below the tile, a column tail of a short vector, long K
SHAPES = [(4, 2, 1), (7, 6, 10), (13, 40, 17), (64, 130, 24)]
RNG = np.random.default_rng(1719)


def _cases(b_zero: int = 0) -> tuple[Graph, list[np.ndarray], list[np.ndarray]]:
    g = Graph("matmul_integer_pairs")
    inputs, outputs, want = [], [], []
    for m, k, n in SHAPES:
        for da, db in ((DType.u8, DType.i8), (DType.i8, DType.u8)):
            low, high = _range(da)
            a = RNG.integers(low, high, (m, k), endpoint=True).astype(da.numpy)
            zero = RNG.integers(low, high, m, endpoint=True).astype(da.numpy)
            w = RNG.integers(*_range(db), (n, k), endpoint=True).astype(db.numpy)
            w[0, :2] = _range(db)[0]  # the extreme products
            values = [g.add_input(a.shape, da, f"a{len(inputs)}"), Value((n, k), db, data=pair_layout(w.T)),
                      g.add_input(zero.shape, da, f"z{len(inputs)}"),
                      Value((n,), db, data=np.full(n, b_zero, db.numpy))]
            outputs.append(g.add1("matmul_integer", *values, transpose_b=True, pairs_b=True))
            inputs += [a, zero]
            want.append(((a.astype(np.int64) - zero[:, None]) @ w.T.astype(np.int64)).astype(np.int32))
    g.set_outputs(outputs)
    return g, inputs, want


def _range(d: DType) -> tuple[int, int]:
    return (0, 255) if d is DType.u8 else (-128, 127)


@pytest.mark.parametrize("target", ["host", "x86_64-gpr"])
def test_pairs_tile_is_exact(target: str) -> None:
    graph, inputs, want = _cases()
    got = runtime.load(driver.build(graph, target))(*inputs)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    for g, w in zip(run_graph(graph, inputs), want):
        np.testing.assert_array_equal(g, w)


def test_pairs_refuse_a_weight_zero_point() -> None:
    """The tile multiplies the stored codes as they are: a nonzero weight zero point is a one-line error."""
    graph, _, _ = _cases(b_zero=3)
    with pytest.raises(IRError, match="pairs_b needs"):
        driver.build(graph)
