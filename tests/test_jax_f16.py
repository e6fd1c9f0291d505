"""float16 and bfloat16 through cerebro.compile, against jax.jit on CPU.

XLA on CPU computes each f16/bf16 op in f32 and rounds after every op, fusions included (checked here
against an emulation with one rounding per op, and against one rounding per chain, which differs);
reductions and dots accumulate in f32 and round once. Cerebro does the same (frontends/jax/half.py), so
conversions, moves, correctly rounded ops and chains of them are bit for bit jax.jit's; exp/tanh and
accumulations (other summation order) are within one unit in the last place of the 16-bit type.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import llvmlite.binding as llvm
import ml_dtypes
import native
import numpy as np
import pytest
from test_aarch64_runtime import run_cbxrun, split_outputs

import cerebro
from cerebro.compiler import build
from cerebro.compiler.ir import DType, Graph, IRError
from cerebro.compiler.ir.builder import Builder
from cerebro.frontends.jax.tracer import trace

HALVES = [np.float16, ml_dtypes.bfloat16]
EDGES = np.array([0.0, -0.0, 1.0, -1.5, np.inf, -np.inf, np.nan, -np.nan, 65504.0, 65519.0, 65520.0, 1e5,
                  6e-8, 3e-8, 2.98e-8, 5.96e-8, 1e-5, 6.1e-5, 3.0e38, 3.3895e38, 3.4e38, 1e-40, 9.2e-41,
                  1.0000001, 1.00390625, 1.005859375, 1.0078125, 1.01171875, 0.1, 1 / 3, -2.5e-39], np.float32)
# XLA on CPU flushes f32 subnormals in arithmetic (1e-40 > 0 is False under jax.jit); Cerebro keeps them, for
# f32 as for bf16 (whose subnormals are f32 subnormals): arithmetic operands here leave them out.
NORMAL_EDGES = EDGES[~(np.abs(EDGES) < np.finfo(np.float32).tiny) | (EDGES == 0)]


# XLA on a CPU with AVX512-FP16 (Sapphire Rapids and later) computes a fusion's f16 ops natively and contracts a
# multiply and an add into one f16 FMA, rounded once: there jax.jit's f16 chains differ from the per-op rounding
# Cerebro implements, which is XLA's on every other CPU and JAX's op by op (eager) everywhere.
XLA_FUSES_F16 = bool(llvm.get_host_cpu_features().get("avx512fp16", False))


def _reference(fn, dtype):
    """What Cerebro's results are checked against: jax.jit(fn), or fn run op by op by JAX where XLA's fusions
    contract f16 (XLA_FUSES_F16; jax.jit's (a*b + a)*b differed in 29% of elements, tanh(a*b + a)*b by up to 37
    units in the last place)."""
    return fn if XLA_FUSES_F16 and dtype is np.float16 else jax.jit(fn)


def _bits(values: list, any_nan: bool = False) -> list[np.ndarray]:
    """Arrays as their raw bits (16-bit floats as uint16), so NaN, -0 and every rounding compare exactly;
    any_nan: every NaN made one NaN (an op's NaN sign is unspecified: XLA's maximum(-NaN, 1) is +NaN)."""
    out = []
    for v in jax.tree_util.tree_leaves(values):
        v = np.asarray(v)
        if any_nan and v.dtype.kind not in "biu":
            v = np.where(np.isnan(v), np.array(np.nan, v.dtype), v)
        out.append(v.view(np.uint16) if v.dtype.itemsize == 2 and v.dtype.kind not in "iu" else v)
    return out


def _same_bits(got: list, want: list, any_nan: bool = False) -> None:
    for k, (g, w) in enumerate(zip(_bits(got, any_nan), _bits(want, any_nan))):
        assert g.dtype == w.dtype and g.shape == w.shape, (k, g.dtype, g.shape, w.dtype, w.shape)
        assert g.tobytes() == w.tobytes(), (k, g, w)


def _ulps(got: list, want: list) -> int:
    """Most units in the last place between finite 16-bit results (same-sign values: bits differ by ulps)."""
    return max(int(np.max(np.abs(g.astype(np.int32) - w.astype(np.int32)))) for g, w in zip(_bits(got), _bits(want)))


def round_trip(x, h):
    """f32 -> 16 bits (rounding), 16 bits -> f32 (exact), 16 bits moved by layout ops unconverted."""
    moved = jnp.concatenate([h[::-1], jnp.pad(h[:5], (2, 1)), jnp.broadcast_to(h[:1], (3,))])
    chosen = jnp.where(jnp.arange(h.size) % 3 == 0, h, h[::-1])
    return x.astype(h.dtype), h.astype(jnp.float32), moved, h.reshape(1, -1).T, chosen, h.astype(jnp.int32), \
        x.astype(jnp.int32).astype(h.dtype)


def arithmetic(a, b):
    """Correctly rounded f32 ops, each rounded back: bit-exact whatever the order of evaluation."""
    return a + b, a - b, a * b, a / b, jnp.maximum(a, b), jnp.sqrt(jnp.abs(a)), a < b, (a * b + a) * b - a, -a, \
        a + jnp.arange(a.shape[-1], dtype=a.dtype)


def transcendental(a, b):
    return jnp.exp(a), jnp.tanh(a * b + a) * b, jnp.log(jnp.abs(a) + 1), jax.nn.sigmoid(a)


def reductions(a, b):
    return a.sum(), a.max(), jnp.min(a, axis=0), a.mean(axis=1), jnp.argmax(a, axis=1)


def dense(x, w, bias):
    """A batch-1 layer with bf16 weights: the bytes streamed are half an f32 layer's."""
    return jax.nn.relu(x @ w + bias)


def _inputs(dtype, shape=(16, 32), seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape) * 3).astype(dtype) for _ in range(2)]


@pytest.mark.parametrize("dtype", HALVES, ids=["f16", "bf16"])
def test_round_trip_edges_bit_exact(dtype) -> None:
    with np.errstate(over="ignore"):
        args = (EDGES, EDGES.astype(dtype))
    _same_bits(cerebro.compile(round_trip, cache=False)(*args), jax.jit(round_trip)(*args))


@pytest.mark.parametrize("dtype", HALVES, ids=["f16", "bf16"])
def test_signalling_nans_become_quiet_as_in_xla(dtype) -> None:
    """f32 signalling NaNs of both signs converted to 16 bits: quiet NaNs with XLA's bits, in the generated
    code and in the reference interpreter (numpy alone keeps f16's signalling bit)."""
    x = np.array([0x7FA00000, 0xFFA00001, 0x7F800001, 0x7FC00000], np.uint32).view(np.float32)
    convert = lambda v: v.astype(dtype)  # noqa: E731
    want = jax.jit(convert)(x)
    _same_bits([cerebro.compile(convert, cache=False)(x)], [want])
    _same_bits([trace(convert, x).run_reference(x)], [want])


@pytest.mark.parametrize("dtype", HALVES, ids=["f16", "bf16"])
def test_arithmetic_bit_exact(dtype) -> None:
    a, b = _inputs(dtype)
    with np.errstate(over="ignore"):
        a[0, :NORMAL_EDGES.size] = NORMAL_EDGES.astype(dtype)  # inf, NaN, -0, subnormal, overflowing operands
    _same_bits(cerebro.compile(arithmetic, cache=False)(a, b), _reference(arithmetic, dtype)(a, b), any_nan=True)


def test_xla_rounds_after_every_op() -> None:
    """The semantics matched above: a chain rounded op by op equals _reference's, rounded once at its end does
    not; where XLA fuses f16 natively (XLA_FUSES_F16), jax.jit's equals the chain with a*b + a as one FMA."""
    a, b = (v.astype(np.float32) for v in _inputs(np.float16, (4096,)))
    r = lambda v: np.asarray(v, np.float32).astype(np.float16).astype(np.float32)  # noqa: E731
    chain = lambda x, y: (x * y + x) * y  # noqa: E731
    got = np.asarray(_reference(chain, np.float16)(a.astype(np.float16), b.astype(np.float16)), np.float32)
    assert np.array_equal(got, r(r(r(a * b) + a) * b))
    assert not np.array_equal(got, r((a * b + a) * b))
    if XLA_FUSES_F16:  # a*b + a exact in float64 (f16 operands), then rounded once
        fused = np.asarray(jax.jit(chain)(a.astype(np.float16), b.astype(np.float16)), np.float32)
        assert np.array_equal(fused, r(r(a.astype(np.float64) * b + a) * b))


@pytest.mark.parametrize("dtype", HALVES, ids=["f16", "bf16"])
@pytest.mark.parametrize("fn", [transcendental, reductions], ids=["transcendental", "reductions"])
def test_within_one_ulp(fn, dtype) -> None:
    a, b = _inputs(dtype)
    got, want = cerebro.compile(fn, cache=False)(a, b), _reference(fn, dtype)(a, b)
    assert _ulps(got, want) <= 1


def test_dense_layer_with_bf16_weights() -> None:
    rng = np.random.default_rng(3)
    x, w, bias = (rng.standard_normal(s).astype(ml_dtypes.bfloat16) for s in ((1, 256), (256, 128), (128,)))
    got, want = cerebro.compile(dense, cache=False)(x, w, bias), jax.jit(dense)(x, w, bias)
    assert np.asarray(got).dtype == ml_dtypes.bfloat16
    assert _ulps([got], [want]) <= 1


def test_op_table_refuses_arithmetic_on_halves() -> None:
    """A conversion the frontend missed is an error, not a silent 16-bit computation."""
    b = Builder(Graph("half"))
    x = b.graph.add_input((4,), DType.bf16, "x")
    with pytest.raises(IRError, match="add.*does not compute on bf16"):
        b.add("add", x, x)
    with pytest.raises(IRError, match="f16/bf16 convert to and from f32 only"):
        b.add("convert", x, dtype=DType.i32)
    assert b.convert(x, DType.i32).producer.inputs[0].dtype is DType.f32  # the builder goes through f32


def _as(bits: list[np.ndarray], typed: list[np.ndarray]) -> list[np.ndarray]:
    return [b.view(t.dtype) for b, t in zip(bits, typed)]


@pytest.mark.parametrize("fn", [lambda x: jnp.cumsum(x), lambda x: jax.lax.reduce_window(
    x, 0.0, jax.lax.add, (3,), (1,), "VALID")], ids=["cumsum", "reduce_window_sum"])
def test_per_step_rounding_scans_are_refused(fn) -> None:
    """XLA runs these in the 16-bit type and rounds every step: an error, not a different answer."""
    with pytest.raises(NotImplementedError, match="(cumsum|reduce_window_sum).*XLA rounds after every step"):
        trace(fn, np.ones(8, ml_dtypes.bfloat16))


@pytest.fixture(scope="module")
def aarch64_runner(tmp_path_factory) -> list[str]:
    return native.aarch64_runner(tmp_path_factory.mktemp("cbxrun-aarch64"))


def test_aarch64_matches_jax(aarch64_runner, tmp_path) -> None:
    def fn(x, h, g, n):
        return round_trip(x, h) + round_trip(x, g) + arithmetic(h, h[::-1]) + arithmetic(n, n[::-1])

    with np.errstate(over="ignore"):
        args = [EDGES, EDGES.astype(np.float16), EDGES.astype(ml_dtypes.bfloat16),
                NORMAL_EDGES.astype(ml_dtypes.bfloat16)]
    want_typed = [np.asarray(w) for w in jax.tree_util.tree_leaves(jax.jit(fn)(*args))]
    want = _bits(want_typed)
    result = run_cbxrun(aarch64_runner, build(trace(fn, *args).graph, target="aarch64"), _bits(args), tmp_path)
    assert result.returncode == 0, result.stderr
    got = split_outputs((tmp_path / "out.bin").read_bytes(), want)
    _same_bits(got[:14], want[:14])  # the round trips: every bit, NaN signs included
    _same_bits(_as(got[14:], want_typed[14:]), want_typed[14:], any_nan=True)
