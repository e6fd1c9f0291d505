"""Named JAX/Flax test cases shared by the frontend tests and the codegen tests.

Each case is a function and example arguments (numpy arrays or pytrees of them);
the reference is always `jax.jit(case.fn)(*case.args)`. Cases are built lazily
(`get_case(name)`, `all_cases()`): importing this file traces and compiles nothing.

    from jax_cases import CASE_NAMES, get_case   # pytest puts tests/ on sys.path
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Case:
    name: str
    fn: Callable[..., Any]
    args: tuple
    rtol: float = 1e-5
    atol: float = 1e-6


_BUILDERS: dict[str, Callable[[], Case]] = {}

# Tolerances: exact-ish elementwise math; transcendental functions (our erf/tanh
# vs XLA's polynomials); reductions and matmuls (summation order); whole models.
EXACT = dict(rtol=1e-6, atol=1e-7)
ELEMENTWISE = dict(rtol=1e-5, atol=1e-6)
TRANSCENDENTAL = dict(rtol=2e-5, atol=2e-6)
LINEAR = dict(rtol=1e-4, atol=1e-5)
MODEL = dict(rtol=1e-3, atol=1e-4)


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _normal(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def case(name: str, **tolerances: float) -> Callable:
    """Register `build(rng) -> (fn, args)` as a case."""

    def register(build: Callable[[np.random.Generator], tuple]) -> Callable:
        def make() -> Case:
            fn, args = build(_rng(name))
            return Case(name, fn, tuple(args), **{**ELEMENTWISE, **tolerances})

        _BUILDERS[name] = make
        return build

    return register


def unary(name: str, fn: Callable, low: float = -3.0, high: float = 3.0, shape=(4, 5), **tolerances: float) -> None:
    case(name, **tolerances)(lambda rng: (fn, [rng.uniform(low, high, shape).astype(np.float32)]))


def binary(name: str, fn: Callable, shapes=((4, 5), (4, 5)), low: float = -3.0, high: float = 3.0,
           **tolerances: float) -> None:
    case(name, **tolerances)(lambda rng: (fn, [rng.uniform(low, high, s).astype(np.float32) for s in shapes]))


def assert_outputs_match(got: Any, want: Any, rtol: float, atol: float, what: str) -> None:
    """Leaf by leaf: same shape and dtype, floats within rtol/atol, everything else exactly equal."""
    import jax

    got_leaves = [np.asarray(g) for g in jax.tree.leaves(got)]
    want_leaves = [np.asarray(w) for w in jax.tree.leaves(want)]
    assert len(got_leaves) == len(want_leaves), what
    for i, (g, w) in enumerate(zip(got_leaves, want_leaves)):
        assert (g.shape, g.dtype) == (w.shape, w.dtype), f"{what} output {i}: {g.dtype}{g.shape} vs {w.dtype}{w.shape}"
        if np.issubdtype(w.dtype, np.floating):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"{what} output {i}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"{what} output {i}")


def get_case(name: str) -> Case:
    return _BUILDERS[name]()


def all_cases() -> list[Case]:
    return [get_case(name) for name in _BUILDERS]


def _custom_vjp_fn() -> Callable:
    import jax
    import jax.numpy as jnp

    @jax.custom_vjp
    def scaled_sin(x):
        return jnp.sin(x) * 2

    scaled_sin.defvjp(lambda x: (scaled_sin(x), x), lambda x, g: (2 * g * jnp.cos(x),))
    return scaled_sin


# --- elementwise primitives ------------------------------------------------------------------

def _elementwise_cases() -> None:
    import jax
    import jax.numpy as jnp
    from jax import lax

    binary("add", lambda a, b: a + b, **EXACT)
    binary("sub", lambda a, b: a - b, **EXACT)
    binary("mul", lambda a, b: a * b, **EXACT)
    binary("div", lambda a, b: a / b, low=0.5, high=3.0)
    binary("max", jnp.maximum, **EXACT)
    binary("min", jnp.minimum, **EXACT)
    binary("pow", jnp.power, low=0.5, high=2.0, **TRANSCENDENTAL)
    binary("broadcast_add", lambda a, b: a + b, shapes=((4, 1, 5), (3, 1)), **EXACT)
    binary("scalar_literal_mul", lambda a, b: 2.5 * a - b / 3, **EXACT)
    binary("rem_float", lax.rem, low=-5, high=5)
    unary("neg", lambda x: -x, **EXACT)
    unary("abs", jnp.abs, **EXACT)
    unary("exp", jnp.exp, **TRANSCENDENTAL)
    unary("exp2", jnp.exp2, **TRANSCENDENTAL)
    unary("log", jnp.log, low=0.01, high=10, **TRANSCENDENTAL)
    unary("log1p", jnp.log1p, low=-0.5, high=3, **TRANSCENDENTAL)
    unary("expm1", jnp.expm1, **TRANSCENDENTAL)
    unary("sqrt", jnp.sqrt, low=0, high=9, **TRANSCENDENTAL)
    unary("rsqrt", lax.rsqrt, low=0.1, high=9, **TRANSCENDENTAL)
    unary("cbrt", jnp.cbrt, **TRANSCENDENTAL)
    unary("tanh", jnp.tanh, **TRANSCENDENTAL)
    unary("logistic", lax.logistic, low=-10, high=10, **TRANSCENDENTAL)
    unary("erf", lax.erf, **TRANSCENDENTAL)
    unary("erfc", lax.erfc, low=-1, high=1, **TRANSCENDENTAL)
    unary("sin", jnp.sin, **TRANSCENDENTAL)
    unary("cos", jnp.cos, **TRANSCENDENTAL)
    unary("tan", jnp.tan, low=-1.2, high=1.2, **TRANSCENDENTAL)
    unary("sign", jnp.sign, **EXACT)
    unary("floor", jnp.floor, **EXACT)
    unary("ceil", jnp.ceil, **EXACT)
    unary("square", jnp.square, **EXACT)
    unary("integer_pow", lambda x: x ** 3 + x ** 0, **ELEMENTWISE)
    unary("integer_pow_negative", lambda x: x ** -2, low=0.5, high=3, **ELEMENTWISE)
    unary("clamp", lambda x: lax.clamp(-1.0, x, 1.5), **EXACT)
    unary("clip", lambda x: jnp.clip(x, 0, 1), **EXACT)
    unary("is_finite", lambda x: jnp.isfinite(jnp.log(x)), low=-1, high=1)
    unary("stop_gradient", lambda x: lax.stop_gradient(x) * 2, **EXACT)
    unary("reduce_precision", lambda x: lax.reduce_precision(x, 8, 23), **EXACT)
    unary("relu", jax.nn.relu, **EXACT)
    unary("gelu_tanh", lambda x: jax.nn.gelu(x, approximate=True), **TRANSCENDENTAL)
    unary("gelu_erf", lambda x: jax.nn.gelu(x, approximate=False), **TRANSCENDENTAL)
    unary("sigmoid", jax.nn.sigmoid, low=-10, high=10, **TRANSCENDENTAL)
    unary("silu", jax.nn.silu, **TRANSCENDENTAL)
    unary("softmax", lambda x: jax.nn.softmax(x, axis=-1), **TRANSCENDENTAL)
    unary("log_softmax", lambda x: jax.nn.log_softmax(x, axis=-1), **TRANSCENDENTAL)
    unary("logsumexp", lambda x: jax.nn.logsumexp(x, axis=-1), **TRANSCENDENTAL)
    unary("sinh_cosh", lambda x: (jnp.sinh(x), jnp.cosh(x)), **TRANSCENDENTAL)
    unary("l2_normalize", lambda x: x / jnp.linalg.norm(x, axis=-1, keepdims=True), **TRANSCENDENTAL)
    unary("nested_jit", jax.jit(lambda x: jax.jit(jnp.sin)(x) + 1), **TRANSCENDENTAL)
    unary("checkpoint", jax.checkpoint(lambda x: jnp.cos(x) * x), **TRANSCENDENTAL)
    unary("custom_vjp", _custom_vjp_fn(), **TRANSCENDENTAL)
    unary("softmax_axis0", lambda x: jax.nn.softmax(x, axis=0), **TRANSCENDENTAL)

    @case("round_half_away_and_even", **EXACT)
    def _(rng):
        x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.3, -0.7], np.float32)
        return (lambda v: (lax.round(v), lax.round(v, lax.RoundingMethod.TO_NEAREST_EVEN), jnp.round(v))), [x]

    @case("compare", **EXACT)
    def _(rng):
        a = rng.integers(-2, 3, (4, 5)).astype(np.float32)
        b = rng.integers(-2, 3, (4, 5)).astype(np.float32)
        return (lambda x, y: (x == y, x != y, x < y, x <= y, x > y, x >= y)), [a, b]

    @case("select_n_where", **EXACT)
    def _(rng):
        return (lambda x, y: jnp.where(x > y, x, y * 2)), [_normal(rng, 4, 5), _normal(rng, 4, 5)]

    @case("where_scalar_branch", **EXACT)
    def _(rng):
        return (lambda x: jnp.where(x > 0, x, 0.25)), [_normal(rng, 3, 4)]

    @case("logical_ops", **EXACT)
    def _(rng):
        a, b = rng.random((3, 4)) > 0.5, rng.random((3, 4)) > 0.5
        return (lambda x, y: (x & y, x | y, x ^ y, ~x)), [a, b]

    @case("integer_arith", **EXACT)
    def _(rng):
        a = rng.integers(-20, 20, (4, 6)).astype(np.int32)
        b = rng.integers(1, 7, (4, 6)).astype(np.int32) * np.where(rng.random((4, 6)) > 0.5, 1, -1).astype(np.int32)
        return (lambda x, y: (lax.div(x, y), lax.rem(x, y), x // y, x % y, x * y - y, jnp.maximum(x, y),
                              x & y, x | y, ~x)), [a, b]

    @case("convert_element_type", **EXACT)
    def _(rng):
        x = rng.uniform(-5, 5, (3, 4)).astype(np.float32)
        return (lambda v: (v.astype(jnp.int32), v.astype(jnp.int32).astype(jnp.float32) + 0.5,
                           (v > 0).astype(jnp.float32), v.astype(bool))), [x]


# --- structural primitives -------------------------------------------------------------------

def _structural_cases() -> None:
    import jax
    import jax.numpy as jnp
    from jax import lax

    def one(name, fn, shape=(2, 3, 4), **tol):
        case(name, **{**EXACT, **tol})(lambda rng: (fn, [_normal(rng, *shape)]))

    one("reshape", lambda x: x.reshape(6, 4) * 2)
    one("reshape_flatten", lambda x: jnp.ravel(x))
    one("transpose", lambda x: jnp.transpose(x, (2, 0, 1)))
    one("swapaxes", lambda x: jnp.swapaxes(x, 1, 2) + 1)
    one("slice_static", lambda x: x[:, 1:3, ::2])
    one("index_int", lambda x: x[1, :, 2])
    one("squeeze", lambda x: jnp.squeeze(x[:, :1, :], axis=1))
    one("expand_dims", lambda x: jnp.expand_dims(x, (0, 3)))
    one("rev", lambda x: x[::-1, :, ::-1])
    one("concatenate", lambda x: jnp.concatenate([x, x * 2, x[:, :1]], axis=1))
    one("stack", lambda x: jnp.stack([x, -x], axis=-1))
    one("split", lambda x: tuple(jnp.split(x, 2, axis=2)))
    one("broadcast_to", lambda x: jnp.broadcast_to(x[:, :1, :], (5, 2, 3, 4)))
    one("pad_edges", lambda x: jnp.pad(x, ((0, 0), (1, 2), (2, 0)), constant_values=-1.5))
    one("pad_interior_negative", lambda x: lax.pad(x, 0.5, ((1, -1, 0), (0, 0, 2), (-1, 2, 1))))
    one("iota", lambda x: x + jnp.arange(4, dtype=jnp.float32) + lax.broadcasted_iota(jnp.float32, (2, 3, 4), 1))
    one("reduce_sum", lambda x: (jnp.sum(x), jnp.sum(x, axis=1), jnp.sum(x, axis=(0, 2), keepdims=True)), **LINEAR)
    one("reduce_mean", lambda x: jnp.mean(x, axis=-1), **LINEAR)
    one("reduce_max_min", lambda x: (jnp.max(x, axis=0), jnp.min(x, axis=(1, 2))))
    one("reduce_prod", lambda x: jnp.prod(x, axis=1), **LINEAR)
    one("argmax_argmin", lambda x: (jnp.argmax(x, axis=1), jnp.argmin(x, axis=-1), jnp.argmax(x)))
    one("any_all", lambda x: (jnp.any(x > 1, axis=1), jnp.all(x > -2, axis=(0, 2))))
    one("cumsum_cummax", lambda x: (jnp.cumsum(x, axis=1), lax.cummax(x, axis=2, reverse=True),
                                     lax.cummin(x, axis=0)), **LINEAR)
    one("var_std", lambda x: (jnp.var(x, axis=-1), jnp.std(x)), **LINEAR)

    @case("scan_and_fori_loop", **LINEAR)
    def _(rng):
        def fn(x):
            def body(carry, row):
                carry = jnp.tanh(carry * 0.5 + row)
                return carry, carry.sum()

            last, sums = lax.scan(body, jnp.zeros(x.shape[1]), x)
            back = lax.scan(lambda c, r: (c + r, c * r), x[0], x, reverse=True)
            return last, sums, back, lax.fori_loop(0, 3, lambda i, v: v * 2 + i, x[0])

        return fn, [_normal(rng, 5, 4)]

    @case("cond_and_switch", **EXACT)
    def _(rng):
        def fn(x, flag, which):
            a = lax.cond(flag > 0, lambda v: v + 1, lambda v: v * 3, x)
            b = lax.switch(which, [lambda v: v, lambda v: -v, lambda v: v * v], x)
            return a, b, lax.cond(True, lambda v: v - 2, lambda v: v, x)

        return fn, [_normal(rng, 3, 4), np.int32(-2), np.int32(2)]

    @case("dynamic_slice_traced_index", **EXACT)
    def _(rng):
        return (lambda x, i: (x[i], lax.dynamic_slice(x, (i, 1), (2, 2)))), [_normal(rng, 5, 4), np.int32(3)]

    @case("take_axis1", **EXACT)
    def _(rng):
        return (lambda x, i: jnp.take(x, i, axis=1)), [_normal(rng, 3, 6, 2), np.array([[0, 5], [-1, 2]], np.int32)]

    @case("take_fill_out_of_range", **EXACT)
    def _(rng):
        return (lambda x, i: jnp.take(x, i, axis=0)), [_normal(rng, 4, 3), np.array([0, 7, -2, 3], np.int32)]

    @case("take_clip", **EXACT)
    def _(rng):
        return (lambda x, i: jnp.take(x, i, axis=0, mode="clip")), [_normal(rng, 4, 3), np.array([0, 9, -5], np.int32)]

    @case("index_array", **EXACT)
    def _(rng):
        return (lambda x, i: x[i]), [_normal(rng, 5, 3), np.array([4, 0, 2, -1], np.int32)]

    @case("index_array_middle_axis", **EXACT)
    def _(rng):
        return (lambda x, i: x[:, i]), [_normal(rng, 2, 5, 3), np.array([[4, 0], [2, 1]], np.int32)]

    @case("gather_multi_axis", **EXACT)
    def _(rng):
        i, j = np.array([[0, 2], [-1, 1]], np.int32), np.array([[3, 0], [1, -4]], np.int32)
        return (lambda x, i, j: (x[i, j], x[i, :, j], x[:, i, 1:3], x[1, j])), [_normal(rng, 3, 4, 5), i, j]

    @case("gather_take_along_axis", **EXACT)
    def _(rng):
        idx = np.array([[[0], [4]], [[2], [9]], [[-1], [1]]], np.int32)
        return (lambda x, i: (jnp.take_along_axis(x, i, axis=2), jnp.take_along_axis(x, i, axis=2, mode="clip"))), [
            _normal(rng, 3, 2, 5), idx]

    @case("gather_partial_slices", **EXACT)
    def _(rng):
        dn = lax.GatherDimensionNumbers(offset_dims=(1, 2), collapsed_slice_dims=(), start_index_map=(0, 1))
        starts = np.array([[0, 0], [3, 1], [-2, 9], [1, 2]], np.int32)

        def fn(x, s):
            return (lax.gather(x, s, dn, (2, 3), mode="clip"), lax.gather(x, s, dn, (2, 3), mode="fill"))

        return fn, [_normal(rng, 5, 6), starts]

    @case("index_constant_array", **EXACT)
    def _(rng):
        return (lambda x: x[jnp.array([2, 0])] * 3), [_normal(rng, 3, 4)]

    @case("one_hot", **EXACT)
    def _(rng):
        return (lambda i: jax.nn.one_hot(i, 5)), [np.array([[0, 4], [2, 7]], np.int32)]

    @case("int8_dot_int32_accumulate", **EXACT)
    def _(rng):
        a, b = rng.integers(-128, 128, (3, 8)).astype(np.int8), rng.integers(-128, 128, (8, 4)).astype(np.int8)
        return (lambda x, y: lax.dot_general(x, y, (((1,), (0,)), ((), ())), preferred_element_type=jnp.int32)), [a, b]

    @case("closed_over_constant", **LINEAR)
    def _(rng):
        w = _normal(rng, 4, 3)
        return (lambda x: jnp.tanh(x @ w)), [_normal(rng, 2, 4)]


# --- dot_general, conv, windows ----------------------------------------------------------------

def _linear_cases() -> None:
    import jax.numpy as jnp
    from jax import lax

    def two(name, fn, shapes, **tol):
        case(name, **{**LINEAR, **tol})(lambda rng: (fn, [_normal(rng, *s) for s in shapes]))

    two("matmul_2d", jnp.matmul, ((5, 7), (7, 3)))
    two("matvec", jnp.matmul, ((5, 7), (7,)))
    two("matmul_batched_broadcast", jnp.matmul, ((2, 5, 7), (7, 3)))
    two("einsum_batched", lambda a, b: jnp.einsum("bij,bjk->bik", a, b), ((3, 4, 5), (3, 5, 2)))
    two("einsum_attention_scores", lambda q, k: jnp.einsum("bqhd,bkhd->bhqk", q, k), ((2, 5, 3, 4), (2, 6, 3, 4)))
    two("einsum_multi_contract", lambda a, b: jnp.einsum("abcd,cde->abe", a, b), ((2, 3, 4, 5), (4, 5, 6)))
    two("einsum_transposed", lambda a, b: jnp.einsum("ki,jk->ij", a, b), ((6, 4), (3, 6)))
    two("dot_general_rhs_batch_last",
        lambda a, b: lax.dot_general(a, b, (((2,), (0,)), ((0,), (2,)))), ((3, 4, 5), (5, 2, 3)))

    def conv(name, x_shape, w_shape, **kwargs):
        two(name, lambda x, w: lax.conv_general_dilated(x, w, **kwargs), (x_shape, w_shape))

    nhwc = ("NHWC", "HWIO", "NHWC")
    conv("conv_nchw_same_stride2", (1, 3, 9, 9), (4, 3, 3, 3), window_strides=(2, 2), padding="SAME")
    conv("conv_nhwc_valid_dilated", (2, 9, 8, 3), (3, 2, 3, 5), window_strides=(1, 1), padding="VALID",
         rhs_dilation=(2, 1), dimension_numbers=nhwc)
    conv("conv_explicit_groups", (1, 7, 7, 4), (3, 3, 2, 6), window_strides=(1, 2), padding=((1, 2), (0, 1)),
         feature_group_count=2, dimension_numbers=nhwc)
    conv("conv_lhs_dilation", (1, 5, 5, 2), (3, 3, 2, 3), window_strides=(1, 1), padding=((2, 2), (2, 2)),
         lhs_dilation=(2, 2), dimension_numbers=nhwc)
    conv("conv_1d_ncw", (2, 3, 11), (4, 3, 3), window_strides=(2,), padding="SAME")
    conv("conv_odd_layout", (5, 6, 2, 3), (3, 3, 3, 4), window_strides=(1, 1), padding="SAME",
         dimension_numbers=("HWNC", "HWIO", "CNHW"))

    def window(name, fn, shape=(2, 7, 6, 3), **tol):
        case(name, **{**LINEAR, **tol})(lambda rng: (fn, [_normal(rng, *shape)]))

    import flax.linen as nn

    window("max_pool_same", lambda x: nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME"))
    window("avg_pool_valid", lambda x: nn.avg_pool(x, (2, 2), strides=(2, 2)))
    window("avg_pool_same_exclude_pad",
           lambda x: nn.avg_pool(x, (3, 3), strides=(1, 1), padding="SAME", count_include_pad=False))
    window("min_pool_1d", lambda x: lax.reduce_window(x, np.inf, lax.min, (1, 3, 1), (1, 2, 1),
                                                      ((0, 0), (1, 1), (0, 0))), shape=(2, 8, 3))


# --- flax modules and models ------------------------------------------------------------------

def random_variables(module: Any, *inputs: Any, rng: np.random.Generator, **kwargs: Any) -> Any:
    """Seeded numpy variables with the shapes module.init would give, without compiling init.

    Kernels get He-scaled normals (fan-in = all dims but the last), batch
    variances lie in [0.5, 1.5], scales near 1 and biases/means near 0, so
    every parameter matters and deep models stay finite.
    """
    import jax

    shapes = jax.eval_shape(lambda *xs: module.init(jax.random.PRNGKey(0), *xs, **kwargs), *inputs)

    def leaf(path, spec):
        key = str(getattr(path[-1], "key", ""))
        shape = tuple(spec.shape)
        if key == "var":
            return rng.uniform(0.5, 1.5, shape).astype(spec.dtype)
        if key in ("bias", "mean"):
            return _normal(rng, *shape, scale=0.2)
        if key == "scale":
            return 1 + _normal(rng, *shape, scale=0.2)
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        return _normal(rng, *shape, scale=float(np.sqrt(2.0 / fan_in)) if key == "kernel" else 1.0)

    return jax.tree_util.tree_map_with_path(leaf, shapes)


def _module_case(name: str, make_module: Callable, input_shapes, call: Callable | None = None,
                 int_inputs: int | None = None, **tolerances: float) -> None:
    """A flax module applied with random (seeded) variables; variables are the first argument."""

    @case(name, **{**LINEAR, **tolerances})
    def _(rng):
        module = make_module()
        if int_inputs is not None:
            inputs = [rng.integers(0, int_inputs, s).astype(np.int32) for s in input_shapes]
        else:
            inputs = [_normal(rng, *s) for s in input_shapes]
        apply = call or (lambda m, v, *xs: m.apply(v, *xs))
        variables = random_variables(module, *inputs, rng=rng)

        def fn(variables, *xs):
            return apply(module, variables, *xs)

        return fn, [variables, *inputs]


class _Factories:
    """Module constructors, imported late so that importing this file stays cheap."""

    @staticmethod
    def cnn():
        import flax.linen as nn

        class CNN(nn.Module):
            @nn.compact
            def __call__(self, x):
                x = nn.Conv(8, (3, 3), padding="SAME")(x)
                x = nn.BatchNorm(use_running_average=True)(x)
                x = nn.relu(x)
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
                x = nn.Conv(16, (3, 3), strides=(2, 2), padding="VALID")(x)
                x = nn.BatchNorm(use_running_average=True)(x)
                x = nn.relu(x)
                x = nn.avg_pool(x, (2, 2), strides=(1, 1), padding="SAME")
                x = x.reshape(x.shape[0], -1)
                return nn.log_softmax(nn.Dense(10)(x))

        return CNN()

    @staticmethod
    def mlp():
        import flax.linen as nn

        class MLP(nn.Module):
            @nn.compact
            def __call__(self, x):
                x = nn.relu(nn.Dense(64)(x))
                x = nn.silu(nn.Dense(32)(x))
                return nn.softmax(nn.Dense(10)(x))

        return MLP()

    @staticmethod
    def encoder_block():
        import flax.linen as nn

        class EncoderBlock(nn.Module):
            """A pre-LN transformer encoder block with a padding mask and exact gelu."""

            @nn.compact
            def __call__(self, x, valid):
                mask = nn.make_attention_mask(valid > 0, valid > 0)
                h = nn.LayerNorm()(x)
                h = nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=32)(h, h, mask=mask)
                x = x + h
                h = nn.LayerNorm()(x)
                h = nn.gelu(nn.Dense(64)(h), approximate=False)
                h = nn.Dropout(0.1, deterministic=True)(h)
                return x + nn.Dense(32)(h)

        return EncoderBlock()

    @staticmethod
    def causal_attention():
        import flax.linen as nn

        class CausalAttention(nn.Module):
            @nn.compact
            def __call__(self, x):
                mask = nn.make_causal_mask(x[..., 0])
                return nn.MultiHeadDotProductAttention(num_heads=2)(x, x, mask=mask)

        return CausalAttention()


def _module_cases() -> None:
    import flax.linen as nn

    _module_case("flax_dense", lambda: nn.Dense(7), [(3, 5)])
    _module_case("flax_dense_3d", lambda: nn.Dense(4, use_bias=False), [(2, 3, 5)])
    _module_case("flax_conv_same", lambda: nn.Conv(6, (3, 3)), [(2, 8, 8, 3)])
    _module_case("flax_conv_valid_strided", lambda: nn.Conv(4, (3, 3), strides=(2, 2), padding="VALID"),
                 [(1, 9, 9, 2)])
    _module_case("flax_conv_explicit_padding", lambda: nn.Conv(4, (2, 3), padding=((1, 0), (2, 1))), [(1, 6, 5, 3)])
    _module_case("flax_conv_dilated", lambda: nn.Conv(4, (3, 3), kernel_dilation=(2, 2)), [(1, 10, 10, 2)])
    _module_case("flax_conv_depthwise", lambda: nn.Conv(8, (3, 3), feature_group_count=8), [(1, 7, 7, 8)])
    _module_case("flax_conv_grouped", lambda: nn.Conv(6, (3, 3), feature_group_count=3), [(1, 6, 6, 6)])
    _module_case("flax_conv_1d", lambda: nn.Conv(5, (4,), strides=(2,), padding="SAME"), [(2, 11, 3)])
    _module_case("flax_conv_transpose", lambda: nn.ConvTranspose(4, (3, 3), strides=(2, 2), padding="SAME"),
                 [(1, 5, 5, 3)])
    _module_case("flax_groupnorm", lambda: nn.GroupNorm(num_groups=3), [(2, 4, 4, 6)])
    _module_case("flax_rmsnorm", lambda: nn.RMSNorm(), [(3, 10)])
    _module_case("flax_batchnorm", lambda: nn.BatchNorm(use_running_average=True), [(2, 4, 4, 6)])
    _module_case("flax_layernorm", lambda: nn.LayerNorm(), [(3, 10)])
    _module_case("flax_embed", lambda: nn.Embed(50, 8), [(2, 6)], int_inputs=50)
    _module_case("flax_dropout_deterministic", lambda: nn.Dropout(0.5, deterministic=True), [(3, 4)])
    _module_case("flax_attention_masked", _Factories.encoder_block, [(2, 6, 32), (2, 6)],
                 call=lambda m, v, x, valid: m.apply(v, x, valid))
    _module_case("flax_causal_attention", _Factories.causal_attention, [(2, 5, 8)])
    _module_case("model_mlp", _Factories.mlp, [(4, 20)], **MODEL)
    _module_case("model_cnn", _Factories.cnn, [(2, 16, 16, 3)], **MODEL)

    @case("model_transformer_block", **MODEL)
    def _(rng):

        module = _Factories.encoder_block()
        x = _normal(rng, 2, 8, 32)
        valid = np.array([[1] * 8, [1] * 5 + [0] * 3], np.int32)
        variables = random_variables(module, x, valid, rng=rng)
        return (lambda v, x, valid: module.apply(v, x, valid)), [variables, x, valid]

    @case("model_resnet18", rtol=2e-3, atol=2e-3)
    def _(rng):
        import flaxmodels

        module = flaxmodels.ResNet18(output="logits", pretrained=None, num_classes=10)
        x = _normal(rng, 1, 64, 64, 3)
        variables = random_variables(module, x, rng=rng, train=False)
        return (lambda v, x: module.apply(v, x, train=False)), [variables, x]


@functools.cache
def _register_all() -> list[str]:
    for group in (_elementwise_cases, _structural_cases, _linear_cases, _module_cases):
        group()
    return list(_BUILDERS)


CASE_NAMES: list[str] = _register_all()
