"""jnp.sort/argsort, lax.top_k, cumulative reductions, scatters, atan2/atan/erf_inv through cerebro.compile,
against jax.jit.

Sorts, top_k, scatters and integer or max/min cumulative reductions are exact, so they match bit for
bit (NaN payload order and the sign of zero included); a float cumsum adds in order (XLA adds in a
tree), so it matches within a relative 1e-5 on random data and exactly on integer-valued floats;
atan2, atan and erf_inv are approximations, within the ulps MATH states (special values exact).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import native
import numpy as np
import pytest
from test_aarch64_runtime import run_cbxrun, split_outputs

import cerebro
from cerebro.compiler.driver import build
from cerebro.frontends.jax import UnsupportedPrimitive, trace

RNG = np.random.default_rng(13)
EDGES = np.array([0.0, -0.0, np.nan, -np.nan, 1.0, -np.inf, np.inf, -0.0, 0.0, 1.0, -1.0, 3.5, np.nan, -2.0],
                 np.float32)


def _bits_equal(want: object, got: object) -> None:
    """Every output leaf equal bit for bit (the sign of zero counts), but any NaN matches any NaN: XLA's
    max/min make x86's default NaN (sign set) where the IR keeps the input's (argsort positions show
    where each NaN went)."""
    for w, g in zip(jax.tree_util.tree_leaves(want), jax.tree_util.tree_leaves(got), strict=True):
        w, g = np.asarray(w), np.asarray(g)
        assert w.shape == g.shape and w.dtype == g.dtype
        if w.dtype.kind == "f":
            nan = np.isnan(w)
            np.testing.assert_array_equal(nan, np.isnan(g))
            np.testing.assert_array_equal(np.signbit(w[~nan]), np.signbit(g[~nan]))
            np.testing.assert_array_equal(w[~nan], g[~nan])
        else:
            np.testing.assert_array_equal(w, g)


def _matches_jit(fn, *args) -> None:
    _bits_equal(jax.jit(fn)(*args), cerebro.compile(fn, cache=False)(*args))


def _big() -> np.ndarray:
    """10^5 floats with duplicates, NaNs of both signs, infinities and zeros of both signs."""
    x = RNG.standard_normal(100_000).astype(np.float32)
    x[::97] = np.nan
    x[5::101] = -np.nan
    x[1::89] = -0.0
    x[3::83] = 0.0
    x[2::53] = 1.0
    x[4::211] = -np.inf
    return x


SORTS = {
    "sort": jnp.sort,
    "argsort": jnp.argsort,
    "sort descending": lambda x: jnp.sort(x, descending=True),
    "argsort descending": lambda x: jnp.argsort(x, descending=True),
    "top_k 5": lambda x: jax.lax.top_k(x, 5),
    "top_k all": lambda x: jax.lax.top_k(x, x.shape[-1]),
    "top_k 40 (sorted)": lambda x: jax.lax.top_k(x, 40),
}


def _all_of(table: dict) -> object:
    """One function returning every entry's result (one compile for the lot)."""
    return lambda *args: {name: fn(*args) for name, fn in table.items()}


def test_sorts_match_jit_on_edge_values() -> None:
    _matches_jit(_all_of(SORTS), np.concatenate([EDGES, RNG.integers(-3, 3, 50).astype(np.float32)]))


def test_sorts_of_100000_elements() -> None:
    _matches_jit(_all_of({name: SORTS[name] for name in ("sort", "argsort", "top_k 5", "top_k 40 (sorted)")}), _big())


def test_integer_sorts() -> None:
    dtypes = (np.int32, np.int8, np.uint8, np.bool_, np.int16)
    xs = [RNG.integers(0 if d in (np.uint8, np.bool_) else -100, 2 if d is np.bool_ else 100, (3, 200)).astype(d)
          for d in dtypes]
    _matches_jit(lambda *a: [(jnp.sort(x, axis=1), jnp.argsort(x, axis=0), jax.lax.top_k(x, 7)) for x in a], *xs)


def test_sort_along_a_middle_axis_with_payloads() -> None:
    x = RNG.integers(-4, 4, (3, 40, 5)).astype(np.float32)
    payload = RNG.standard_normal((3, 40, 5)).astype(np.float32)
    _matches_jit(lambda a, b: jax.lax.sort((a, b, a.astype(jnp.int32)), dimension=1, num_keys=1), x, payload)


def test_lexsort_sorts_by_several_keys() -> None:
    first, second = RNG.integers(0, 3, 300).astype(np.float32), RNG.integers(0, 4, 300).astype(np.int32)
    _matches_jit(lambda a, b: (jnp.lexsort((a, b)), jax.lax.sort((b, a), num_keys=2)), first, second)


CUMULATIVE = {
    "cumsum": lambda x: jnp.cumsum(x, axis=1),
    "cumsum reverse": lambda x: jax.lax.cumsum(x, axis=0, reverse=True),
    "cumprod": lambda x: jnp.cumprod(x, axis=1),
    "cummax": lambda x: jax.lax.cummax(x, axis=1),
    "cummin reverse": lambda x: jax.lax.cummin(x, axis=0, reverse=True),
}


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_cumulative_reductions_exact(dtype: type) -> None:
    """Small integers (and, for floats, the edge values) keep every order of combining exact."""
    x = RNG.integers(-3, 4, (6, 14)).astype(dtype)
    if dtype is np.float32:
        x[0] = EDGES
        x[1, 0] = -0.0  # a leading -0 sums to +0, as XLA's cumsum
    _matches_jit(_all_of(CUMULATIVE), x)


def test_float_cumsum_within_rounding() -> None:
    x = RNG.standard_normal((4, 5000)).astype(np.float32)
    fn = lambda a: jnp.cumsum(a, axis=1)  # noqa: E731
    np.testing.assert_allclose(cerebro.compile(fn, cache=False)(x), jax.jit(fn)(x), rtol=1e-5, atol=1e-4)


SCATTERS = {
    "set": lambda x, i, u: x.at[i].set(u),
    "add": lambda x, i, u: x.at[i].add(u),
    "mul": lambda x, i, u: x.at[i].mul(u),
    "max": lambda x, i, u: x.at[i].max(u),
    "min": lambda x, i, u: x.at[i].min(u),
    "set clip": lambda x, i, u: x.at[i].set(u, mode="clip"),
    "add drop": lambda x, i, u: x.at[i].add(u, mode="drop"),
}


def test_scatters_with_duplicates_and_out_of_range_indices() -> None:
    x = EDGES.copy()
    i = np.array([1, 3, 1, 40, -1, -20, 3, 2, 1], np.int32)
    u = np.array([0.5, -0.0, 2.0, 9.0, np.nan, 4.0, 1e-3, -np.inf, 0.25], np.float32)
    _matches_jit(_all_of(SCATTERS), x, i, u)


def test_scatter_add_accumulates_floats_in_order() -> None:
    """Many updates to few slots: the order of the float additions shows in the bits."""
    x = np.zeros(7, np.float32)
    i = RNG.integers(0, 7, 5000).astype(np.int32)
    u = RNG.standard_normal(5000).astype(np.float32)
    _matches_jit(lambda a, j, v: a.at[j].add(v), x, i, u)


def test_segment_sum_and_max() -> None:
    data = RNG.standard_normal((60, 3)).astype(np.float32)
    segments = RNG.integers(0, 6, 60).astype(np.int32)
    _matches_jit(lambda d, s: (jax.ops.segment_sum(d, s, 5), jax.ops.segment_max(d, s, 5)), data, segments)


def test_scatter_windows_and_batches() -> None:
    m = RNG.standard_normal((5, 6)).astype(np.float32)
    rows, cols = np.array([0, 4, 4, 7], np.int32), np.array([1, 5, 5, 2], np.int32)
    _matches_jit(lambda a, r, c: (a.at[r].add(1.0), a.at[r, c].set(9.0), a.at[:, c].mul(2.0), a.at[1:3, ::2].set(7.0),
                                  jax.vmap(lambda row, j: row.at[j].add(3.0))(a[:4], c)), m, rows, cols)


def test_dynamic_update_slice_clamps_its_start() -> None:
    x = RNG.standard_normal((4, 5, 6)).astype(np.float32)
    update = RNG.standard_normal((2, 5, 3)).astype(np.float32)
    _matches_jit(lambda a, u, s: (jax.lax.dynamic_update_slice(a, u, (s, 0, 1)),
                                  jax.lax.dynamic_update_slice(a, u, (s - 9, 0, s))), x, update, np.int32(3))


def test_general_gathers() -> None:
    x = RNG.standard_normal((4, 5, 6)).astype(np.float32)
    along = RNG.integers(0, 5, (4, 3, 6)).astype(np.int32)
    _matches_jit(lambda a, i: (jnp.take_along_axis(a, i, axis=1), a[i[0, :, 0], :, i[1, :, 1]],
                               jnp.take(a, i[0, 0] + 4, axis=2, mode="fill", fill_value=-1.0),
                               jax.vmap(lambda row, j: row[j])(a, i[:, 0, 0])), x, along)


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in float32 steps (through zero), 0 where both are NaN."""
    def ordered(v: np.ndarray) -> np.ndarray:
        bits = np.asarray(v, np.float32).view(np.int32).astype(np.int64)
        return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)

    return np.where(np.isnan(a) & np.isnan(b), 0, np.abs(ordered(a) - ordered(b)))


SPECIAL_PAIRS = np.array([(0, 0), (-0.0, 0), (0, -0.0), (-0.0, -0.0), (np.inf, np.inf), (-np.inf, np.inf),
                          (np.inf, -np.inf), (-np.inf, -np.inf), (np.nan, 1), (1, np.nan), (0, -np.inf), (np.inf, 5),
                          (-3, np.inf), (-0.0, -2), (2, -0.0), (1, 1)], np.float32)
# (fn, its float64 truth or None, tolerance in ulps against jax.jit, against the truth): atan2 and atan are
# Cephes' polynomial (XLA's own atan is 5 ulp off the truth); erf_inv is XLA's expansion (log1p may differ).
MATH = {
    "atan2": (jnp.arctan2, np.arctan2, 4, 3),
    "atan": (jnp.arctan, np.arctan, 6, 3),
    "erf_inv": (jax.scipy.special.erfinv, None, 2, None),
}


@pytest.mark.parametrize("name", MATH)
def test_atan2_atan_erf_inv_within_stated_ulps(name: str) -> None:
    fn, truth, to_jit, to_truth = MATH[name]
    scale = 10.0 ** RNG.integers(-6, 6, (2, 50000))
    y, x = np.concatenate([(RNG.standard_normal((2, 50000)) * scale).astype(np.float32), SPECIAL_PAIRS.T], axis=1)
    args = (np.concatenate([np.tanh(y), [1, -1, 0, -0.0, 1.5, -2, np.nan]]).astype(np.float32),) if name == "erf_inv" \
        else (y, x) if name == "atan2" else (y,)
    want, got = np.asarray(jax.jit(fn)(*args)), cerebro.compile(fn, cache=False)(*args)
    assert _ulps(want, got).max() <= to_jit
    if truth is not None:
        assert _ulps(truth(*(a.astype(np.float64) for a in args)).astype(np.float32), got).max() <= to_truth
    exact = np.isinf(want) | (want == 0) | np.isnan(want)  # the IEEE special values, zeros' signs included
    np.testing.assert_array_equal(np.signbit(got[exact & ~np.isnan(want)]), np.signbit(want[exact & ~np.isnan(want)]))
    np.testing.assert_array_equal(got[exact], want[exact])


def test_unsupported_forms_name_the_primitive_and_line() -> None:
    """cumlogsumexp on float16 (XLA rounds every step); x.at[i].apply(fn) is a scatter whose update_jaxpr
    computes (not a set)."""
    x = np.arange(6, dtype=np.float32)
    with pytest.raises(UnsupportedPrimitive, match=r"'cumlogsumexp' at test_jax_sort_scatter\.py:\d+.*float16"):
        trace(lambda a: jax.lax.cumlogsumexp(a.astype(jnp.float16)), x)
    with pytest.raises(UnsupportedPrimitive, match=r"'scatter' at test_jax_sort_scatter\.py:\d+.*apply"):
        trace(lambda a: a.at[1].apply(jnp.sin), x)


def test_every_emitter_on_aarch64(tmp_path) -> None:
    """The radix sort, the first-k selection, scatter and cumulative, built for aarch64 and run there."""
    x, i = _big()[:20000], RNG.integers(-5, 30000, 3000).astype(np.int32)

    def fn(a, j):
        return jnp.sort(a), jax.lax.top_k(a, 8)[1], a.at[j].add(1.0), jax.lax.cummax(a), jnp.cumsum(j)

    want = [np.asarray(w) for w in jax.tree_util.tree_leaves(jax.jit(fn)(x, i))]
    result = run_cbxrun(native.aarch64_runner(tmp_path / "runner"), build(trace(fn, x, i).graph, target="aarch64"),
                        [x, i], tmp_path)
    assert result.returncode == 0, result.stderr
    _bits_equal(want, split_outputs((tmp_path / "out.bin").read_bytes(), want))
