"""The LLVM side of the code generator's data: one dtype -> type table, one load/store pair, and the
small vector and index helpers every kernel shares (matmul, conv, reduce, window, gather, rows, ...).

load/store move elements of an LLVM type, `width` of them at once as one vector, aligned to one
element; load_value/store_value are the same pair keyed by IR dtype, with bool as i1 in registers
and one byte (0/1) in memory.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
from llvmlite import ir

from cerebro.compiler.codegen.loops import i64
from cerebro.compiler.ir.dtypes import DType

I1 = ir.IntType(1)  # a bool in registers
I32 = ir.IntType(32)
ELEMENT_TYPES = {  # the one dtype -> LLVM type table of the code generator
    DType.f32: ir.FloatType(),
    DType.f64: ir.DoubleType(),
    DType.i8: ir.IntType(8),
    DType.u8: ir.IntType(8),
    DType.bool: ir.IntType(8),
    DType.i16: ir.IntType(16),
    DType.u16: ir.IntType(16),
    DType.i32: ir.IntType(32),
    DType.u32: ir.IntType(32),
    DType.i64: ir.IntType(64),
    DType.f16: ir.IntType(16),  # f16/bf16 as their bits: moved as integers, converted by halfconv
    DType.bf16: ir.IntType(16),
}


def element_type(dtype: DType) -> ir.Type:
    """The LLVM type of one buffer element (bool is stored as one byte)."""
    return ELEMENT_TYPES[dtype]


def element_constant(dtype: DType, value: float | int) -> ir.Constant:
    """value as one element of dtype: a float, an integer, or (f16/bf16) its 16 bits rounded as numpy rounds."""
    if dtype.is_half:
        return ir.Constant(element_type(dtype), int(np.array(value, dtype.numpy).view(np.uint16)))
    return ir.Constant(element_type(dtype), float(value) if dtype.is_float else int(value))


def vector_type(elem: ir.Type, width: int) -> ir.Type:
    return elem if width == 1 else ir.VectorType(elem, width)


# constant()'s results, made once per process: llvmlite formats every lane of a vector literal anew for each
# Constant made (a <16 x float> is 16 "float 0.0"), which was half of printing a conv model's module; one
# Constant is formatted once (it caches its text) and is shared, having no parent. By value's repr: 0.0 and
# -0.0 compare equal but differ.
_CONSTANTS: dict[tuple[str, int, str], ir.Constant] = {}


class _Zeros(ir.Constant):
    """An all-zero vector, printed as zeroinitializer; its lanes are kept (llvmlite's shufflevector checks
    a mask's)."""

    def _get_reference(self) -> str:
        return "zeroinitializer"


def constant(elem: ir.Type, value: float | int, width: int = 1) -> ir.Constant:
    """value as elem, in each of `width` lanes (a vector unless width is 1); an all-zero vector (not -0.0)
    prints as zeroinitializer, which LLVM's parser makes of the long form too."""
    key = (str(elem), width, repr(value))
    made = _CONSTANTS.get(key)
    if made is None:
        scalar = ir.Constant(elem, value)
        if width == 1:
            made = scalar
        else:
            zero = value == 0 and math.copysign(1.0, value) > 0
            made = (_Zeros if zero else ir.Constant)(ir.VectorType(elem, width), [scalar] * width)
        _CONSTANTS[key] = made
    return made


def splat(builder: ir.IRBuilder, scalar: ir.Value, width: int) -> ir.Value:
    """Broadcast a scalar into every lane: inserted in lane 0 of a zero vector, shuffled by a zero mask."""
    if width == 1:
        return scalar
    zeros = constant(scalar.type, 0, width)  # ir.Constant(vector type, None) prints every lane
    vector = builder.insert_element(zeros, scalar, constant(I32, 0))
    return builder.shuffle_vector(vector, zeros, constant(I32, 0, width))


def index(builder: ir.IRBuilder, offset: int, *terms: tuple[ir.Value, int], nonnegative: bool = False) -> ir.Value:
    """offset + sum(value * scale) in i64, folding the constant parts in Python. nonnegative: every
    value, scale and partial sum is >= 0 (an in-bounds walk of a buffer), which LLVM is told too (nuw)."""
    flags = ("nsw", "nuw") if nonnegative else ("nsw",)
    total: ir.Value | None = None
    for value, scale in terms:
        if scale == 0:
            continue
        term = value if scale == 1 else builder.mul(value, i64(scale), flags=flags)
        total = term if total is None else builder.add(total, term, flags=flags)
    if total is None:
        return i64(offset)
    return total if offset == 0 else builder.add(total, i64(offset), flags=flags)


def opaque(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """value through an empty inline asm (no code, any target): LLVM no longer sees how it was computed
    (`freeze` did not hide it: InstCombine moved it to the operands), nor that it is a constant."""
    launder = ir.InlineAsm(ir.FunctionType(value.type, [value.type]), "", "=r,0")
    return builder.call(launder, [value])


def byte_size(elem: ir.Type) -> int:
    """Bytes of one scalar of elem (its alignment in a buffer)."""
    return 4 if isinstance(elem, ir.FloatType) else 8 if isinstance(elem, ir.DoubleType) else elem.width // 8


def load(builder: ir.IRBuilder, base: ir.Value, at: ir.Value, elem: ir.Type, width: int = 1) -> ir.Value:
    """Load `width` consecutive elements (a vector unless width is 1) from base[at]."""
    pointer = builder.gep(base, [at], inbounds=True, source_etype=elem)
    return builder.load(pointer, typ=vector_type(elem, width), align=byte_size(elem))


def store(builder: ir.IRBuilder, value: ir.Value, base: ir.Value, at: ir.Value, elem: ir.Type) -> None:
    pointer = builder.gep(base, [at], inbounds=True, source_etype=elem)
    builder.store(value, pointer, align=byte_size(elem))



# Generated code also runs inside cerebro.ko on the calling task's 16 KiB kernel stack, where the syscall and
# ioctl path, model_glue.c and the entry function already use a few KiB and a stage calls helpers (mathfn,
# subgraph bodies): a function's stack arrays together stay within STACK_ARRAY_BYTES, and its whole frame
# (arrays, spills, saved registers) within STACK_FRAME_BYTES, which compiler/stack_check.py proves on the
# object in `cerebroc kmod build`. An emitter whose arrays grow with a shape works in chunks that fit.
STACK_ARRAY_BYTES = 4096
STACK_FRAME_BYTES = STACK_ARRAY_BYTES + 2048
_ARRAY_BYTES: weakref.WeakKeyDictionary[ir.Function, int] = weakref.WeakKeyDictionary()


class StackBudgetError(ValueError):
    """An emitter asked for more stack arrays in one function than STACK_ARRAY_BYTES (a code generator bug)."""


def stack_array(builder: ir.IRBuilder, elem: ir.Type, count: int, name: str = "", align: int = 0) -> ir.Value:
    """An array of count elem in the function's entry frame (its pointer typed by the alloca), counted
    against the function's STACK_ARRAY_BYTES. align: bytes (0: elem's own). The alloca goes in the entry
    block, wherever the builder is: elsewhere LLVM would size the frame at run time (per loop trip)."""
    fn = builder.function
    size = count * (8 if isinstance(elem, ir.PointerType) else byte_size(elem))
    used = _ARRAY_BYTES.get(fn, 0) + size
    if used > STACK_ARRAY_BYTES:
        raise StackBudgetError(f"function {fn.name}: stack array '{name}' of {size} bytes brings its arrays to "
                               f"{used}, over the {STACK_ARRAY_BYTES}-byte budget of a kernel-stack frame")
    _ARRAY_BYTES[fn] = used
    # at the entry block's start: one after other instructions there is sized at run time once a pass splits
    # the block (a 3x3/2 max pool's was)
    block = builder.block
    builder.position_at_start(fn.entry_basic_block)
    array = builder.alloca(elem, count, name)
    builder.position_at_end(block)
    if align:
        array.align = align
    return array


def stack_fits(*sizes: int) -> bool:
    """Whether arrays of these byte sizes fit one function's STACK_ARRAY_BYTES (for an emitter choosing a path)."""
    return sum(sizes) <= STACK_ARRAY_BYTES


def load_value(builder: ir.IRBuilder, base: ir.Value, at: ir.Value, dtype: DType) -> ir.Value:
    """Element `at` of a dtype buffer as a register value: load() of its element type, bool becoming i1."""
    value = load(builder, base, at, element_type(dtype))
    return builder.trunc(value, I1) if dtype is DType.bool else value


def store_value(builder: ir.IRBuilder, value: ir.Value, base: ir.Value, at: ir.Value, dtype: DType) -> None:
    """The inverse of load_value: store() of the element type, an i1 bool widened to its byte."""
    store(builder, builder.zext(value, element_type(dtype)) if dtype is DType.bool else value, base, at,
          element_type(dtype))


def _suffix(ty: ir.Type) -> str:
    if isinstance(ty, ir.VectorType):
        return f"v{ty.count}{_suffix(ty.element)}"
    if isinstance(ty, ir.FloatType):
        return "f32"
    if isinstance(ty, ir.DoubleType):
        return "f64"
    return f"i{ty.width}"


def intrinsic(module: ir.Module, name: str, ty: ir.Type, arity: int) -> ir.Function:
    """Declare (once) an overloaded LLVM intrinsic such as llvm.fmuladd on type ty."""
    return _declare(module, name, ty, [ty] * arity)


def call_intrinsic(builder: ir.IRBuilder, name: str, *args: ir.Value) -> ir.Value:
    """Call the LLVM intrinsic `name` (llvm.sqrt) overloaded on its first operand's type, which it returns;
    later operands may differ (llvm.ctlz's i1 flag)."""
    ty = args[0].type
    return builder.call(_declare(builder.module, name, ty, [a.type for a in args]), list(args))


def _declare(module: ir.Module, name: str, ty: ir.Type, params: list[ir.Type]) -> ir.Function:
    mangled = f"{name}.{_suffix(ty)}"
    existing = module.globals.get(mangled)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(ty, params), name=mangled)


def is_float(ty: ir.Type) -> bool:
    scalar = ty.element if isinstance(ty, ir.VectorType) else ty
    return isinstance(scalar, (ir.FloatType, ir.DoubleType))


def multiply_add(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, acc: ir.Value) -> ir.Value:
    """acc + a*b: one fused fma for floats, mul+add (wrapping) for integers."""
    if is_float(acc.type):
        return builder.call(intrinsic(builder.module, "llvm.fmuladd", acc.type, 3), [a, b, acc])
    return builder.add(builder.mul(a, b), acc)
