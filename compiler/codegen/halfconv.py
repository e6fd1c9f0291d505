"""f16 and bf16 <-> f32 conversions by integer operations on the bits.

Both 16-bit floats live in buffers and registers as i16 bits. LLVM's fpext/fptrunc on `half` become
library calls on x86-64 without F16C (none in the kernel), and llvmlite has no `bfloat` type, so the
conversions are spelled out: widening is exact; narrowing rounds to nearest even, overflows to
infinity, keeps subnormals, and makes a NaN a quiet NaN of the same sign as XLA does (f16: the
payload's top bits kept, as the hardware; bf16: the payload dropped).
Scalars or vectors alike: every constant is splatted to the operand's type.
"""

from __future__ import annotations

from llvmlite import ir

from cerebro.compiler.ir.dtypes import DType

_I16, _I32, _F32 = ir.IntType(16), ir.IntType(32), ir.FloatType()


def _like(value: ir.Value, elem: ir.Type) -> ir.Type:
    """elem, or a vector of elem as wide as value."""
    return ir.VectorType(elem, value.type.count) if isinstance(value.type, ir.VectorType) else elem


def _k(value: ir.Value, elem: ir.Type, constant: int | float) -> ir.Constant:
    ty = _like(value, elem)
    scalar = ir.Constant(elem, constant)
    return ir.Constant(ty, [scalar] * ty.count) if isinstance(ty, ir.VectorType) else scalar


def _f16_to_f32(b: ir.IRBuilder, bits: ir.Value) -> ir.Value:
    u = b.zext(bits, _like(bits, _I32))
    sign = b.shl(b.and_(u, _k(u, _I32, 0x8000)), _k(u, _I32, 16))
    magnitude = b.shl(b.and_(u, _k(u, _I32, 0x7FFF)), _k(u, _I32, 13))
    # exponent rebias by one exact multiply (2^(127-15)); subnormal halves become normal floats
    scaled = b.bitcast(b.fmul(b.bitcast(magnitude, _like(u, _F32)), _k(u, _F32, 2.0 ** 112)), u.type)
    special = b.icmp_unsigned(">=", magnitude, _k(u, _I32, 0x7C00 << 13))  # inf or NaN: keep the payload
    finite_or_not = b.select(special, b.or_(magnitude, _k(u, _I32, 0x7F800000)), scaled)
    return b.bitcast(b.or_(finite_or_not, sign), _like(u, _F32))


def _f32_to_f16(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    u = b.bitcast(x, _like(x, _I32))
    sign = b.and_(u, _k(u, _I32, 0x80000000))
    a = b.xor(u, sign)
    nan = b.or_(b.and_(b.lshr(a, _k(u, _I32, 13)), _k(u, _I32, 0x1FF)), _k(u, _I32, 0x7E00))
    huge = b.select(b.icmp_unsigned(">", a, _k(u, _I32, 0x7F800000)), nan, _k(u, _I32, 0x7C00))
    # below 2^-14 (f16 subnormals): adding 0.5 puts the f16 mantissa in the low bits, rounded by the FPU
    magic = _k(u, _F32, 0.5)
    tiny = b.sub(b.bitcast(b.fadd(b.bitcast(a, x.type), magic), u.type), _k(u, _I32, 0x3F000000))
    odd = b.and_(b.lshr(a, _k(u, _I32, 13)), _k(u, _I32, 1))
    rebias = (((15 - 127) << 23) + 0xFFF) & 0xFFFFFFFF
    normal = b.lshr(b.add(b.add(a, _k(u, _I32, rebias)), odd), _k(u, _I32, 13))
    small = b.select(b.icmp_unsigned("<", a, _k(u, _I32, 113 << 23)), tiny, normal)
    magnitude = b.select(b.icmp_unsigned(">=", a, _k(u, _I32, (127 + 16) << 23)), huge, small)
    return b.trunc(b.or_(magnitude, b.lshr(sign, _k(u, _I32, 16))), _like(x, _I16))


def _bf16_to_f32(b: ir.IRBuilder, bits: ir.Value) -> ir.Value:
    u = b.zext(bits, _like(bits, _I32))
    return b.bitcast(b.shl(u, _k(u, _I32, 16)), _like(u, _F32))


def _f32_to_bf16(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    u = b.bitcast(x, _like(x, _I32))
    high = b.lshr(u, _k(u, _I32, 16))
    rounded = b.lshr(b.add(b.add(u, _k(u, _I32, 0x7FFF)), b.and_(high, _k(u, _I32, 1))), _k(u, _I32, 16))
    is_nan = b.icmp_unsigned(">", b.and_(u, _k(u, _I32, 0x7FFFFFFF)), _k(u, _I32, 0x7F800000))
    quiet = b.or_(b.and_(high, _k(u, _I32, 0x8000)), _k(u, _I32, 0x7FC0))  # XLA and ml_dtypes drop the payload
    return b.trunc(b.select(is_nan, quiet, rounded), _like(x, _I16))


def f16_to_f32_in_hardware(b: ir.IRBuilder, bits: ir.Value) -> ir.Value:
    """fpext of the bits read as half: one instruction where targets.widens_f16 (F16C, aarch64); exact, but
    a signalling NaN comes out quiet."""
    return b.fpext(b.bitcast(bits, _like(bits, ir.HalfType())), _like(bits, _F32))


WIDEN = {DType.f16: _f16_to_f32, DType.bf16: _bf16_to_f32}  # i16 bits -> f32
NARROW = {DType.f16: _f32_to_f16, DType.bf16: _f32_to_bf16}  # f32 -> i16 bits
