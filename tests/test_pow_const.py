"""pow by a constant 2 or 3 becomes multiplies (compiler/passes/pow_const.py): the rewrite happens only
for splat float exponents 2 and 3, and the built model squares exactly and cubes within 2 ulp, edge values
included."""

from __future__ import annotations

import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.ir import DType, Graph
from cerebro.compiler.passes import fold_constants

EDGES = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 3e12, -3e12, 1e20, 1.5, -2.25], np.float32)


def pow_graph(exponent: np.ndarray, dtype: DType = DType.f32) -> Graph:
    g = Graph("pow")
    x = g.add_input((4, 37), dtype, "x")
    g.set_outputs([g.add1("pow", x, g.const(exponent, dtype))])
    return g


def _ops(graph: Graph) -> list[str]:
    return [node.op for node in fold_constants(graph).nodes]


@pytest.mark.parametrize(("exponent", "muls"), [(2.0, 1), (3.0, 2)])
def test_constant_powers_become_multiplies(exponent: float, muls: int) -> None:
    assert _ops(pow_graph(np.full((1, 1), exponent))) == ["mul"] * muls
    assert _ops(pow_graph(np.full((4, 37), exponent))) == ["mul"] * muls


@pytest.mark.parametrize("exponent", [np.full((1, 1), 2.5), np.array([[2.0] * 36 + [3.0]]), np.full((1, 1), 4.0)])
def test_other_exponents_stay_pow(exponent: np.ndarray) -> None:
    assert _ops(pow_graph(exponent)) == ["pow"]


def test_integer_pow_stays_pow() -> None:
    assert _ops(pow_graph(np.full((1, 1), 2), DType.i32)) == ["pow"]


@pytest.mark.parametrize("dtype", [DType.f32, DType.f64])
def test_built_square_and_cube_match_pow(dtype: DType) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 37)).astype(dtype.numpy) * 10
    x.flat[:EDGES.size] = EDGES
    square = runtime.load(build(pow_graph(np.full((1, 1), 2.0), dtype)))(x)[0]
    cube = runtime.load(build(pow_graph(np.full((1, 1), 3.0), dtype)))(x)[0]
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(square, np.square(x))  # one rounding of the exact square: pow's own
        exact = np.power(x.astype(np.float64), 3).astype(dtype.numpy)
    np.testing.assert_array_equal(np.isnan(cube), np.isnan(exact))
    np.testing.assert_array_equal(np.signbit(cube), np.signbit(exact))
    finite = np.isfinite(exact) & (np.abs(exact) > np.finfo(dtype.numpy).tiny)
    np.testing.assert_array_equal(cube[~finite & ~np.isnan(exact)], exact[~finite & ~np.isnan(exact)])
    ulps = np.abs(cube[finite] - exact[finite]) / np.spacing(np.abs(exact[finite]))
    assert ulps.max() <= 2
