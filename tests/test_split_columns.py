"""A matmul cut into column slices becomes one matmul per slice (compiler/passes/split_columns.py): GPT-2's
fused q/k/v projection then writes q, k and v where they are read, with no slice copies. Outputs against
NumPy in float64 (rtol 1e-5, atol 1e-5: K = 48 terms of order 1, tanh within 6 ulp) and bit for bit against
the build with the rewrite turned off (each column's dot product is the same kernel's at the same K).
Chains it must not split (overlapping slices, another reader of the sliced value) are kept."""

from __future__ import annotations

import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.driver import lower
from cerebro.compiler.ir import DType, Graph
from cerebro.compiler.passes.split_columns import split_sliced_matmuls

RNG = np.random.default_rng(14)
K, N, HEADS = 48, 3 * 64, 4


def _qkv_graph(spans=((0, 64), (64, 128), (128, 192)), extra_reader: bool = False) -> tuple[Graph, dict]:
    """x[2, 24, K] -> reshape [48, K] @ W[K, N] + b -> reshape [2, 24, N] -> column slices -> tanh each."""
    g = Graph("qkv")
    x = g.add_input((2, 24, K), DType.f32, "x")
    rng = np.random.default_rng(3)  # the same weights in every graph
    w = rng.standard_normal((K, N)).astype(np.float32) / np.sqrt(K)
    b = rng.standard_normal((1, N)).astype(np.float32)
    h = g.add1("add", g.add1("matmul", g.add1("reshape", x, shape=(48, K)), g.const(w)), g.const(b))
    h = g.add1("reshape", h, shape=(2, 24, N))
    outs = [g.add1("tanh", g.add1("slice", h, start=(0, 0, lo), limit=(2, 24, hi), strides=(1, 1, 1)))
            for lo, hi in spans]
    if extra_reader:
        outs.append(g.add1("tanh", h))
    g.set_outputs(outs)
    return g, {"w": w, "b": b, "spans": spans}


def _reference(x: np.ndarray, params: dict) -> list[np.ndarray]:
    h = (x.reshape(48, K).astype(np.float64) @ params["w"] + params["b"]).reshape(2, 24, N)
    return [np.tanh(h[..., lo:hi]) for lo, hi in params["spans"]]


def test_qkv_slices_become_matmuls() -> None:
    g, params = _qkv_graph()
    optimised = lower(g)[0]
    ops = [n.op for n in optimised.nodes]
    assert "slice" not in ops and ops.count("matmul") == 3, ops
    x = RNG.standard_normal((2, 24, K)).astype(np.float32)
    got = runtime.load(build(g))(x)
    for y, want in zip(got, _reference(x, params)):
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_same_bits_as_the_unsplit_build() -> None:
    """The split build against the same graph with the rewrite turned off (an overlap-free identity:
    each column's dot product is the kernel's at the same K)."""
    g, _ = _qkv_graph()
    x = RNG.standard_normal((2, 24, K)).astype(np.float32)
    split = runtime.load(build(g))(x)
    import cerebro.compiler.passes.fold as fold

    original = fold.split_sliced_matmuls
    fold.split_sliced_matmuls = lambda graph: graph
    try:
        plain = runtime.load(build(_qkv_graph()[0]))(x)
    finally:
        fold.split_sliced_matmuls = original
    for a, b in zip(split, plain):
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("case", ["overlap", "extra_reader"])
def test_kept(case: str) -> None:
    g, _ = _qkv_graph(spans=((0, 96), (64, 192))) if case == "overlap" else _qkv_graph(extra_reader=True)
    before = [n.op for n in g.nodes]
    assert [n.op for n in split_sliced_matmuls(g).nodes] == before
