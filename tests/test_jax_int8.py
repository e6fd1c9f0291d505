"""JAX int8 products into int32 run as the IR's integer ops (frontends/jax/int8.py).

dot_general and conv_general_dilated on int8/uint8 operands (given as bytes, widened by astype in the
jaxpr, or constants whose values fit a byte) with an int32 result compile to matmul_integer/conv_integer,
bit-exact against jax.jit, with constant weights stored one byte each; the integer-only model of
test_integer_only.py still compiles for x86_64-gpr (no FP/SIMD register) and runs bit-exact. Products that
do not fit (weights outside a byte, lhs dilation, under 4 input channels per group) stay the i32
matmul/conv.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cbx_fixtures import HOST_ARCH
from test_integer_only import jax_model

from cerebro import runtime
from cerebro.commands.inspect import int8_nodes
from cerebro.compiler import build
from cerebro.compiler.cbx.reader import read_cbx
from cerebro.compiler.fpu_check import fp_instructions
from cerebro.elf import EM_X86_64
from cerebro.frontends.jax.tracer import trace

CONTRACT = (((1,), (0,)), ((), ()))
rng = np.random.default_rng(17)


def _bytes(shape: tuple[int, ...], dtype=np.int8) -> np.ndarray:
    """Random bytes with the type's extremes in the first cells (the largest exact products)."""
    info = np.iinfo(dtype)
    data = rng.integers(info.min, int(info.max) + 1, shape, dtype=dtype)
    data.flat[:2] = info.min, info.max
    return data


def _compile(fn, *args, target: str = "host") -> tuple[list[str], object, bytes]:
    """(ops of the compiled IR, meta, .cbx) of fn traced on args."""
    data = build(trace(fn, *args).graph, target=target)
    cbx = read_cbx(data)
    return re.findall(r"= (\w+)\(", cbx.ir_text), cbx.meta, data


def _assert_matches_jax(data: bytes, fn, *args) -> None:
    got = runtime.load(data)(*args)
    want = jax.jit(fn)(*args)
    for g, w in zip(got if isinstance(got, (list, tuple)) else [got], want if isinstance(want, tuple) else [want]):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, np.asarray(w))


W = _bytes((70, 24))
W_U8 = _bytes((70, 24), np.uint8)
W_BATCHED = _bytes((2, 5, 40))
W_WIDE = rng.integers(-1000, 1000, (70, 24), dtype=np.int32)  # not bytes: stays an i32 matmul

MATMULS = {
    "dot_general of int8": (lambda x: jax.lax.dot_general(x, W, CONTRACT, preferred_element_type=jnp.int32),
                            [_bytes((3, 70))], "matmul_integer"),
    "astype int32 then @": (lambda x: x.astype(jnp.int32) @ W.astype(jnp.int32), [_bytes((3, 70))],
                            "matmul_integer"),
    "uint8 operands": (lambda x: x.astype(jnp.int32) @ W_U8.astype(jnp.int32), [_bytes((1, 70), np.uint8)],
                       "matmul_integer"),
    "batched, both at run time": (
        lambda a, b: jax.lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,))), preferred_element_type=jnp.int32),
        [_bytes((2, 3, 40), np.uint8), _bytes((2, 40, 5))], "matmul_integer"),
    "batched constant weights": (
        lambda a: jax.lax.dot_general(a, W_BATCHED, (((2,), (2,)), ((0,), (0,))), preferred_element_type=jnp.int32),
        [_bytes((2, 3, 40))], "matmul_integer"),
    "weights outside a byte": (lambda x: x.astype(jnp.int32) @ W_WIDE, [_bytes((3, 70))], "matmul"),
}


@pytest.mark.parametrize("case", MATMULS)
def test_matmul_bit_exact_and_integer(case):
    fn, args, product = MATMULS[case]
    ops, _, data = _compile(fn, *args)
    assert product in ops and {"matmul", "matmul_integer"} - {product} & set(ops) == set(), ops
    _assert_matches_jax(data, fn, *args)


K_HWIO = _bytes((3, 3, 4, 8))
K_OIHW_GROUPS = _bytes((6, 4, 3, 3), np.uint8)  # 8 input channels in 2 groups


def _conv(x, w, **kwargs):
    return jax.lax.conv_general_dilated(x, w, preferred_element_type=jnp.int32, **kwargs)


CONVS = {
    "NHWC stride and padding": (
        lambda x: _conv(x, K_HWIO, window_strides=(2, 1), padding=((1, 1), (0, 2)),
                        dimension_numbers=("NHWC", "HWIO", "NHWC")), _bytes((2, 8, 7, 4)), "conv_integer"),
    "NCHW groups, dilation, SAME, uint8": (
        lambda x: _conv(x, K_OIHW_GROUPS, window_strides=(1, 1), padding="SAME", rhs_dilation=(2, 1),
                        feature_group_count=2, dimension_numbers=("NCHW", "OIHW", "NCHW")),
        _bytes((1, 8, 6, 6), np.uint8), "conv_integer"),
    "astype int32": (
        lambda x: jax.lax.conv_general_dilated(x.astype(jnp.int32), K_HWIO.astype(jnp.int32), (1, 1), "VALID",
                                               dimension_numbers=("NHWC", "HWIO", "NHWC")),
        _bytes((1, 5, 5, 4)), "conv_integer"),
    "3 input channels (the i32 conv is faster)": (
        lambda x: _conv(x, K_HWIO[:, :, :3], window_strides=(1, 1), padding="SAME",
                        dimension_numbers=("NHWC", "HWIO", "NHWC")), _bytes((1, 6, 6, 3)), "conv"),
    "lhs dilation": (
        lambda x: _conv(x, K_HWIO, window_strides=(1, 1), padding=((2, 2), (2, 2)), lhs_dilation=(2, 2),
                        dimension_numbers=("NHWC", "HWIO", "NHWC")), _bytes((1, 4, 4, 4)), "conv"),
}


@pytest.mark.parametrize("case", CONVS)
def test_conv_bit_exact_and_integer(case):
    fn, x, product = CONVS[case]
    ops, _, data = _compile(fn, x)
    assert product in ops and {"conv", "conv_integer"} - {product} & set(ops) == set(), ops
    _assert_matches_jax(data, fn, x)


def test_constant_weights_stored_as_bytes():
    depth, columns = 784, 512
    w = _bytes((depth, columns))
    x = _bytes((1, depth))

    def fn(x):
        return x.astype(jnp.int32) @ w.astype(jnp.int32)

    ops, meta, data = _compile(fn, x)
    assert ops == ["matmul_integer"]
    assert meta.weights_size < 1.05 * depth * columns  # the i32 form stored 4 * depth * columns
    _assert_matches_jax(data, fn, x)


def test_requantized_model_integer_only():
    fn, x, reference = jax_model()
    ops, meta, data = _compile(fn, x, target="x86_64-gpr")
    assert ops.count("matmul_integer") == 2 and "matmul" not in ops and meta.fpu == "none"
    assert fp_instructions(data, EM_X86_64) == []
    if HOST_ARCH == "x86_64":
        for got, want in zip(runtime.load(data)(x), reference(x)):
            np.testing.assert_array_equal(got, want)
    _assert_matches_jax(_compile(fn, x)[2], fn, x)


def test_conv_integer_only():
    fn, x, _ = CONVS["NHWC stride and padding"]
    ops, meta, data = _compile(fn, x, target="x86_64-gpr")
    assert "conv_integer" in ops and meta.fpu == "none"
    shown = int8_nodes(read_cbx(data).ir_text)  # what `cerebroc inspect` lists as int8
    assert shown["float_conv"] == 0 and [where.split(" -> ")[0] for where in shown["int8"]] == ["conv"]
    if HOST_ARCH == "x86_64":
        _assert_matches_jax(data, fn, x)
