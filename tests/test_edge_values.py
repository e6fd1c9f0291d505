"""Every elementwise IR op on edge values, against jax.jit (XLA on this CPU) as the ground truth.

A graph (cut in batches: a .cbx holds at most MAX_TENSORS tensors) has every (op, dtype) the
emitter accepts (compiler/codegen/elementwise.py's rule tables) on every edge value of that dtype:
zeros of both signs, +-inf, NaN, integer min/max, -1, halves (for round), division by zero,
INT_MIN / -1, out-of-range converts. Binary ops see every pair of edge values. The same graph is
checked as run by the reference interpreter, as folded to constants, as compiled for the host and
as compiled for aarch64 (one qemu-aarch64-static run per batch).

Comparison: integers and bools bit for bit; floats exactly, NaN matching NaN (any payload) and the
sign of zero counted, except the transcendental functions, which match XLA within TOLERANCE
relative wherever XLA's answer is finite and non-zero and exactly elsewhere (inf, NaN, 0).
XLA on CPU flushes subnormal results to zero (FTZ) and generated code does not: a subnormal answer
where XLA has a zero of the same sign is counted as equal (edge inputs are normal or zero).
The generated code's known gaps are listed in COMPILED_GAPS, and a gap that closes fails the test.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import native
import numpy as np
import pytest
from jax import lax
from test_aarch64_runtime import run_cbxrun, split_outputs

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.cbx.format import MAX_TENSORS
from cerebro.compiler.codegen.elementwise import BINARY_RULES, COMPARE_RULES, UNARY_RULES, kind
from cerebro.compiler.ir import DType, Graph, ops
from cerebro.compiler.ir.interpret import run_graph
from cerebro.compiler.ir.ops import BINARY, COMPARE, ELEMENTWISE, UNARY
from cerebro.compiler.passes.fold import fold_constants
from cerebro.frontends.jax.tracer import trace

DTYPES = (DType.f32, DType.f64, DType.i8, DType.i16, DType.i32, DType.i64, DType.u8, DType.u16, DType.u32,
          DType.bool)


def _xla_int_pow(x: jax.Array, y: jax.Array) -> jax.Array:
    """XLA's integer power (HLO `power`, which lax.pow does not reach for integers, and jnp.power
    computes differently for large exponents): square-and-multiply over every bit of y, wrapping;
    y < 0 gives 0 unless |x| is 1."""

    def step(_: int, state: tuple) -> tuple:
        result, base, exponent = state
        return jnp.where(exponent & 1 == 1, result * base, result), base * base, exponent >> 1

    one = jnp.ones_like(x)
    power, _, _ = lax.fori_loop(0, x.dtype.itemsize * 8, step, (one, x, jnp.maximum(y, 0)))
    negative = jnp.where(x == 1, one, jnp.where(x == -1, jnp.where(y % 2 == 0, one, -one), jnp.zeros_like(x)))
    return jnp.where(y < 0, negative, power)


def _pow(x: jax.Array, y: jax.Array) -> jax.Array:
    return lax.pow(x, y) if jnp.issubdtype(x.dtype, jnp.floating) else _xla_int_pow(x, y)


# IR op -> the JAX function with its meaning (jnp where lax refuses a dtype the IR accepts, e.g.
# floor of an integer, abs of u8, + on bool).
JAX_OPS = {
    "neg": lax.neg, "abs": jnp.abs, "exp": lax.exp, "log": lax.log, "log1p": lax.log1p, "expm1": lax.expm1,
    "tanh": lax.tanh, "erf": lax.erf, "sqrt": lax.sqrt, "rsqrt": lax.rsqrt, "logistic": lax.logistic,
    "floor": jnp.floor, "ceil": jnp.ceil, "round": jnp.round, "sign": jnp.sign, "not": jnp.invert,
    "sin": lax.sin, "cos": lax.cos, "reciprocal": lambda x: 1 / x, "is_finite": jnp.isfinite,
    "add": jnp.add, "sub": jnp.subtract, "mul": jnp.multiply, "div": lax.div, "rem": lax.rem,
    "max": lax.max, "min": lax.min, "pow": _pow, "and": lax.bitwise_and, "or": lax.bitwise_or,
    "xor": lax.bitwise_xor, "shift_left": lax.shift_left, "shift_right_logical": lax.shift_right_logical,
    "shift_right_arithmetic": lax.shift_right_arithmetic,
    "eq": lax.eq, "ne": lax.ne, "lt": lax.lt, "le": lax.le, "gt": lax.gt, "ge": lax.ge,
    "select": lax.select,
    "convert": None,  # one case per target dtype, below
    "bitcast": None,  # one case per target dtype of the same width, below
}
# XLA's own answers here are not correctly rounded (rsqrt is 1/sqrt rounded twice on this CPU)
TRANSCENDENTAL = ops.TRANSCENDENTAL | {"rsqrt"}
TOLERANCE = {DType.f32: 4e-6, DType.f64: 1e-14}  # relative, for TRANSCENDENTAL on floats


def edge_values(dtype: DType) -> np.ndarray:
    if dtype is DType.bool:
        return np.array([False, True])
    if dtype.is_float or dtype.is_half:
        info = np.finfo(dtype.numpy)
        with np.errstate(over="ignore"):  # 3e9 is inf in f16
            return np.array([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 3.0, 300.0, -129.0, 3e9,
                             info.tiny, info.max, -info.max, np.inf, -np.inf, np.nan], dtype.numpy)
    info = np.iinfo(dtype.numpy)
    small = [0, 1, 2, 3, 7, 100] + ([-1, -2, -7] if info.min else [128])
    return np.array(small + [info.min, info.min + 1, info.max, info.max - 1], dtype.numpy)


def _pairs(dtype: DType) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.meshgrid(edge_values(dtype), edge_values(dtype), indexing="ij")
    return a.ravel(), b.ravel()


def _accepts(op: str, dtype: DType) -> bool:
    if op in ("select", "convert"):
        return True
    if op == "bitcast":
        return dtype is not DType.bool
    table = UNARY_RULES if op in UNARY else COMPARE_RULES if op in COMPARE else BINARY_RULES
    return (op, kind(dtype)) in table


def _inputs() -> dict[str, np.ndarray]:
    arrays = {}
    for dtype in DTYPES:
        arrays[f"x.{dtype.name}"] = edge_values(dtype)
        arrays[f"a.{dtype.name}"], arrays[f"b.{dtype.name}"] = _pairs(dtype)
        arrays[f"c.{dtype.name}"] = np.arange(arrays[f"a.{dtype.name}"].size) % 3 == 1
    return arrays


def _cases() -> list[tuple[str, str, tuple[str, ...], DType | None]]:
    """(output name, op, input names, convert target) for every (op, dtype) the emitter accepts."""
    cases = []
    for op in sorted(ELEMENTWISE):
        for dtype in DTYPES:
            if not _accepts(op, dtype):
                continue
            d = dtype.name
            if op == "convert":
                cases += [(f"convert.{d}.{to.name}", op, (f"x.{d}",), to) for to in DTYPES]
            elif op == "bitcast":
                cases += [(f"bitcast.{d}.{to.name}", op, (f"x.{d}",), to) for to in DTYPES
                          if to is not DType.bool and to.itemsize == dtype.itemsize]
            elif op == "select":
                cases.append((f"select.{d}", op, (f"c.{d}", f"a.{d}", f"b.{d}"), None))
            else:
                cases.append((f"{op}.{d}", op, (f"x.{d}",) if op in UNARY else (f"a.{d}", f"b.{d}"), None))
    return cases


INPUTS = _inputs()
CASES = _cases()
# Known gaps of the generated code (see compiler/codegen/mathfn.py): sin/cos reduce their argument by
# Cody-Waite, not Payne-Hanek, and give NaN from |x| >= 1e15, where XLA gives sin/cos of the float.
HUGE = [int(i) for i in np.flatnonzero(np.abs(edge_values(DType.f32)) == np.finfo(np.float32).max)]
COMPILED_GAPS = frozenset((f"{op}.{d}", i) for op in ("sin", "cos") for d in ("f32", "f64") for i in HUGE)
BATCH = MAX_TENSORS - len(INPUTS)  # cases per graph (a .cbx holds at most MAX_TENSORS tensors)
BATCHES = [CASES[i:i + BATCH] for i in range(0, len(CASES), BATCH)]


def edge_graph(cases: list[tuple], constant: bool = False) -> Graph:
    """Each case as one output; the inputs are graph inputs, or constants (so that folding runs)."""
    g = Graph("edge_values")
    values = {}
    for name, array in INPUTS.items():
        dtype = DType.bool if array.dtype == np.bool_ else next(d for d in DTYPES if d.numpy == array.dtype)
        values[name] = g.const(array, dtype, name) if constant else g.add_input(array.shape, dtype, name)
    outputs = []
    for _, op, args, to in cases:
        attrs = {"dtype": to} if to is not None else {}
        outputs.append(g.add1(op, *(values[a] for a in args), **attrs))
    g.set_outputs(outputs, [name for name, *_ in cases])
    return g


@pytest.fixture(scope="module")
def xla() -> dict[str, np.ndarray]:
    """jax.jit's answer for every case (64-bit mode for the f64/i64 cases), all in one jit."""

    def everything(arrays: dict) -> dict:
        out = {}
        for name, op, args, to in CASES:
            xs = [arrays[a] for a in args]
            if op in ("convert", "bitcast"):
                move = lax.convert_element_type if op == "convert" else lax.bitcast_convert_type
                out[name] = move(xs[0], to.numpy)
            else:
                out[name] = JAX_OPS[op](*xs)
        return out

    with jax.enable_x64(True):
        return {k: np.asarray(v) for k, v in jax.jit(everything)(INPUTS).items()}


def _mismatches(name: str, got: np.ndarray, want: np.ndarray) -> list[tuple[int, str]]:
    op, dtype = name.split(".")[0], name.split(".")[-1]
    if got.dtype != want.dtype or got.shape != want.shape:
        return [(-1, f"{name}: {got.dtype}{got.shape} vs XLA's {want.dtype}{want.shape}")]
    if want.dtype.kind != "f":
        bad = got != want
    else:
        exact = ~(np.isfinite(want) & (want != 0)) | (op not in TRANSCENDENTAL)
        same = (got == want) & (np.signbit(got) == np.signbit(want)) | np.isnan(got) & np.isnan(want)
        with np.errstate(all="ignore"):
            close = np.abs(got - want) <= TOLERANCE[DType[dtype]] * np.abs(want)
        flushed = (want == 0) & (np.abs(got) < np.finfo(want.dtype).tiny) & (np.signbit(got) == np.signbit(want))
        bad = ~(np.where(exact, same, close) | flushed)
    return [(int(i), f"{name}: at {i} inputs {[INPUTS[a][i % INPUTS[a].size] for a in _case(name)[2]]} "
            f"got {got.flat[i]!r}, XLA {want.flat[i]!r}") for i in np.flatnonzero(bad)]


def _case(name: str) -> tuple:
    return next(c for c in CASES if c[0] == name)


def _check(results: dict[str, np.ndarray], xla: dict[str, np.ndarray], gaps: frozenset = frozenset()) -> None:
    """Every result matches XLA except exactly the (case, element) pairs in gaps (a fixed gap must
    leave the table)."""
    problems, found = [], set()
    for name, got in results.items():
        for index, line in _mismatches(name, np.asarray(got), xla[name]):
            found.add((name, index))
            if (name, index) not in gaps:
                problems.append(line)
    problems += [f"{name}: element {index} is listed as a gap but matches XLA" for name, index in gaps
                 if name in results and (name, index) not in found]
    assert not problems, f"{len(problems)} mismatches with jax.jit:\n" + "\n".join(problems)


def test_every_elementwise_op_has_a_case() -> None:
    assert set(JAX_OPS) == ELEMENTWISE, "add the new op to JAX_OPS"
    assert set(BINARY) | set(UNARY) | set(COMPARE) <= ELEMENTWISE
    for op in ELEMENTWISE:
        assert any(c[1] == op for c in CASES), f"{op}: the emitter accepts no dtype"


def _names(cases: list[tuple]) -> list[str]:
    return [name for name, *_ in cases]


@pytest.mark.parametrize("cases", BATCHES)
def test_interpreter_matches_xla(xla, cases) -> None:
    _check(dict(zip(_names(cases), run_graph(edge_graph(cases), list(INPUTS.values())))), xla)


@pytest.mark.parametrize("cases", BATCHES)
def test_folded_constants_match_xla(xla, cases) -> None:
    graph = fold_constants(edge_graph(cases, constant=True))
    unfolded = [name for name, v in zip(graph.output_names, graph.outputs) if not v.is_const]
    assert not unfolded, f"not folded: {unfolded}"
    _check({name: v.data for name, v in zip(graph.output_names, graph.outputs)}, xla)


@pytest.mark.parametrize("cases", BATCHES)
def test_host_build_matches_xla(xla, cases) -> None:
    _check(dict(zip(_names(cases), runtime.load(build(edge_graph(cases)))(*INPUTS.values()))), xla, COMPILED_GAPS)


@pytest.fixture(scope="module")
def aarch64_runner(tmp_path_factory) -> list[str]:
    return native.aarch64_runner(tmp_path_factory.mktemp("cbxrun-aarch64"))


@pytest.mark.parametrize("cases", BATCHES)
def test_aarch64_build_matches_xla(xla, cases, aarch64_runner, tmp_path) -> None:
    result = run_cbxrun(aarch64_runner, build(edge_graph(cases), target="aarch64"), list(INPUTS.values()), tmp_path)
    assert result.returncode == 0, result.stderr
    outputs = split_outputs((tmp_path / "out.bin").read_bytes(), [xla[name] for name in _names(cases)])
    _check(dict(zip(_names(cases), outputs)), xla, COMPILED_GAPS)


def test_integer_division_by_zero_through_cerebro_compile() -> None:
    """The issue's report: a // b, lax.div and lax.rem with b = 0 (and MIN / -1) under cerebro.compile and
    jax.jit, for every integer dtype (one compile)."""
    import cerebro

    def fn(*pairs):
        return [op(a, b) for a, b in zip(pairs[::2], pairs[1::2]) for op in (jnp.floor_divide, lax.div, lax.rem,
                                                                             jnp.remainder)]

    args = []
    for dtype in (np.int8, np.int16, np.int32, np.int64, np.uint8):
        info = np.iinfo(dtype)
        args += [np.array([5, info.max, 7, info.min, info.min, 0, info.max], dtype),
                 np.array([0, 0, 2, -1 if info.min else info.max, 0, 0, 3], dtype)]
    with jax.enable_x64(True):
        got, want = cerebro.compile(fn, cache=False)(*args), jax.jit(fn)(*args)
    assert len(got) == len(want) == 20
    for mine, theirs in zip(got, want):
        np.testing.assert_array_equal(mine, np.asarray(theirs))


def test_reduce_max_min_order_signed_zeros() -> None:
    """Reductions follow max/min: -0 < +0 and NaN wins, in the interpreter and generated code alike."""
    x = np.array([[0.0, -0.0], [-0.0, 0.0], [-0.0, -0.0], [1.0, np.nan], [np.nan, 1.0]], np.float32)
    g = Graph("reduce_zeros")
    v = g.add_input(x.shape, DType.f32, "x")
    g.set_outputs([g.add1(op, v, axes=(1,)) for op in ("reduce_max", "reduce_min")])
    want = [np.asarray(jax.jit(lambda a, fn=fn: fn(a, axis=1))(x)) for fn in (jnp.max, jnp.min)]
    for results in (run_graph(g, [x]), runtime.load(build(g))(x)):
        for got, expected in zip(results, want):
            np.testing.assert_array_equal(got, expected)
            zeros = expected == 0
            assert np.array_equal(np.signbit(got[zeros]), np.signbit(expected[zeros]))


def test_round_and_clamp_through_cerebro_compile() -> None:
    """lax.round (halves away from zero) where |x| + 0.5 rounds, and lax.clamp with lo > hi (hi wins)."""
    import cerebro

    def fn(x):
        return lax.round(x), lax.clamp(np.float32(-1), x, np.float32(1)), lax.clamp(np.float32(2), x, np.float32(1))

    x = np.array([0.49999997, -0.49999997, 8388609.0, -8388609.0, 2.5, -2.5, -0.3, 0.5, -0.0,
                  np.inf, -np.inf, np.nan], np.float32)
    for mine, theirs in zip(cerebro.compile(fn, cache=False)(x), jax.jit(fn)(x)):
        np.testing.assert_array_equal(mine, np.asarray(theirs))
        assert np.array_equal(np.signbit(mine[mine == 0]), np.signbit(np.asarray(theirs)[mine == 0]))


def test_nan_through_relu_and_max_pool_matches_xla_without_library_offload() -> None:
    """A NaN channel (BatchNorm with a negative variance: rsqrt(var + eps) is NaN) through relu, a max pool
    and a mean stays NaN, as XLA's own `maximum` and `reduce-window` give it. jax.jit on this CPU may hand
    such a fusion to the YNNPACK library (`ynn_fusion`, chosen by size), whose max drops NaN (channel 0 reads
    0); that is XLA's offload, not the op's meaning, so the ground truth is XLA with the offload off. The
    offload's answer is checked too: when it stops dropping NaN, this test says so (and the note in
    compiler/ir/ops.py can go)."""
    import cerebro

    def fn(x):
        pooled = lax.reduce_window(jax.nn.relu(x), -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        return pooled.mean(axis=(1, 2))

    x = np.ones((1, 32, 32, 64), np.float32)
    x[..., 0] = np.nan
    lowered = jax.jit(fn).lower(x)
    xla_own = np.asarray(lowered.compile(compiler_options={"xla_cpu_experimental_ynn_fusion_type": ""})(x))
    offloaded = lowered.compile()
    assert "ynn_fusion" in offloaded.as_text() and np.asarray(offloaded(x))[0, 0] == 0.0
    assert np.isnan(xla_own[0, 0]) and np.all(xla_own[0, 1:] == 1.0)
    np.testing.assert_array_equal(cerebro.compile(fn, cache=False)(x), xla_own)
    np.testing.assert_array_equal(trace(fn, x).run_reference(x), xla_own)
