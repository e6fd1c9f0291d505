"""The f32 logistic (compiler/codegen/mathfn.py) and SiLU, x * logistic(x), over [-100, 100].

logistic's e**-|x| (_exp_negative_32) scales by 2**n in fewer instructions than exp (_exp_32): within
exp's 2 ulp of float64 on every x <= 0 (subnormal results included), NaN payloads kept (an integer add to
the exponent field once turned them into numbers). Bounds against float64: logistic 3 ulp and 2e-6
relative (as tests/test_codegen_mathfn.py over the whole range); SiLU 4 ulp where logistic(x) is normal
(x > -87.34) and, below, |x| times logistic's 3 ulp of 2**-149 plus half of SiLU's own spacing."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.codegen import elementwise, mathfn
from cerebro.compiler.ir import DType, Graph

NANS = np.array([0x7F800001, 0x7FC00001, 0xFFFFFFFF, 0x7F8001FF, 0xFF8000FF, 0xFFC00000], np.uint32).view(np.float32)
SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 1e-40, -1e-40, 1.1754944e-38, -1.1754944e-38,
                     3.4028235e38, -3.4028235e38, 87.3, -87.3, 103.97, -103.97, 120.0, -120.0, 1e3, -1e3], np.float32)
EXP_ULPS = 2
SILU_ULPS = 4  # logistic's 3 and the multiply's rounding
LOGISTIC_ULPS = 3
RELATIVE = 2e-6


def _patterns(lo: float, hi: float, stride: int) -> np.ndarray:
    """Every stride-th f32 in [lo, hi] (lo <= 0 <= hi), both signs of zero."""
    negative = np.arange(0x80000000, np.float32(-lo).view(np.uint32) + 0x80000000 + 1, stride, dtype=np.uint64)
    positive = np.arange(0, np.float32(hi).view(np.uint32) + 1, stride, dtype=np.uint64)
    return np.concatenate([negative, positive]).astype(np.uint32).view(np.float32)


def _run(op: str, x: np.ndarray) -> list[np.ndarray]:
    g = Graph(op)
    inp = g.add_input(x.shape, DType.f32, "x")
    y = g.add1(op, inp)
    g.set_outputs([y, g.add1("mul", inp, y)], ["y", "xy"])
    return runtime.load(build(g))(x)


def test_exp_of_negatives(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.concatenate([_patterns(-130.0, 0.0, 101), NANS, np.array([-np.inf, -1e30, -0.0], np.float32)])
    monkeypatch.setitem(elementwise.UNARY_RULES, ("exp", "f"), mathfn._exp_negative_32)
    (got, _) = _run("exp", x)
    nan = np.isnan(x)
    assert np.isnan(got[nan]).all(), f"nan lost: {got[nan]}"
    assert not np.isnan(got[~nan]).any()
    ulps = _ulps(got[~nan], np.exp(x[~nan].astype(np.float64)))
    assert ulps.max() <= EXP_ULPS, f"{ulps.max():.2f} ulp at x={x[~nan][np.argmax(ulps)]}"


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    rounded = want.astype(np.float32)
    with np.errstate(over="ignore"):  # the spacing above the largest float (SiLU(3.4e38)) is inf
        spacing = np.spacing(np.abs(rounded)).astype(np.float64)
    return np.abs(got.astype(np.float64) - rounded) / spacing


def test_logistic_and_silu_dense() -> None:
    x = np.concatenate([_patterns(-100.0, 100.0, 211), SPECIALS, NANS])
    logistic, silu = _run("logistic", x)
    nan = np.isnan(x)
    assert np.isnan(logistic[nan]).all() and np.isnan(silu[nan]).all()
    x, logistic, silu = x[~nan], logistic[~nan], silu[~nan]
    wide = x.astype(np.float64)
    want = scipy.special.expit(wide)
    assert logistic[x == np.inf] == 1.0 and logistic[x == -np.inf] == 0.0 and (logistic[x == 0] == 0.5).all()
    tiny = float(np.finfo(np.float32).tiny)
    rel = np.abs(logistic - want) / np.maximum(want, tiny)
    assert rel.max() <= RELATIVE, f"logistic {rel.max():.3g} relative at x={x[np.argmax(rel)]}"
    ulps = _ulps(logistic, want)
    assert ulps.max() <= LOGISTIC_ULPS, f"logistic {ulps.max():.2f} ulp at x={x[np.argmax(ulps)]}"
    finite = np.isfinite(x)
    with np.errstate(invalid="ignore"):
        want_silu = wide * want
    x, silu, want_silu = x[finite], silu[finite], want_silu[finite]
    normal = want[finite] >= tiny
    ulps = _ulps(silu[normal], want_silu[normal])
    assert ulps.max() <= SILU_ULPS, f"SiLU {ulps.max():.2f} ulp at x={x[normal][np.argmax(ulps)]}"
    below = ~normal
    err = np.abs(silu[below] - want_silu[below])
    bound = np.abs(x[below]).astype(np.float64) * LOGISTIC_ULPS * 2.0**-149 + 2.0**-150
    assert (err <= bound).all(), f"SiLU off by {err.max():.3g} at x={x[below][np.argmax(err - bound)]}"
