"""Attention's softmax row kernel (codegen/rows.py): its max sweep is plain vector max code, and NaN and
signed zeros still come out as the IR says (a NaN anywhere in a row makes that row NaN; max(-0, +0)
may be either zero, which exp(x - max) cannot tell apart). Against numpy in float64, rtol 32 eps: x - max
is rounded to half an ulp of up to |x - max| ~ 20 (exp turns that into ~10 eps of relative error), exp is
within 2 ulp, then a sum of 197 terms and a divide."""

from __future__ import annotations

import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.targets import resolve_target
from cerebro.frontends.jax import trace

jax = pytest.importorskip("jax")
jax.config.update("jax_platforms", "cpu")
ROWS, N = 6, 197  # vit's rows of 197 keys


def _softmax(x):
    return jax.nn.softmax(x, axis=-1)


def test_max_sweep_has_no_nan_exit() -> None:
    """maxnum needs nsz as well as nnan to be a plain reduction for LLVM 22: with nnan alone the max sweep
    was vectorised with a NaN test per vector and an early exit (vcmpunordps), 3.5-6.6% slower."""
    graph = trace(_softmax, np.zeros((ROWS, N), np.float32), name="softmax").graph
    _, text, _, _ = driver.lower(graph, "x86_64-v3")
    assembly = driver.compile_assembly(text, resolve_target("x86_64-v3"))
    assert "vmaxps" in assembly and "vcmpunordps" not in assembly


def test_softmax_rows_nan_and_zeros() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((ROWS, N)).astype(np.float32) * 4
    x[1, 100] = np.nan
    x[2] = 0.0
    x[2, ::3] = -0.0
    model = runtime.load(driver.build(trace(_softmax, x, name="softmax").graph))
    (got,) = model(x)
    wide = x.astype(np.float64)
    want = np.exp(wide - wide.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
    assert np.isnan(got[1]).all()
    np.testing.assert_array_equal(got[2], np.float32(1 / N))
    keep = [0, 2, 3, 4, 5]
    np.testing.assert_allclose(got[keep], want[keep], rtol=32 * float(np.finfo(np.float32).eps), atol=0)
