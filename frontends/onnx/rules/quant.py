"""Quantized ONNX: QuantizeLinear/DequantizeLinear (the QDQ form onnxruntime's quantize_static writes),
DynamicQuantizeLinear, MatMulInteger, ConvInteger, QLinearMatMul and QLinearConv.

Integer products run in i32 exactly (matmul_integer; 1-D/2-D ConvInteger and QLinearConv as conv_integer,
rules/conv_int.py, others as an i32 conv of the zero-point-shifted operands). Requantization follows ONNX's
reference: the accumulator times the f32 multiplier x_scale * w_scale / y_scale, in f64, plus the zero
point, rounded half to even and saturated to the output type. Quantizing divides by the scale in f32,
rounds half to even, adds the zero point and saturates. Scales and zero points may be runtime values;
constant ones fold, so a QDQ model's weights arrive dequantized (the float model the QDQ graph means).

QDQ products run as integers, as onnxruntime fuses them: a QuantizeLinear (u8/i8, per tensor) of a
MatMul/Gemm whose operands are DequantizeLinear outputs (the activation per tensor, the weights per tensor
or per output column, a Gemm bias dequantized from i32 at scale x_scale * w_scale) becomes QLinearMatMul's
computation: matmul_integer of the codes, the i32 bias added, requantize(). Each DequantizeLinear output is
remembered with its codes (_DEQUANTIZED) so the QuantizeLinear rule can find them, through the reshapes
MatMul adds and a Gemm's transposed weights. A QDQ 2-D Conv (bias at x_scale * w_scale, CONV_INTEGER_MIN_CHANNELS
or more input channels per group) becomes QLinearConv's computation on conv_integer the same way. Other ops
(Add, activations, thin convs) stay float between their DequantizeLinear and QuantizeLinear.

A DequantizeLinear of a float QuantizeLinear's codes (same zero point) skips the round trip through the
integer type: code - zero is clamp(round(x / scale), lo - zero, hi - zero) computed in f32, equal to the
integer path for every input (_QUANTIZED remembers the rounded value). ORT's QDQ transformer has 8 such
pairs in each GELU alone: the fused loop is one long dependent chain per vector, so every op saved counts.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.compiler.ir.int8_layouts import pair_layout, pairs_pay
from cerebro.compiler.ir.ops import CONV_INTEGER_MIN_CHANNELS
from cerebro.frontends.onnx import build as b
from cerebro.frontends.onnx.rules import conv_int, nn
from cerebro.frontends.onnx.table import Ctx, rule
from cerebro.frontends.onnx.types import elem_dtype

RANGES = {DType.u8: (0, 255), DType.i8: (-128, 127), DType.u16: (0, 65535), DType.i16: (-32768, 32767)}
LIMITS = {
    "QuantizeLinear": "u8/i8/u16/i16 outputs (not int4/int2/float8/float4); the division by the scale in f32",
    "DequantizeLinear": "u8/i8/u16/i16/i32 inputs (not int4/int2/float8/float4)",
    "MatMulInteger": "operands of rank 2 or more; zero points scalar, per row of A or per column of B",
    "QLinearMatMul": "operands of rank 2 or more; zero points scalar (B's also per column); f16 scales "
                     "are widened to f32",
    "ConvInteger": "the input's zero point scalar; the kernel's scalar or per output channel",
    "QLinearConv": "the input's zero point scalar; the kernel's scalar or per output channel",
}


def _per_axis(ctx: Ctx, v: Value, x: Value) -> Value:
    """A scale or zero point (scalar, 1-D along the axis attribute, or blocked: x's shape with that axis in
    blocks of block_size) shaped to broadcast against x."""
    if v.size == 1:  # the axis means nothing then (ONNX's default 1 even for a rank-1 x)
        return b.reshape(ctx, v, ())
    axis, block = b.axis(ctx, ctx.attr("axis", 1), x.rank), ctx.attr("block_size", 0)
    if block:
        if v.rank != x.rank or v.shape[axis] * block != x.shape[axis]:
            raise ctx.error(f"blocked parameter {v.shape} does not tile {x.shape} in blocks of {block}")
        split = v.shape[:axis + 1] + (1,) + v.shape[axis + 1:]
        spread = b.expand(ctx, b.reshape(ctx, v, split), v.shape[:axis + 1] + (block,) + v.shape[axis + 1:])
        return b.reshape(ctx, spread, x.shape)
    if v.rank != 1 or v.shape[0] != x.shape[axis]:
        raise ctx.error(f"per-axis parameter {v.shape} does not match axis {axis} of {x.shape}")
    return b.reshape(ctx, v, tuple(x.shape[axis] if d == axis else 1 for d in range(x.rank)))


def _f32(ctx: Ctx, v: Value) -> Value:
    return v if v.dtype is DType.f32 else b.cast(ctx, v, DType.f32)


def saturate(ctx: Ctx, x: Value, dtype: DType) -> Value:
    """x (integral floats: rounded already) clamped to dtype's range, as dtype."""
    if dtype not in RANGES:
        raise ctx.error(f"quantized type {dtype.name} is not supported (u8, i8, u16, i16 are)")
    lo, hi = RANGES[dtype]
    clamped = b.binary(ctx, "min", b.binary(ctx, "max", x, b.scalar(ctx, lo, x)), b.scalar(ctx, hi, x))
    return b.cast(ctx, clamped, dtype)


def _output_type(ctx: Ctx, zero: Value | None) -> DType:
    if zero is not None:
        return zero.dtype
    code = ctx.attr("output_dtype", 0)
    return elem_dtype(code, ctx.loc) if code else DType.u8


@dataclass(frozen=True)
class Dequantized:
    """What a DequantizeLinear output was made from (per tensor, or per `axis` of codes)."""

    codes: Value
    scale: Value
    zero: Value | None
    axis: int


_DEQUANTIZED: weakref.WeakKeyDictionary[Value, Dequantized] = weakref.WeakKeyDictionary()
_PRODUCT_TYPES = (DType.u8, DType.i8)


@dataclass(frozen=True)
class Quantized:
    """A float QuantizeLinear's codes before the zero point: round(x / scale) in f32, the zero point, the type."""

    rounded: Value
    zero: Value | None
    dtype: DType


_QUANTIZED: weakref.WeakKeyDictionary[Value, Quantized] = weakref.WeakKeyDictionary()


_FOLDED_PERMS = {2: (1, 0), 4: (2, 3, 1, 0)}  # Gemm's transB; Conv's kernel as [KH, KW, Cin/g, Cout]


def _dequantized(v: Value) -> tuple[Dequantized, tuple[int, ...] | None] | None:
    """(what v dequantizes, the transpose perm that makes v of it, or None): v itself, through reshapes of
    a per-tensor one, through a transpose node (any perm of a per-tensor one), or a constant equal to a
    constant one reshaped or permuted by _FOLDED_PERMS (a Gemm's transB, a Conv kernel: folded at import)."""
    found = _DEQUANTIZED.get(v)
    if found is not None:
        return found, None
    node = v.producer
    if node is not None and node.op == "reshape":
        inner = _dequantized(node.inputs[0])
        return inner if inner is not None and inner[0].scale.size == 1 and not inner[1] else None
    if node is not None and node.op == "transpose":
        inner = _DEQUANTIZED.get(node.inputs[0])
        perm = node.attrs["perm"]
        usable = inner is not None and (perm == (1, 0) or inner.scale.size == 1)
        return (inner, perm) if usable else None
    if v.is_const:
        perm = _FOLDED_PERMS.get(v.rank)
        for value, inner in list(_DEQUANTIZED.items()):
            if not value.is_const or value.size != v.size:
                continue
            if (perm and value.rank == v.rank and tuple(value.shape[p] for p in perm) == v.shape
                    and np.array_equal(value.data.transpose(perm), v.data)):
                return inner, perm
            if _squeezed(value.shape) == _squeezed(v.shape) and np.array_equal(value.data.reshape(v.shape), v.data):
                return inner, None
    return None


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _weights_side(ctx: Ctx, w: Value) -> tuple[Value, Value, Value | None] | None:
    """(codes as [K, N], scale scalar or [N], zero point scalar or [N]) of a dequantized weight operand."""
    found = _dequantized(w)
    if found is None or found[0].codes.rank != 2:
        return None
    source, perm = found
    transposed = perm == (1, 0)
    if perm not in (None, (1, 0)) or source.scale.size != 1 and source.axis != (0 if transposed else 1):
        return None  # scaled along K: no per-column requantization
    codes = b.transpose(ctx, source.codes, (1, 0)) if transposed else source.codes
    zero = None if source.zero is None else b.reshape(ctx, source.zero, (source.zero.size,))
    return codes, b.reshape(ctx, source.scale, (source.scale.size,)), zero


def _integer_bias(bias: Value | None, scale: np.ndarray) -> Value | None:
    """The i32 codes of a bias dequantized at scale x_scale * w_scale (zero point 0), else None."""
    traced = _dequantized(bias) if bias is not None else None
    found = traced[0] if traced is not None and not traced[1] else None
    if found is None or found.codes.dtype is not DType.i32 or not found.scale.is_const:
        return None
    if found.zero is not None and (not found.zero.is_const or found.zero.data.any()):
        return None
    matches = np.allclose(found.scale.data.astype(np.float64), scale, rtol=1e-6, atol=0)
    return found.codes if matches and found.codes.rank == 1 else None


def _qdq_product(ctx: Ctx, x: Value, y_scale: Value, y_zero: Value | None) -> Value | None:
    """x's QuantizeLinear computed as QLinearMatMul (+ an i32 bias) when x is a product of dequantized
    operands (see the module doc), else None."""
    if y_zero is None or y_zero.dtype not in _PRODUCT_TYPES or y_scale.size != 1 or y_zero.size != 1:
        return None
    product, bias = x, None
    while product.producer is not None and product.producer.op == "reshape":
        product = product.producer.inputs[0]
    if product.producer is not None and product.producer.op == "add":
        left, right = product.producer.inputs
        product, bias = (left, right) if left.producer is not None and left.producer.op == "matmul" else (right, left)
    node = product.producer
    if node is None or node.op != "matmul" or node.attrs or node.inputs[0].rank != 2:
        return None
    found = _dequantized(node.inputs[0])
    weights = _weights_side(ctx, node.inputs[1])
    if found is None or found[1] or weights is None or found[0].scale.size != 1:
        return None
    source = found[0]
    if source.codes.dtype not in _PRODUCT_TYPES or weights[0].dtype not in _PRODUCT_TYPES:
        return None
    codes, w_scale, w_zero = weights
    acc = matmul_integer(ctx, b.reshape(ctx, source.codes, node.inputs[0].shape), codes,
                         None if source.zero is None else b.reshape(ctx, source.zero, ()), w_zero)
    if bias is not None:
        if not (source.scale.is_const and w_scale.is_const):
            return None
        folded = _integer_bias(bias, source.scale.data.astype(np.float32) * w_scale.data.astype(np.float32))
        if folded is None:
            return None
        acc = b.add(ctx, acc, folded)
    y = requantize(ctx, acc, _multiplier(ctx, source.scale, w_scale, y_scale), y_zero, y_zero.dtype)
    return b.reshape(ctx, y, x.shape)


def _qdq_conv(ctx: Ctx, x: Value, y_scale: Value, y_zero: Value | None) -> Value | None:
    """x's QuantizeLinear computed as QLinearConv when x is a 2-D Conv (+ an i32 bias) of a per-tensor
    dequantized input and a dequantized kernel (per tensor or per output channel) with CONV_INTEGER_MIN_CHANNELS
    or more input channels per group: conv_integer of the codes, the bias, requantize(); else None."""
    if y_zero is None or y_zero.dtype not in _PRODUCT_TYPES or y_scale.size != 1 or y_zero.size != 1:
        return None
    first = x.producer  # the Conv rule's channels_first transpose
    if first is None or first.op != "transpose" or x.rank != 4:
        return None
    product, bias = first.inputs[0], None
    if product.producer is not None and product.producer.op == "add":
        left, right = product.producer.inputs
        product, bias = (left, right) if left.producer is not None and left.producer.op == "conv" else (right, left)
    node = product.producer
    thin = node is not None and node.op == "conv" and node.inputs[1].shape[2] < CONV_INTEGER_MIN_CHANNELS
    if node is None or node.op != "conv" or node.attrs.get("lhs_dilation") or thin:
        return None
    found, kernel = _dequantized(node.inputs[0]), _dequantized(node.inputs[1])
    if found is None or kernel is None or kernel[1] != _FOLDED_PERMS[4] or found[0].scale.size != 1:
        return None
    source, weights = found[0], kernel[0]
    per_channel = weights.scale.size != 1
    if (source.codes.dtype not in _PRODUCT_TYPES or weights.codes.dtype not in _PRODUCT_TYPES
            or per_channel and weights.axis != 0 or not (source.scale.is_const and weights.scale.is_const)):
        return None
    codes = b.transpose(ctx, source.codes, found[1]) if found[1] else source.codes
    channels = weights.codes.shape[0]
    w_zero = _zero_vector(ctx, weights.zero, weights.codes, channels, "the kernel's")
    x_zero = b.reshape(ctx, source.zero, ()) if source.zero is not None else ctx.const(
        np.zeros((), source.codes.dtype.numpy), source.codes.dtype)
    attrs = {key: node.attrs[key] for key in ("strides", "padding", "rhs_dilation", "groups") if key in node.attrs}
    acc = ctx.add("conv_integer", codes, b.transpose(ctx, weights.codes, (0, 2, 3, 1)), x_zero, w_zero, **attrs)
    w_scale = b.reshape(ctx, weights.scale, (weights.scale.size,))
    if bias is not None:
        folded = _integer_bias(bias, source.scale.data.astype(np.float32) * w_scale.data.astype(np.float32))
        if folded is None:
            return None
        acc = b.add(ctx, acc, folded)
    y = requantize(ctx, acc, _multiplier(ctx, source.scale, w_scale, y_scale), y_zero, y_zero.dtype)
    return b.transpose(ctx, y, first.attrs["perm"])


@rule("QuantizeLinear", since=10)
def quantize_linear(ctx: Ctx, x: Value, scale: Value, zero: Value | None = None) -> Value:
    product = None
    if ctx.attr("block_size", 0) == 0:
        product = _qdq_product(ctx, x, scale, zero) or _qdq_conv(ctx, x, scale, zero)
    if product is not None:
        return product
    work = x.dtype if x.dtype is DType.f64 else DType.f32
    y = b.div(ctx, b.cast(ctx, x, work) if x.dtype is not work else x,
              b.cast(ctx, _per_axis(ctx, scale, x), work))
    rounded = y = ctx.add("round", y)
    if zero is not None:
        y = b.add(ctx, y, b.cast(ctx, _per_axis(ctx, zero, x), work))
    codes = saturate(ctx, y, _output_type(ctx, zero))
    if work is DType.f32 and (zero is None or zero.size == 1):
        _QUANTIZED[codes] = Quantized(rounded, zero, codes.dtype)
    return codes


def _zero_of(zero: Value | None) -> float | None:
    """A scalar zero point's constant value (0 when absent), else None."""
    if zero is None:
        return 0.0
    return float(zero.data.reshape(-1)[0]) if zero.is_const and zero.size == 1 else None


def _shifted_codes(ctx: Ctx, x: Value, zero: Value | None) -> Value | None:
    """x - zero as f32 when x is a float QuantizeLinear's codes with this same zero point, without the round
    trip through x's integer type: clamp(r + 0, lo - z, hi - z) for r = round(x / scale) (exact: integers
    below 2^24, and r beyond the range saturates either way; + 0 turns round's -0 into the +0 that code - z
    gives), and -z where r is NaN (NaN quantizes to code 0)."""
    found = _QUANTIZED.get(x)
    if found is None or found.dtype is not x.dtype:
        return None
    z, z_quantized = _zero_of(zero), _zero_of(found.zero)
    if z is None or z != z_quantized:
        return None
    r, (lo, hi) = found.rounded, RANGES[x.dtype]
    clamped = b.binary(ctx, "min", b.binary(ctx, "max", b.add(ctx, r, b.scalar(ctx, 0.0, r)),
                                            b.scalar(ctx, lo - z, r)), b.scalar(ctx, hi - z, r))
    return b.select(ctx, b.binary(ctx, "ne", r, r), b.scalar(ctx, 0.0 - z, r), clamped)


@rule("DequantizeLinear", since=10)
def dequantize_linear(ctx: Ctx, x: Value, scale: Value, zero: Value | None = None) -> Value:
    if x.dtype not in RANGES and x.dtype is not DType.i32:
        raise ctx.error(f"dequantizing {x.dtype.name} is not supported (u8, i8, u16, i16, i32 are)")
    y = _shifted_codes(ctx, x, zero)
    if y is None:
        y = _f32(ctx, x)
        if zero is not None:
            y = b.sub(ctx, y, _f32(ctx, _per_axis(ctx, zero, x)))
    y = b.mul(ctx, y, _f32(ctx, _per_axis(ctx, scale, x)))
    code = ctx.attr("output_dtype", 0)
    out = elem_dtype(code, ctx.loc) if code else scale.dtype
    if out is not DType.f32:
        return b.cast(ctx, y, out)
    if not ctx.attr("block_size", 0):
        axis = b.axis(ctx, ctx.attr("axis", 1), x.rank) if scale.size != 1 else 0  # per tensor: no axis
        _DEQUANTIZED[y] = Dequantized(x, scale, zero, axis)
    return y


@rule("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear(ctx: Ctx, x: Value) -> list[Value]:
    """u8 with scale (max(0, max x) - min(0, min x)) / 255 (1 / 255 for an all-zero x) and the zero point
    that maps 0 exactly, as ONNX's reference computes them."""
    def k(value: float) -> Value:
        return b.scalar(ctx, value, x)

    every = list(range(x.rank))
    high = b.binary(ctx, "max", k(0), b.reduce(ctx, "reduce_max", x, every, False))
    low = b.binary(ctx, "min", k(0), b.reduce(ctx, "reduce_min", x, every, False))
    spread = b.select(ctx, b.binary(ctx, "eq", high, low), k(1), b.sub(ctx, high, low))
    scale = b.div(ctx, spread, k(255))
    start = b.sub(ctx, k(0), b.div(ctx, low, scale))
    zero = ctx.add("round", b.binary(ctx, "min", b.binary(ctx, "max", start, k(0)), k(255)))
    y = saturate(ctx, b.add(ctx, ctx.add("round", b.div(ctx, x, scale)), zero), DType.u8)
    return [y, scale, b.cast(ctx, zero, DType.u8)]


def _zero_vector(ctx: Ctx, zero: Value | None, like: Value, n: int, what: str) -> Value:
    """A zero point as the [n] vector matmul_integer reads: absent (0), scalar (repeated) or already [n]."""
    if zero is None:
        return ctx.const(np.zeros(n, like.dtype.numpy), like.dtype)
    if zero.dtype is not like.dtype:
        raise ctx.error(f"{what} zero point is {zero.dtype.name}, its operand {like.dtype.name}")
    if zero.size == 1:
        return b.expand(ctx, b.reshape(ctx, zero, (1,)), (n,))
    if zero.shape != (n,):
        raise ctx.error(f"{what} zero point of shape {zero.shape}: scalar or [{n}] is supported")
    return zero


def matmul_integer(ctx: Ctx, a: Value, bm: Value, a_zero: Value | None, b_zero: Value | None) -> Value:
    """i32 a @ bm with zero points, batch dims broadcast as MatMul's."""
    if a.rank < 2 or bm.rank < 2:
        raise ctx.error(f"operands of rank {a.rank} and {bm.rank}: rank 2 or more is supported")
    batch = b.broadcast_shape(a.shape[:-2], bm.shape[:-2])
    a = b.expand(ctx, b.to_rank(ctx, a, len(batch) + 2), batch + a.shape[-2:])
    bm = b.expand(ctx, b.to_rank(ctx, bm, len(batch) + 2), batch + bm.shape[-2:])
    zeros = _zero_vector(ctx, a_zero, a, a.shape[-2], "A's"), _zero_vector(ctx, b_zero, bm, bm.shape[-1], "B's")
    if bm.is_const and zeros[1].is_const and not zeros[1].data.any() and pairs_pay(a.shape[-2], bm.shape[-2]):
        return ctx.add("matmul_integer", a, ctx.const(pair_layout(bm.data), bm.dtype), *zeros, transpose_b=True,
                       pairs_b=True)  # register tiles of rows x columns (codegen/matmul_int.py)
    if bm.is_const:  # weights: laid out [*B, N, K] once, for the dot-product form (codegen/matmul_int.py)
        columns_first = b.transpose(ctx, bm, tuple(range(bm.rank - 2)) + (bm.rank - 1, bm.rank - 2))
        return ctx.add("matmul_integer", a, columns_first, *zeros, transpose_b=True)
    return ctx.add("matmul_integer", a, bm, *zeros)


@rule("MatMulInteger", since=10)
def matmul_integer_rule(ctx: Ctx, a: Value, bm: Value, a_zero: Value | None = None,
                        b_zero: Value | None = None) -> Value:
    return matmul_integer(ctx, a, bm, a_zero, b_zero)


def requantize(ctx: Ctx, acc: Value, multiplier: Value, zero: Value | None, dtype: DType) -> Value:
    """saturate(round(acc * multiplier + zero)) with acc (i32) and the f32 multiplier widened to f64, as the
    reference's numpy promotion computes it (exact: no second rounding before the final one)."""
    y = b.mul(ctx, b.cast(ctx, acc, DType.f64), b.cast(ctx, multiplier, DType.f64))
    if zero is not None:
        y = b.add(ctx, y, b.cast(ctx, zero, DType.f64))
    return saturate(ctx, ctx.add("round", y), dtype)


def _multiplier(ctx: Ctx, x_scale: Value, w_scale: Value, y_scale: Value) -> Value:
    return b.div(ctx, b.mul(ctx, _f32(ctx, x_scale), _f32(ctx, w_scale)), _f32(ctx, y_scale))


@rule("QLinearMatMul", since=10)
def qlinear_matmul(ctx: Ctx, a: Value, a_scale: Value, a_zero: Value, bm: Value, b_scale: Value,
                   b_zero: Value, y_scale: Value, y_zero: Value) -> Value:
    if a_zero.size != 1:
        raise ctx.error("A's zero point must be a scalar")
    acc = matmul_integer(ctx, a, bm, a_zero, b_zero)
    return requantize(ctx, acc, _multiplier(ctx, a_scale, b_scale, y_scale), y_zero, y_zero.dtype)


def _shifted(ctx: Ctx, v: Value, zero: Value | None, per_channel: bool) -> Value:
    """v - zero in i32; a per-channel zero point runs along v's first axis (a kernel's output channels)."""
    wide = b.cast(ctx, v, DType.i32)
    if zero is None:
        return wide
    if zero.size != 1 and not (per_channel and zero.shape == (v.shape[0],)):
        raise ctx.error(f"zero point of shape {zero.shape} is not supported for an operand {v.shape}")
    shape = () if zero.size == 1 else (v.shape[0],) + (1,) * (v.rank - 1)
    return b.sub(ctx, wide, b.reshape(ctx, b.cast(ctx, zero, DType.i32), shape))


@rule("ConvInteger", since=10)
def conv_integer(ctx: Ctx, x: Value, w: Value, x_zero: Value | None = None, w_zero: Value | None = None) -> Value:
    return conv_int.integer_conv(ctx, x, w, x_zero, w_zero) or nn.conv(
        ctx, _shifted(ctx, x, x_zero, False), _shifted(ctx, w, w_zero, True))


@rule("QLinearConv", since=10)
def qlinear_conv(ctx: Ctx, x: Value, x_scale: Value, x_zero: Value, w: Value, w_scale: Value, w_zero: Value,
                 y_scale: Value, y_zero: Value, bias: Value | None = None) -> Value:
    acc = conv_int.integer_conv(ctx, x, w, x_zero, w_zero, bias) or nn.conv(
        ctx, _shifted(ctx, x, x_zero, False), _shifted(ctx, w, w_zero, True), bias)
    if w_scale.size != 1:  # per output channel: along the output's channel axis
        w_scale = b.reshape(ctx, w_scale, (1, w_scale.size) + (1,) * (acc.rank - 2))
    return requantize(ctx, acc, _multiplier(ctx, x_scale, w_scale, y_scale), y_zero, y_zero.dtype)
