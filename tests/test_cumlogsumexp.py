"""lax.cumlogsumexp through cerebro.compile against jax.jit, float32 and float64, forward and reverse.

Cerebro combines in order with jax's logaddexp (max + log1p(exp(-|a - b|)), a + b where a - b is NaN)
over its polynomial exp/log1p; XLA reduces each prefix in its own window order with libm-accurate
functions. Each step rounds a little differently, so results agree within a relative 1e-5 (float32) or
1e-13 (float64) on rows of 300 values spread over +-40, and exactly where the answer is +-inf, NaN or
decided by one element (-inf prefixes, +inf, NaN).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import cerebro

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-13}  # measured: 1.4e-6 and 1.1e-15


def rows(dtype: type) -> np.ndarray:
    """Random rows; row 1 starts with -infs, row 2 holds a +inf, row 3 a NaN, row 4 both infinities."""
    x = np.random.default_rng(5).normal(0, 15, (6, 300)).astype(dtype)
    x[1, :7] = -np.inf
    x[2, 40] = np.inf
    x[3, 100] = np.nan
    x[4, 10], x[4, 20] = -np.inf, np.inf
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
def test_cumlogsumexp_matches_jax_jit(dtype: type) -> None:
    def fn(x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jax.lax.cumlogsumexp(x, axis=1), jax.lax.cumlogsumexp(x, axis=0, reverse=True)

    x = rows(dtype)
    with jax.enable_x64(dtype is np.float64):
        got, want = cerebro.compile(fn, cache=False)(x), jax.jit(fn)(x)
    for mine, theirs in zip(got, want, strict=True):
        theirs = np.asarray(theirs)
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
        finite = np.isfinite(theirs)
        np.testing.assert_array_equal(np.isnan(mine), np.isnan(theirs))
        np.testing.assert_array_equal(mine[~finite & ~np.isnan(theirs)], theirs[~finite & ~np.isnan(theirs)])
        np.testing.assert_allclose(mine[finite], theirs[finite], rtol=TOLERANCE[dtype], atol=0)
