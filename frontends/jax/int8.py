"""Byte products accumulated in int32 as the IR's integer ops (codegen/matmul_int.py, codegen/conv_int.py).

A dot_general or conv_general_dilated with an int32 result whose operands are int8/uint8 values (given as
such, widened by a convert in the jaxpr as `x.astype(jnp.int32)` writes it, or constants whose values all
fit a byte) is the same sum of exact products wrapping in i32 as matmul_integer/conv_integer with zero
points 0: the weights stay one byte each and the dot-product kernels (vpdpbusd, vpmaddwd, sdot) run it.
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.frontends.jax.context import Context

BYTES = (DType.i8, DType.u8)


def _as_bytes(ctx: Context, v: Value) -> Value | None:
    """The i8/u8 Value whose values v holds exactly, or None."""
    if v.dtype in BYTES:
        return v
    node = v.producer
    if node is not None and node.op == "convert" and node.inputs[0].dtype in BYTES and v.dtype.is_int and (
            v.dtype.itemsize > 1 and (v.dtype.is_signed or node.inputs[0].dtype is DType.u8)):
        return node.inputs[0]  # a widening convert keeps every value
    if v.is_const and v.dtype.is_int and v.size:
        low, high = int(v.data.min()), int(v.data.max())
        for dtype in BYTES:
            info = np.iinfo(dtype.numpy)
            if info.min <= low and high <= info.max:
                return ctx.const(v.data.astype(dtype.numpy), dtype)
    return None


def byte_operands(ctx: Context, out: DType, lhs: Value, rhs: Value) -> tuple[Value, Value] | None:
    """(lhs, rhs) as i8/u8 Values when their int32 product may run as an integer op, else None."""
    if out is not DType.i32:
        return None
    a = _as_bytes(ctx, lhs)
    b = _as_bytes(ctx, rhs) if a is not None else None
    return (a, b) if b is not None else None


def _zeros(ctx: Context, like: Value, shape: tuple[int, ...]) -> Value:
    return ctx.const(np.zeros(shape, like.dtype.numpy), like.dtype)


def matmul(ctx: Context, a: Value, b: Value, b_transposed: bool) -> Value:
    """a[*B, M, K] @ b in i32; b is [*B, K, N], or [*B, N, K] when b_transposed (constant weights)."""
    n = b.shape[-2] if b_transposed else b.shape[-1]
    zeros = _zeros(ctx, a, a.shape[-2:-1]), _zeros(ctx, b, (n,))
    return ctx.add("matmul_integer", a, b, *zeros, **({"transpose_b": True} if b_transposed else {}))


def conv(ctx: Context, x: Value, w: Value, **attrs: object) -> Value:
    """The i32 conv of x[N, H, W, Cin] and w[Cout, KH, KW, Cin/groups]."""
    return ctx.add("conv_integer", x, w, _zeros(ctx, x, ()), _zeros(ctx, w, (w.shape[0],)), **attrs)
