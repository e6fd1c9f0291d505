"""Channel shuffles (passes/shuffle.py): concatenate -> reshape -> transpose of the last two -> reshape becomes one
interleaving concatenation (codegen/layout.py), against NumPy's shuffle: pure data movement, so exact."""

from __future__ import annotations

import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler.driver import build, lower
from cerebro.compiler.ir import Graph
from cerebro.compiler.ir.dtypes import DType

_RNG = np.random.default_rng(5)


def _shuffle_graph(shape: tuple[int, ...], groups: int, dtype: DType) -> Graph:
    """ShuffleNetV2's join: concatenate `groups` inputs of `shape` along channels, then shuffle them."""
    g = Graph("shuffle")
    parts = [g.add_input(shape, dtype, f"x{k}") for k in range(groups)]
    joined = g.add1("concatenate", *parts, axis=len(shape) - 1)
    lead, width = shape[:-1], shape[-1]
    split = g.add1("reshape", joined, shape=(*lead, groups, width))
    rank = len(shape) + 1
    swapped = g.add1("transpose", split, perm=(*range(rank - 2), rank - 1, rank - 2))
    g.set_outputs([g.add1("reshape", swapped, shape=(*lead, groups * width))])
    return g


def _numpy_shuffle(parts: list[np.ndarray]) -> np.ndarray:
    joined = np.concatenate(parts, axis=-1)
    lead, groups = joined.shape[:-1], len(parts)
    return joined.reshape(*lead, groups, -1).swapaxes(-1, -2).reshape(joined.shape)


def test_shuffle_is_one_interleaving_concatenation() -> None:
    """No transpose is left: the shuffle is a concatenation of the inputs viewed as [..., K, 1]."""
    graph = lower(_shuffle_graph((1, 7, 7, 58), 2, DType.f32))[0]
    ops = [n.op for n in graph.nodes]
    assert "transpose" not in ops and ops.count("concatenate") == 1, ops
    (join,) = [n for n in graph.nodes if n.op == "concatenate"]
    assert [v.shape for v in join.inputs] == [(1, 7, 7, 58, 1)] * 2


@pytest.mark.parametrize("shape,groups,dtype", [((1, 28, 28, 58), 2, np.float32), ((2, 3, 3, 5), 2, np.float32),
                                                 ((1, 1, 1, 3), 2, np.float32), ((1, 4, 5, 9), 3, np.int8),
                                                 ((1, 6, 6, 7), 3, np.float64)],
                         ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v))
@pytest.mark.parametrize("threads", [1, 2])
def test_shuffle_matches_numpy(shape: tuple, groups: int, dtype: type, threads: int) -> None:
    """Exact for rows fewer than a vector block (element by element), block tails (overlapping blocks),
    several element sizes, and two threads sharing the rows."""
    ir_type = {np.float32: DType.f32, np.int8: DType.i8, np.float64: DType.f64}[dtype]
    parts = [(_RNG.standard_normal(shape) * 50).astype(dtype) for _ in range(groups)]
    (got,) = runtime.load(build(_shuffle_graph(shape, groups, ir_type)), threads=threads)(*parts)
    np.testing.assert_array_equal(got, _numpy_shuffle(parts))
