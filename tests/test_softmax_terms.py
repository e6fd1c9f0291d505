"""A masked softmax's subnormal terms are zero (passes/softmax_terms.py): swin_t's shifted windows add -100
to the scores between their pieces, whose exp(x - max x) ~1e-44 made every later instruction take a
microcode assist. The softmax still fuses into one row kernel; its outputs are the same numbers as without
the pass wherever those are normal, and 0 where they are subnormal; the product with V matches float64
numpy; an unmasked softmax is left as it was."""

from __future__ import annotations

import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.ir import DType, Graph
from cerebro.compiler.passes import softmax_terms

_RNG = np.random.default_rng(14)
_SHAPE = (2, 3, 49, 49)
TINY = np.finfo(np.float32).tiny


def _attention(mask: np.ndarray | None) -> Graph:
    """probabilities = softmax(scores [+ mask]) over the last axis, and probabilities @ v."""
    g = Graph("masked")
    scores = g.add_input(_SHAPE, DType.f32, "scores")
    v = g.add_input((*_SHAPE[:3], 32), DType.f32, "v")
    x = scores if mask is None else g.add1("add", scores, g.const(mask))
    peak = g.add1("reshape", g.add1("reduce_max", x, axes=(3,)), shape=(*_SHAPE[:3], 1))
    e = g.add1("exp", g.add1("sub", x, peak))
    total = g.add1("reshape", g.add1("reduce_sum", e, axes=(3,)), shape=(*_SHAPE[:3], 1))
    p = g.add1("div", e, total)
    g.set_outputs([p, g.add1("matmul", p, v)])
    return g


def _mask(across: float = -100.0, padding: bool = True) -> np.ndarray:
    """swin_t's: 0 within a window's piece, -100 across pieces; -inf in one column (a padding mask)."""
    piece = np.arange(49) // 20
    mask = np.where(piece[:, None] == piece[None, :], 0.0, across).astype(np.float32)
    if padding:
        mask[:, 7] = -np.inf
    return mask[None, None]


def _kernel_ops(graph: Graph) -> list[list[str]]:
    optimised = driver.lower(graph)[0]
    return [[m.op for m in n.attrs["nodes"]] for n in optimised.nodes if n.op == "row_kernel"]


def test_masked_softmax_terms_below_the_smallest_normal_are_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    mask = _mask()
    (ops,) = _kernel_ops(_attention(mask))
    assert "exp" in ops and "min" in ops and "reduce_sum" in ops  # rewritten, still one row kernel
    scores = _RNG.normal(scale=3.0, size=_SHAPE).astype(np.float32)
    v = _RNG.normal(size=(*_SHAPE[:3], 32)).astype(np.float32)
    got_p, got_y = (np.asarray(a) for a in runtime.load(driver.build(_attention(mask)))(scores, v))
    monkeypatch.setattr(driver, "zero_subnormal_softmax_terms", lambda graph: graph)
    kept_p, _ = (np.asarray(a) for a in runtime.load(driver.build(_attention(mask)))(scores, v))
    subnormal = (kept_p < TINY) & (kept_p > 0)
    assert subnormal.sum() > 1000  # the case at hand: ~1e-44 terms across the pieces
    assert not got_p[subnormal].any() and not got_p[:, :, :, 7].any()
    np.testing.assert_array_equal(got_p[~subnormal], kept_p[~subnormal])  # every other output: the same bits
    x = scores.astype(np.float64) + mask
    exact = np.exp(x - x.max(axis=-1, keepdims=True))
    exact /= exact.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(got_y, exact @ v.astype(np.float64), rtol=1e-5, atol=1e-6)


def test_an_unmasked_softmax_keeps_its_exp() -> None:
    assert _kernel_ops(_attention(None)) == [["reduce_max", "reshape", "sub", "exp", "reduce_sum", "reshape", "div"]]
    assert "min" not in _kernel_ops(_attention(_mask(-80.0, padding=False)))[0]  # e**-80 is normal
    assert "min" in _kernel_ops(_attention(_mask(0.0)))[0]  # -inf: clamped too (exp never underflows)


@pytest.mark.parametrize("t", [-np.inf, -1e30, -100.0, -87.34, -87.3365, -87.3, -50.0, -1e-30, 0.0, np.nan])
def test_the_rewritten_term_is_exp_above_the_cutoff_and_zero_at_or_below(t: float) -> None:
    """exp(max(t, CUTOFF)) * min(max((t - CUTOFF) * 2**100, 0), 1) at the edges, in numpy's f32 arithmetic."""
    f = np.float32
    cutoff, x = f(softmax_terms.CUTOFF), f(t)
    with np.errstate(invalid="ignore", over="ignore"):
        step = np.minimum(np.maximum((x - cutoff) * f(2.0**100), f(0)), f(1))
        term = np.exp(np.maximum(x, cutoff)) * step
    if np.isnan(x):
        assert np.isnan(term)
    elif x > cutoff:
        assert step == 1 and term == np.exp(x) and term >= TINY
    else:
        assert term == 0
    assert np.exp(cutoff) >= TINY  # e**CUTOFF is normal: the clamped exp never makes a subnormal
