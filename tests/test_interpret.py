"""The reference interpreter on the IR's tricky ops, checked directly against JAX/XLA and numpy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

from cerebro.compiler.ir import DType, Graph, IRError, dtype_from_numpy, verify
from cerebro.compiler.ir.interpret import run_graph


def _run(op: str, inputs: list[np.ndarray], **attrs) -> np.ndarray:
    """One node over graph inputs, verified, then interpreted."""
    graph = Graph(op)
    values = [graph.add_input(x.shape, dtype_from_numpy(x.dtype), f"in{i}") for i, x in enumerate(inputs)]
    graph.set_outputs([graph.add1(op, *values, **attrs)])
    verify(graph)
    (out,) = run_graph(graph, inputs)
    return out


CONVS = [  # (x shape NHWC, kernel hw, cout, strides, padding, lhs_dil, rhs_dil, groups)
    ((2, 9, 8, 4), (3, 3), 6, (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 1),
    ((1, 10, 9, 6), (3, 2), 6, (2, 1), ((2, 0), (1, 3)), (1, 1), (2, 3), 3),
    ((1, 7, 7, 5), (3, 3), 5, (1, 2), ((0, 1), (2, 2)), (1, 1), (1, 1), 5),
    ((1, 5, 6, 2), (3, 3), 4, (1, 1), ((2, 2), (1, 1)), (2, 3), (1, 1), 1),
    ((1, 8, 8, 3), (2, 2), 2, (3, 3), ((-1, 0), (0, -2)), (1, 1), (1, 1), 1),
]


@pytest.mark.parametrize("x_shape, kernel, cout, strides, padding, lhs_dil, rhs_dil, groups", CONVS)
def test_conv_matches_xla(x_shape, kernel, cout, strides, padding, lhs_dil, rhs_dil, groups) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(kernel + (x_shape[-1] // groups, cout)).astype(np.float32)
    got = _run("conv", [x, w], strides=strides, padding=padding, lhs_dilation=lhs_dil, rhs_dilation=rhs_dil,
               groups=groups)
    want = lax.conv_general_dilated(x, w, strides, padding, lhs_dilation=lhs_dil, rhs_dilation=rhs_dil,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-4, atol=1e-5)


def test_conv_1d_and_3d_match_xla() -> None:
    rng = np.random.default_rng(1)
    for x_shape, w_shape, spec in [((2, 11, 3), (3, 3, 4), ("NWC", "WIO", "NWC")),
                                   ((1, 4, 5, 6, 2), (2, 3, 2, 2, 3), ("NDHWC", "DHWIO", "NDHWC"))]:
        x, w = rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(w_shape).astype(np.float32)
        spatial = len(x_shape) - 2
        padding = tuple((1, 0) for _ in range(spatial))
        got = _run("conv", [x, w], strides=(1,) * spatial, padding=padding)
        want = lax.conv_general_dilated(x, w, (1,) * spatial, padding, dimension_numbers=spec)
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind, monoid, init", [("sum", lax.add, 0.0), ("max", lax.max, -np.inf),
                                                ("min", lax.min, np.inf)])
def test_reduce_window_with_padding_matches_xla(kind, monoid, init) -> None:
    x = np.random.default_rng(2).standard_normal((2, 7, 6, 3)).astype(np.float32)
    window, strides, padding = (1, 3, 2, 1), (1, 2, 1, 1), ((0, 0), (1, 2), (0, 1), (0, 0))
    got = _run("reduce_window", [x], kind=kind, window=window, strides=strides, padding=padding)
    want = lax.reduce_window(x, init, monoid, window, strides, padding)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6, atol=1e-6)


def test_reduce_window_integer_max_pads_with_min() -> None:
    x = -np.arange(1, 7, dtype=np.int32).reshape(1, 6)
    got = _run("reduce_window", [x], kind="max", window=(1, 3), strides=(1, 3), padding=((0, 0), (2, 1)))
    np.testing.assert_array_equal(got, [[-1, -2, -5]])  # a zero pad would give 0 twice


@pytest.mark.parametrize("mode", ["clip", "wrap"])
def test_take_modes(mode: str) -> None:
    x = np.arange(20, dtype=np.float32).reshape(4, 5)
    idx = np.array([[0, 4, -1], [7, -6, 2]], np.int32)
    got = _run("take", [x, idx], axis=1, mode=mode)
    expected_idx = np.clip(np.where(idx < 0, idx + 5, idx) if mode == "wrap" else idx, 0, 4)
    assert got.shape == (4, 2, 3)
    np.testing.assert_array_equal(got, np.take(x, expected_idx, axis=1))
    if mode == "wrap":
        np.testing.assert_array_equal(got[:, 0, 2], x[:, 4])  # -1 is the last element
    else:
        np.testing.assert_array_equal(got[:, 0, 2], x[:, 0])  # -1 clamps to the first


def test_integer_div_rem_follow_xla() -> None:
    a = np.array([7, -7, 7, -7, 5, -2147483648, 0, 9, -2147483648, -2147483648, 2147483647], np.int32)
    b = np.array([2, 2, -2, -2, 0, -1, 0, 3, 2, 7, -2147483648], np.int32)
    np.testing.assert_array_equal(_run("div", [a, b]), np.asarray(lax.div(a, b)))
    np.testing.assert_array_equal(_run("rem", [a, b]), np.asarray(lax.rem(a, b)))
    np.testing.assert_array_equal(_run("div", [a[:4], b[:4]]), [3, -3, -3, 3])
    np.testing.assert_array_equal(_run("rem", [a[:4], b[:4]]), [1, -1, 1, -1])
    for dtype in (np.int8, np.uint8):
        x = np.arange(-128, 128).astype(np.int16).astype(dtype)
        y = np.resize(np.array([3, -3, 0, 1, -1, 7, -128], np.int16).astype(dtype), x.shape)
        np.testing.assert_array_equal(_run("div", [x, y]), np.asarray(lax.div(x, y)))
        np.testing.assert_array_equal(_run("rem", [x, y]), np.asarray(lax.rem(x, y)))


def test_float_rem_takes_dividend_sign() -> None:
    a = np.array([5.5, -5.5, 5.5, -5.5], np.float32)
    b = np.array([2.0, 2.0, -2.0, -2.0], np.float32)
    np.testing.assert_array_equal(_run("rem", [a, b]), np.asarray(lax.rem(a, b)))


@pytest.mark.parametrize("config", [((1, 2, 0), (0, 0, 2)), ((-1, 3, 1), (2, -2, 3)), ((0, 0, 0), (-1, -1, 1))])
def test_pad_with_interior_and_negative_edges(config) -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    got = _run("pad", [x], lo=tuple(c[0] for c in config), hi=tuple(c[1] for c in config),
               interior=tuple(c[2] for c in config), value=-0.5)
    np.testing.assert_array_equal(got, np.asarray(lax.pad(x, np.float32(-0.5), config)))


def test_convert_saturates_and_truncates_like_xla() -> None:
    x = np.array([3e9, -3e9, np.nan, 2.7, -2.7, np.inf, -np.inf, 300.0, -5.0], np.float32)
    for dtype in (np.int32, np.uint8, np.int8, np.int64):
        got = _run("convert", [x], dtype=dtype_from_numpy(dtype))
        np.testing.assert_array_equal(got, np.asarray(jnp.asarray(x).astype(dtype)) if dtype != np.int64
                                      else np.array([3000000000, -3000000000, 0, 2, -2, 2**63 - 1, -2**63, 300, -5]))
    np.testing.assert_array_equal(_run("convert", [x], dtype=DType.bool), x != 0)


def test_round_is_half_to_even_and_argmax_takes_first() -> None:
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], np.float32)
    np.testing.assert_array_equal(_run("round", [x]), [-2, -2, -0, 0, 2, 2])
    ties = np.array([[1, 3, 3, 0], [2, 2, 2, 2]], np.float32)
    np.testing.assert_array_equal(_run("argmax", [ties], axis=1, index_dtype=DType.i32), [1, 0])
    np.testing.assert_array_equal(_run("argmin", [ties], axis=1, index_dtype=DType.i32), [3, 0])


def test_integer_pow_and_bool_reductions() -> None:
    base = np.array([2, -1, 1, 3, -2, -1], np.int32)
    exponent = np.array([3, -3, -2, -1, 5, 4], np.int32)
    np.testing.assert_array_equal(_run("pow", [base, exponent]), [8, -1, 1, 0, -32, 1])
    flags = np.array([[True, False], [True, True]])
    np.testing.assert_array_equal(_run("reduce_max", [flags], axes=(1,)), [True, True])
    np.testing.assert_array_equal(_run("reduce_min", [flags], axes=(1,)), [False, True])
    with pytest.raises(IRError, match="bool"):
        _run("reduce_sum", [flags], axes=(1,))


def test_matmul_batched_and_broadcast_in_dim() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 3, 4, 5)).astype(np.float32), rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(_run("matmul", [a, b]), a @ b, rtol=1e-5, atol=1e-5)
    v = np.arange(3, dtype=np.float32)
    got = _run("broadcast_in_dim", [v], shape=(2, 3, 4), broadcast_dimensions=(1,))
    np.testing.assert_array_equal(got, np.asarray(lax.broadcast_in_dim(v, (2, 3, 4), (1,))))


def test_scalar_shapes_survive() -> None:
    x = np.array(2.0, np.float32)
    out = _run("mul", [x, x])
    assert out.shape == () and out == 4.0


@st.composite
def _conv_configs(draw):
    spatial = draw(st.integers(1, 2))
    groups = draw(st.sampled_from([1, 2, 3]))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(spatial))
    rhs_dil = tuple(draw(st.integers(1, 2)) for _ in range(spatial))
    lhs_dil = tuple(draw(st.integers(1, 2)) for _ in range(spatial))
    padding = tuple((draw(st.integers(-1, 2)), draw(st.integers(-1, 2))) for _ in range(spatial))
    strides = tuple(draw(st.integers(1, 3)) for _ in range(spatial))
    sizes = tuple(draw(st.integers((k - 1) * d + 3, 8)) for k, d in zip(kernel, rhs_dil))
    return spatial, groups, cin, cout, kernel, rhs_dil, lhs_dil, padding, strides, sizes


@settings(max_examples=40, deadline=None, database=None)
@given(_conv_configs(), st.integers(0, 2**31 - 1))
def test_conv_random_configs_match_xla(config, seed) -> None:
    spatial, groups, cin, cout, kernel, rhs_dil, lhs_dil, padding, strides, sizes = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *sizes, cin)).astype(np.float32)
    w = rng.standard_normal((*kernel, cin // groups, cout)).astype(np.float32)
    spec = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}[spatial]
    want = lax.conv_general_dilated(x, w, strides, padding, lhs_dilation=lhs_dil, rhs_dilation=rhs_dil,
                                    dimension_numbers=spec, feature_group_count=groups)
    got = _run("conv", [x, w], strides=strides, padding=padding, lhs_dilation=lhs_dil, rhs_dilation=rhs_dil,
               groups=groups)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-4, atol=1e-4)


@settings(max_examples=40, deadline=None, database=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2),
                          st.integers(0, 2)), min_size=1, max_size=3),
       st.sampled_from(["sum", "max", "min"]), st.integers(0, 2**31 - 1))
def test_reduce_window_random_configs_match_xla(dims, kind, seed) -> None:
    shape = tuple(d + w for d, w, *_ in dims)
    window = tuple(w for _, w, *_ in dims)
    strides = tuple(s for _, _, s, _, _ in dims)
    padding = tuple((lo, hi) for *_, lo, hi in dims)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    monoid, init = {"sum": (lax.add, 0.0), "max": (lax.max, -np.inf), "min": (lax.min, np.inf)}[kind]
    want = lax.reduce_window(x, init, monoid, window, strides, padding)
    got = _run("reduce_window", [x], kind=kind, window=window, strides=strides, padding=padding)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-5)


def _attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> jnp.ndarray:
    return jnp.einsum("bqk,bkd->bqd", jax.nn.softmax(jnp.einsum("bqd,bkd->bqk", q, k) / 4.0, axis=-1), v)


def _conv_block(x: np.ndarray) -> jnp.ndarray:
    w = np.linspace(-1, 1, 3 * 3 * 4 * 8, dtype=np.float32).reshape(3, 3, 4, 8)
    y = lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jax.nn.relu(y + np.arange(8, dtype=np.float32))


LOWERED_CASES = {  # what the passes make: (function, argument shapes, ops and lowered attributes it must hold)
    "attention: row kernel, epilogue": (_attention, [(2, 5, 8)] * 3, {"row_kernel", ("matmul", "epilogue")}),
    "matmul: transposed operand, epilogue": (
        lambda x, y: jax.nn.relu(jnp.einsum("bkm,bkn->bmn", x, y) + np.arange(21, dtype=np.float32)),
        [(2, 9, 6), (2, 9, 21)], {("matmul", "view"), ("matmul", "epilogue")}),
    "matmul: transposed result": (lambda x, y: jnp.transpose(x @ y, (1, 0, 2)), [(2, 3, 4), (2, 4, 7)],
                                  {("matmul", "view")}),
    "dense + gelu: packed weights, fused loop": (
        lambda x: jax.nn.gelu(x @ np.linspace(-1, 1, 8 * 24, dtype=np.float32).reshape(8, 24)) * jnp.exp(-x[:, :1]),
        [(5, 8)], {("matmul", "packed_b"), "fused_elementwise"}),
    "conv + bias + relu: packed kernel, epilogue": (_conv_block, [(1, 6, 5, 4)],
                                                    {("conv", "packed_b"), ("conv", "epilogue")}),
}


@pytest.mark.parametrize("case", sorted(LOWERED_CASES))
def test_the_interpreter_runs_the_passes_output_with_the_same_meaning(case: str) -> None:
    """Fused ops, epilogues, packed weights and strided views run through their references
    (compiler/ir/fused_reference.py) and give the unlowered graph's answer."""
    from cerebro.compiler.driver import lower
    from cerebro.frontends.jax import trace

    fn, shapes, expected = LOWERED_CASES[case]
    rng = np.random.default_rng(7)
    args = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    want = run_graph(trace(fn, *args).graph, args)
    lowered = lower(trace(fn, *args).graph)[0]
    made = {node.op for node in lowered.nodes} | {(node.op, a) for node in lowered.nodes for a in node.attrs}
    assert expected <= made, made
    for got, expected_out in zip(run_graph(lowered, args), want, strict=True):
        np.testing.assert_allclose(got, expected_out, rtol=1e-6, atol=1e-6)
