"""max/min against a float constant (ReLU's max(x, 0), a clamp's bounds) decide XLA's tie rule at emit time
(codegen/elementwise.py _fextreme): one unordered compare and a select instead of the general rule's
ordered compares, tie test and sign-bit test. The results must keep XLA's semantics bit for bit: NaN
propagates (its payload too), -0 < +0 on a tie, and subnormals are kept (jax.jit on CPU flushes them to
zero, so the reference is XLA's rule written out in NumPy, checked against jax.lax.max/min where no
input is subnormal). Both the scalar loop (a literal constant) and the explicit vector rows (a splat of
one) are run, with the constant on either side."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from llvmlite import ir

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.codegen import elementwise
from cerebro.compiler.codegen.llvm_types import splat
from cerebro.compiler.ir import DType, Graph

jax.config.update("jax_platforms", "cpu")
NANS = np.array([0x7FC00000, 0xFFC00000, 0x7FC00001, 0xFFFFFFFF, 0x7F800001], np.uint32).view(np.float32)
VALUES = np.array([0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 1e-40, -1e-40, 1.1754944e-38, -1.1754944e-38,
                   3.4028235e38, -3.4028235e38, 1.0, -1.0, 6.0, -6.0, 5.9999995, 6.0000005, 0.5, -2.5], np.float32)
CONSTANTS = [0.0, -0.0, 6.0, -1.0, 1e-40, -1e-40, np.inf, -np.inf]


def _xla(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """XLA's max/min: a if a is NaN, else b if b is NaN, else the larger (smaller) with -0 < +0."""
    sa, sb = np.signbit(a), np.signbit(b)
    a_wins = (a > b) | ((a == b) & (sb | ~sa)) if op == "max" else (a < b) | ((a == b) & (sa | ~sb))
    out = np.where(a_wins, a, b)
    return np.where(np.isnan(a), a, np.where(np.isnan(b), b, out))


def _pairs() -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([NANS, VALUES, np.float32(CONSTANTS)])
    return np.repeat(x, len(x)), np.tile(x, len(x))


@pytest.mark.parametrize("op", ["max", "min"])
def test_reference_is_xla(op: str) -> None:
    """The NumPy reference is jax.lax's max/min on every pair of non-subnormal specials (NaN-ness for NaNs)."""
    a, b = _pairs()
    normal = ~((np.abs(a) < 1.1754944e-38) & (a != 0)) & ~((np.abs(b) < 1.1754944e-38) & (b != 0))
    a, b = a[normal], b[normal]
    want = np.asarray(jax.jit(getattr(jax.lax, op))(a, b))
    mine = _xla(op, a, b)
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(want))
    np.testing.assert_array_equal(mine[~np.isnan(want)].view(np.uint32), want[~np.isnan(want)].view(np.uint32))


def _graph(op: str, shape: tuple[int, ...], c: float, first: bool, scale: np.ndarray | None) -> Graph:
    g = Graph(f"{op}_const")
    x = g.add_input(shape, DType.f32, "x")
    if scale is not None:  # a [C] operand per row: emit_loop's explicit vector rows (row_vectors), the constant a splat
        x = g.add1("mul", x, g.const(scale.reshape(1, -1)))
    k = g.const(np.full((1,) * len(shape), c, np.float32))
    g.set_outputs([g.add1(op, k, x) if first else g.add1(op, x, k)])
    return g


@pytest.mark.parametrize("rows", [False, True])
@pytest.mark.parametrize("first", [False, True])
@pytest.mark.parametrize("c", CONSTANTS)
@pytest.mark.parametrize("op", ["max", "min"])
def test_against_constant_same_bits_as_xla(op: str, c: float, first: bool, rows: bool) -> None:
    x = np.concatenate([NANS, VALUES, np.float32([c, -c, np.nextafter(np.float32(c), np.float32(0))])])
    scale = None
    if rows:  # 37 columns: vectors of 16 + 16 + 4 + 1 lanes (AVX-512) or 8 x 4 + 4 + 1 (AVX2); scales exact
        x = np.resize(x, (4, 37))
        scale = np.where(np.arange(37) % 2, 1.0, 0.5).astype(np.float32)
    (got,) = runtime.load(build(_graph(op, x.shape, c, first, scale)))(x)
    with np.errstate(invalid="ignore"):
        y = x * scale if rows else x
    k = np.full_like(y, c)
    want = _xla(op, k, y) if first else _xla(op, y, k)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("c", [0.0, -0.0, 6.0])
def test_against_a_splat_is_one_compare_and_a_select(op: str, c: float) -> None:
    """The rule against a splat constant emits an fcmp and a select, nothing else (no NaN test, no sign bits)."""
    vec = ir.VectorType(ir.FloatType(), 16)
    fn = ir.Function(ir.Module(), ir.FunctionType(vec, [vec]), "f")
    b = ir.IRBuilder(fn.append_basic_block())
    k = splat(b, ir.Constant(ir.FloatType(), c), 16)
    before = len(b.block.instructions)
    b.ret(elementwise.BINARY_RULES[(op, "f")](b, fn.args[0], k))
    assert [i.opname for i in b.block.instructions[before:]] == ["fcmp", "select", "ret"]
