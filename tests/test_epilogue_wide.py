"""A conv tile's f32 epilogue of adds, multiplies and logistic (SiLU) runs on vectors of two rows
(codegen/epilogue.py apply_rows_wide): each op is one instruction per register, adjacent, so the rows'
long exp/division chains overlap. The same ops per element as the loop per row, so the same bits,
special values included; chains with other ops keep the loop."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.special

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.codegen import epilogue
from cerebro.compiler.driver import lower
from cerebro.compiler.ir import DType, Graph

SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-20, -1e-20, 1e-40, -88.0, -100.0, -104.0, 17.0, 90.0, 3e38]


def _silu_conv(x: np.ndarray, w: np.ndarray, bias: np.ndarray, groups: int, act: str = "logistic") -> Graph:
    graph = Graph("silu")
    y = graph.add1("conv", graph.add_input(x.shape, DType.f32, "x"), graph.const(w), strides=(1, 1),
                   padding=((0, 0), (0, 0)), groups=groups)
    y = graph.add1("add", y, graph.const(bias.reshape(1, 1, 1, -1)))
    graph.set_outputs([graph.add1("mul", y, graph.add1(act, y))])
    return graph


@pytest.mark.parametrize("groups", [1, 24])
def test_silu_epilogue_same_bits_as_the_row_loop(monkeypatch: pytest.MonkeyPatch, groups: int):
    """A dense 1x1 conv (tiles of 6 rows) and a depthwise one (5 rows: groups of 2, 2 and 1) whose inputs
    reach the epilogue as they are (weights 1, zero bias on the special values' channel; the infinities
    and nan only through the depthwise one)."""
    rng = np.random.default_rng(groups)
    channels = 24
    x = rng.standard_normal((2, 5, 5, channels)).astype(np.float32) * 4
    specials = [v for v in SPECIALS if groups > 1 or np.isfinite(v)]  # a dense conv spreads inf * 0 = nan
    x[..., 0].flat[:len(specials)] = specials
    w = (np.eye(channels, dtype=np.float32) if groups == 1 else np.ones((channels,), np.float32))
    w = w.reshape(1, 1, channels // groups, channels)
    bias = rng.standard_normal(channels).astype(np.float32)
    bias[0] = 0
    graph = _silu_conv(x, w, bias, groups)
    joined = re.compile(r"<(32|48) x float>")  # two rows of 16 (AVX2: a 16-channel block) or 24 (AVX-512)
    assert joined.search(lower(graph)[1])
    (wide,) = runtime.load(build(graph))(x)
    monkeypatch.setattr(epilogue, "WIDE_OPS", frozenset())
    monkeypatch.setattr(epilogue, "VECTOR_OPS", frozenset())  # and the one-row vectors: the loop per row
    assert not joined.search(lower(graph)[1])
    (rows,) = runtime.load(build(graph))(x)
    np.testing.assert_array_equal(wide.view(np.uint32), rows.view(np.uint32))
    y = x.astype(np.float64) + bias
    with np.errstate(all="ignore"):
        want = y * scipy.special.expit(y)
    np.testing.assert_allclose(wide, want.astype(np.float32), rtol=1e-5, atol=1e-30)


def test_other_ops_keep_the_row_loop():
    x = np.ones((1, 4, 6, 16), np.float32)
    graph = _silu_conv(x, np.ones((1, 1, 16, 16), np.float32), np.zeros(16, np.float32), 1, act="tanh")
    assert "<32 x float>" not in lower(graph)[1]
