"""Elementwise ops with broadcasting: unary, binary, compare, select, convert.

One loop nest over the output; adjacent dims that every operand walks the same
way are merged first, so the innermost loop is long and contiguous and LLVM
vectorises it. Scalar semantics come from rule tables keyed by (op, kind),
kind being 'f' (float), 'i' (signed int), 'u' (unsigned int) or 'b' (bool, i1 in
registers and one byte 0/1 in memory).

Integer division follows XLA (the IR's meaning, compiler/ir/interpret.py) without ever trapping
(generated code may run inside the kernel): x / 0 is -1 (all ones), x rem 0 is x, INT_MIN / -1
is INT_MIN and INT_MIN rem -1 is 0.
Float rem is C fmod, exact (mathfn.fmod).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from llvmlite import ir

from cerebro.compiler.codegen import halfconv, mathfn
from cerebro.compiler.codegen.llvm_types import (
    I1,
    call_intrinsic,
    constant,
    element_constant,
    element_type,
    index,
    load,
    load_value,
    splat,
    store,
    store_value,
)
from cerebro.compiler.codegen.loops import for_nest, for_range, i64
from cerebro.compiler.codegen.partition import for_phases, parts_of, share
from cerebro.compiler.codegen.registry import EmitContext, SizeRules, UnitsRule, emitter, sizes_as_arguments
from cerebro.compiler.ir import DType, IRError, Node, Value
from cerebro.compiler.ir.fused import FUSED
from cerebro.compiler.ir.ops import BINARY, COMPARE, UNARY
from cerebro.compiler.ir.strides import broadcast_strides
from cerebro.compiler.targets import f32_lanes


def kind(dtype: DType) -> str:
    if dtype.is_half:  # no rules of its own: f16/bf16 are only converted (halfconv) and moved
        return "h"
    if dtype.is_float:
        return "f"
    if dtype is DType.bool:
        return "b"
    return "i" if dtype.is_signed else "u"


def _fsign(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    one, zero = constant(x.type, 1), constant(x.type, 0)
    neg = b.select(b.fcmp_ordered("<", x, zero), constant(x.type, -1), x)
    return b.select(b.fcmp_ordered(">", x, zero), one, neg)


def _isign(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    zero = constant(x.type, 0)
    neg = b.select(b.icmp_signed("<", x, zero), constant(x.type, -1), zero)
    return b.select(b.icmp_signed(">", x, zero), constant(x.type, 1), neg)


def _intr(name: str) -> Callable[[ir.IRBuilder, ir.Value], ir.Value]:
    return lambda b, x: call_intrinsic(b, f"llvm.{name}", x)


def _identity(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return x


ScalarFn = Callable[..., ir.Value]

UNARY_RULES: dict[tuple[str, str], ScalarFn] = {
    ("neg", "f"): lambda b, x: b.fneg(x),
    ("abs", "f"): _intr("fabs"),
    ("sqrt", "f"): _intr("sqrt"),
    ("rsqrt", "f"): lambda b, x: b.fdiv(constant(x.type, 1), call_intrinsic(b, "llvm.sqrt", x)),
    ("reciprocal", "f"): lambda b, x: b.fdiv(constant(x.type, 1), x),
    ("floor", "f"): _intr("floor"),
    ("ceil", "f"): _intr("ceil"),
    ("round", "f"): _intr("roundeven"),
    ("sign", "f"): _fsign,
    ("is_finite", "f"): lambda b, x: b.fcmp_ordered("<", call_intrinsic(b, "llvm.fabs", x),
                                                    constant(x.type, math.inf)),
    **{(op, "f"): fn for op, fn in mathfn.UNARY.items()},
    ("neg", "i"): lambda b, x: b.sub(constant(x.type, 0), x),
    ("neg", "u"): lambda b, x: b.sub(constant(x.type, 0), x),
    ("abs", "i"): lambda b, x: b.select(b.icmp_signed("<", x, constant(x.type, 0)), b.sub(constant(x.type, 0), x), x),
    ("abs", "u"): _identity,
    ("sign", "i"): _isign,
    ("sign", "u"): lambda b, x: b.zext(b.icmp_unsigned("!=", x, constant(x.type, 0)), x.type),
    ("not", "i"): lambda b, x: b.not_(x),
    ("not", "u"): lambda b, x: b.not_(x),
    ("not", "b"): lambda b, x: b.not_(x),
    **{(op, k): _identity for op in ("floor", "ceil", "round") for k in "iu"},
    **{("is_finite", k): (lambda b, x: ir.Constant(I1, 1)) for k in "iub"},
}


def _signbit(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    lanes = x.type.count if isinstance(x.type, ir.VectorType) else 0  # a vector: codegen/epilogue.py VECTOR_OPS
    bits = ir.IntType(64 if isinstance(x.type, ir.DoubleType) else 32)
    bits = ir.VectorType(bits, lanes) if lanes else bits
    return b.icmp_signed("<", b.bitcast(x, bits), ir.Constant(bits, None))


def _splat_of(v: ir.Value) -> float | None:
    """The float in every lane of v if it is a float constant or llvm_types.splat of one (a zero-mask
    shuffle of an insertelement into lane 0), else None."""
    if isinstance(v, ir.ShuffleVector):
        inserted, _, mask = v.operands
        if not (isinstance(inserted, ir.InsertElement) and inserted.operands[2].constant == 0
                and all(lane.constant == 0 for lane in mask.constant)):
            return None
        v = inserted.operands[1]
    if isinstance(v, ir.Constant) and isinstance(v.type, (ir.FloatType, ir.DoubleType)):
        return float(v.constant)
    return None


def _fextreme(larger: bool) -> ScalarFn:
    """max/min as XLA's: NaN propagates (x if x is NaN, else y if y is), and -0 < +0. Against a non-NaN
    constant c, either side (relu's max(x, 0), a clamp's bounds), the tie rule is decided in Python: x where
    it beats c, is NaN, or ties a zero c that loses the tie (max's -0, min's +0), else c (equal non-zeros
    have equal bits) -- one unordered compare and a select instead of the NaN, tie and sign-bit tests (the
    benchmark cnn's LLVM IR 5% shorter; MobileNetV3's hardswish clamps 4% faster, same outputs)."""
    order = ">" if larger else "<"

    def against(b: ir.IRBuilder, x: ir.Value, c: ir.Value, value: float) -> ir.Value:
        # the tie goes to x only where c is the zero that loses it: max's -0, min's +0
        loses_tie = value == 0 and (math.copysign(1.0, value) < 0) == larger
        return b.select(b.fcmp_unordered(order + "=" * loses_tie, x, c), x, c)

    def rule(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
        for v, c in ((x, y), (y, x)):
            value = _splat_of(c)
            if value is not None and not math.isnan(value):
                return against(b, v, c, value)
        # on a tie (+0 vs -0 included) max takes y unless y is -0, min takes x unless x is +0
        tie = b.fcmp_ordered("==", x, y)
        tie_takes_x = _signbit(b, y) if larger else _signbit(b, x)
        take_x = b.or_(b.fcmp_ordered(order, x, y), b.and_(tie, tie_takes_x))
        return b.select(b.fcmp_unordered("uno", x, x), x, b.select(take_x, x, y))

    return rule


def _safe_div(signed: bool, remainder: bool) -> ScalarFn:
    """Integer div/rem as XLA's, never trapping: the divisor 0 (and -1, signed) is replaced by 1 and
    the result chosen after: x / 0 = -1, x rem 0 = x, x / -1 = -x (wraps: MIN / -1 = MIN), x rem -1 = 0."""

    def rule(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
        zero, one, all_ones = constant(x.type, 0), constant(x.type, 1), constant(x.type, -1)
        by_zero = b.icmp_unsigned("==", y, zero)
        by_minus_one = b.icmp_signed("==", y, all_ones) if signed else ir.Constant(I1, 0)
        divisor = b.select(b.or_(by_zero, by_minus_one), one, y)
        if remainder:
            result = b.select(by_minus_one, zero, (b.srem if signed else b.urem)(x, divisor))
            return b.select(by_zero, x, result)
        result = b.select(by_minus_one, b.sub(zero, x), (b.sdiv if signed else b.udiv)(x, divisor))
        return b.select(by_zero, all_ones, result)

    return rule


def _ipow(signed: bool) -> ScalarFn:
    """x**y by square-and-multiply over every bit of y; y < 0 gives 0 unless |x| == 1."""

    def rule(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
        one, zero = constant(x.type, 1), constant(x.type, 0)
        result, base, exponent = one, x, y
        for _ in range(x.type.width):
            bit = b.trunc(exponent, I1)
            result = b.select(bit, b.mul(result, base), result)
            base = b.mul(base, base)
            exponent = b.lshr(exponent, one)
        if not signed:
            return result
        odd = b.trunc(y, I1)
        minus_one = b.select(odd, constant(x.type, -1), one)
        negative = b.select(b.icmp_signed("==", x, one), one,
                            b.select(b.icmp_signed("==", x, constant(x.type, -1)), minus_one, zero))
        return b.select(b.icmp_signed("<", y, zero), negative, result)

    return rule


def _imax(signed: bool, larger: bool) -> ScalarFn:
    op = ">" if larger else "<"
    return lambda b, x, y: b.select((b.icmp_signed if signed else b.icmp_unsigned)(op, x, y), x, y)


def _shift(op: str) -> ScalarFn:
    """XLA's shifts: the amount read as unsigned, and one >= the width (poison in LLVM) gives 0, or
    the sign fill for shift_right_arithmetic."""

    def rule(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
        width = constant(x.type, x.type.width)
        inside = b.icmp_unsigned("<", y, width)
        if op == "shift_right_arithmetic":
            return b.ashr(x, b.select(inside, y, constant(x.type, x.type.width - 1)))
        moved = (b.shl if op == "shift_left" else b.lshr)(x, b.select(inside, y, constant(x.type, 0)))
        return b.select(inside, moved, constant(x.type, 0))

    return rule


BINARY_RULES: dict[tuple[str, str], ScalarFn] = {
    ("add", "f"): lambda b, x, y: b.fadd(x, y),
    ("sub", "f"): lambda b, x, y: b.fsub(x, y),
    ("mul", "f"): lambda b, x, y: b.fmul(x, y),
    ("div", "f"): lambda b, x, y: b.fdiv(x, y),
    ("rem", "f"): mathfn.fmod,
    ("max", "f"): _fextreme(True),
    ("min", "f"): _fextreme(False),
    ("pow", "f"): mathfn.pow,
    **{("add", k): (lambda b, x, y: b.add(x, y)) for k in "iu"},
    **{("sub", k): (lambda b, x, y: b.sub(x, y)) for k in "iu"},
    **{("mul", k): (lambda b, x, y: b.mul(x, y)) for k in "iu"},
    ("div", "i"): _safe_div(True, False),
    ("div", "u"): _safe_div(False, False),
    ("rem", "i"): _safe_div(True, True),
    ("rem", "u"): _safe_div(False, True),
    ("max", "i"): _imax(True, True),
    ("min", "i"): _imax(True, False),
    ("max", "u"): _imax(False, True),
    ("min", "u"): _imax(False, False),
    ("pow", "i"): _ipow(True),
    ("pow", "u"): _ipow(False),
    **{("and", k): (lambda b, x, y: b.and_(x, y)) for k in "iub"},
    **{("or", k): (lambda b, x, y: b.or_(x, y)) for k in "iub"},
    **{("xor", k): (lambda b, x, y: b.xor(x, y)) for k in "iub"},
    **{(op, k): _shift(op) for op in ("shift_left", "shift_right_logical", "shift_right_arithmetic") for k in "iu"},
    # bool arithmetic as JAX's: + is or, * is and
    ("add", "b"): lambda b, x, y: b.or_(x, y),
    ("mul", "b"): lambda b, x, y: b.and_(x, y),
    ("max", "b"): lambda b, x, y: b.or_(x, y),
    ("min", "b"): lambda b, x, y: b.and_(x, y),
}

_CMP = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
COMPARE_RULES: dict[tuple[str, str], ScalarFn] = {
    **{(op, "f"): (lambda b, x, y, c=c: b.fcmp_ordered(c, x, y)) for op, c in _CMP.items() if op != "ne"},
    ("ne", "f"): lambda b, x, y: b.fcmp_unordered("!=", x, y),
    **{(op, "i"): (lambda b, x, y, c=c: b.icmp_signed(c, x, y)) for op, c in _CMP.items()},
    **{(op, k): (lambda b, x, y, c=c: b.icmp_unsigned(c, x, y)) for op, c in _CMP.items() for k in "ub"},
}


NARROW_BITS = 16  # integer types whose whole range f32 holds exactly


def _float_to_narrow(b: ir.IRBuilder, x: ir.Value, ty: ir.IntType, signed: bool) -> ir.Value:
    """fpto[su]i.sat to a NARROW_BITS-or-narrower integer (NaN -> 0, out of range -> the limit) as a clamp
    and an i32 conversion: the loop vectorizer leaves the .sat intrinsic one scalar call per element (an
    int8 quantize loop ran ~1 ns an element)."""
    low, high = (-(1 << (ty.width - 1)), (1 << (ty.width - 1)) - 1) if signed else (0, (1 << ty.width) - 1)
    x = b.select(b.fcmp_unordered("!=", x, x), constant(x.type, 0), x)
    x = b.select(b.fcmp_ordered("<", x, constant(x.type, low)), constant(x.type, low), x)
    x = b.select(b.fcmp_ordered(">", x, constant(x.type, high)), constant(x.type, high), x)
    return b.trunc(b.fptosi(x, ir.IntType(32)), ty)


def _convert(b: ir.IRBuilder, x: ir.Value, src: DType, dst: DType) -> ir.Value:
    """convert: float -> int saturates (NaN -> 0, as XLA), int -> int wraps, x -> bool is x != 0;
    f16/bf16 (to or from f32 only, ops.HALF_OPS) by halfconv."""
    if src.is_half:
        x, src = halfconv.WIDEN[src](b, x), DType.f32
    if dst.is_half:
        return halfconv.NARROW[dst](b, _convert(b, x, src, DType.f32))
    ty = element_type(dst)
    s, d = kind(src), kind(dst)
    if d == "b":
        if s == "f":
            return b.fcmp_unordered("!=", x, constant(x.type, 0))
        return x if s == "b" else b.icmp_unsigned("!=", x, constant(x.type, 0))
    if s == "f" and d == "f":
        if src.itemsize == dst.itemsize:
            return x
        return b.fpext(x, ty) if dst.itemsize > src.itemsize else b.fptrunc(x, ty)
    if s == "f" and ty.width <= NARROW_BITS:
        return _float_to_narrow(b, x, ty, d == "i")
    if s == "f":
        name = "fptosi.sat" if d == "i" else "fptoui.sat"
        fn_name = f"llvm.{name}.i{ty.width}.{'f64' if src is DType.f64 else 'f32'}"
        fn = b.module.globals.get(fn_name) or ir.Function(b.module, ir.FunctionType(ty, [x.type]), fn_name)
        return b.call(fn, [x])
    if d == "f":
        return b.sitofp(x, ty) if s == "i" else b.uitofp(x, ty)
    width = x.type.width
    if width == ty.width:
        return x
    if width > ty.width:
        return b.trunc(x, ty)
    return b.sext(x, ty) if s == "i" else b.zext(x, ty)


def _rule(table: dict, node: Node, dtype: DType) -> ScalarFn:
    rule = table.get((node.op, kind(dtype)))
    if rule is None:
        raise IRError(f"{node.where()}: not supported for element type {dtype.name}")
    return rule


def merge_dims(shape: Sequence[int], strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Drop size-1 dims and merge neighbours that every operand walks contiguously."""
    dims: list[int] = []
    merged: list[list[int]] = [[] for _ in strides]
    for axis, size in enumerate(shape):
        if size == 1:
            continue
        if dims and all(m[-1] == s[axis] * size for m, s in zip(merged, strides)):
            dims[-1] *= size
            for m, s in zip(merged, strides):
                m[-1] = s[axis]
            continue
        dims.append(size)
        for m, s in zip(merged, strides):
            m.append(s[axis])
    return dims, merged


def scalar_rule(node: Node) -> ScalarFn:
    """The per-element function of an elementwise node (IRError if its type is not supported)."""
    if node.op == "convert":
        src, dst = node.inputs[0].dtype, node.attrs["dtype"]
        return lambda b, x: _convert(b, x, src, dst)
    if node.op == "bitcast":
        ty = element_type(node.attrs["dtype"])
        return lambda b, x: x if x.type == ty else b.bitcast(x, ty)
    if node.op == "select":
        return lambda b, c, x, y: b.select(c, x, y)
    table = UNARY_RULES if node.op in UNARY else COMPARE_RULES if node.op in COMPARE else BINARY_RULES
    return _rule(table, node, node.inputs[0].dtype)


def literal(value: Value) -> ir.Constant | None:
    """A one-element float constant as an LLVM constant, None for anything else: LLVM then knows it is no
    NaN and not -0, so max/min against it lose their NaN and signed-zero selects (relu's 0 after a
    batchnorm: 1.9-2.3x faster loops). codegen/kernel_key.py keys such constants by value."""
    if not (value.is_const and value.size == 1 and value.dtype.is_float):
        return None
    return element_constant(value.dtype, value.data.reshape(-1)[0])


CHUNK = 1024  # elements per unit of work of a one-dimensional loop split into parts


VECTOR_RULES = frozenset({"add", "sub", "mul", "div", "neg", "max", "min", "logistic"})  # rules that take vectors


def row_vectors(node: Node, body: Sequence[Node], dims: Sequence[int | ir.Value], merged: Sequence[Sequence[int]],
                width: int) -> bool:
    """Whether emit_loop runs the innermost dim as explicit `width`-lane vectors: an f32 chain of VECTOR_RULES
    over rows of at least one vector whose every operand runs along the row or is one per row (a [N,1,1,C]
    gate or a [C] bias over a channels-last tensor). Left to LLVM, such a constant short row (32 channels) was
    unrolled whole and the row loop vectorised instead, with gathers and scatters: 0.36 ms for EfficientNet-B0's
    112x112x32 squeeze-excitation scale, ~10x its bytes' streaming time."""
    values = [v for inner in body for v in (*inner.inputs, *inner.outputs)]
    return (width > 1 and len(dims) > 1 and isinstance(dims[-1], int) and dims[-1] >= width
            and all(inner.op in VECTOR_RULES for inner in body)
            and all(v.dtype is DType.f32 for v in (*values, *node.inputs))
            and all(walk[-1] in (0, 1) for walk in merged))


def emit_loop(node: Node, body: list[Node], loads: list[tuple[int, int, Sequence[int]]], fn: ir.Function,
              width: int = 1) -> None:
    """One loop over node's output running body's scalar rules in order. Values made inside body stay
    in registers; loads are (value id, argument index, strides per output dim) for the others.
    In a call split into parts each part takes a share of the outermost dim, or of CHUNK-element
    chunks of a merged one-dimensional loop (each chunk the same constant-count loop whichever part
    runs it, so the vectoriser's body/tail split, and every result bit, do not depend on parts).
    With a size argument (module.py passes size_arguments) the outermost merged dim is that argument.
    width: the target's f32 lanes, for rows of explicit vectors (row_vectors)."""
    out = node.outputs[0]
    rules = [scalar_rule(inner) for inner in body]
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    dims: list[int | ir.Value]
    dims, merged = _loop_dims(node, loads)
    if len(fn.args) > len(node.inputs) + len(node.outputs) + 2:
        dims[0] = fn.args[-1]
    dtypes = {v.id: v.dtype for inner in body for v in inner.inputs}

    def element(at: list[ir.Value]) -> None:
        values: dict[int, ir.Value] = {}
        for (vid, arg, _), walk in zip(loads, merged):
            constant = literal(node.inputs[arg]) if node.inputs[arg].dtype == dtypes[vid] else None
            if constant is not None:
                values[vid] = constant
                continue
            source = index(b, 0, *zip(at, walk), nonnegative=True) if dims else i64(0)
            values[vid] = load_value(b, fn.args[arg], source, dtypes[vid])
        for inner, rule in zip(body, rules):
            values[inner.outputs[0].id] = rule(b, *(values[v.id] for v in inner.inputs))
        offset = index(b, 0, *zip(at, merged[-1]), nonnegative=True) if dims else i64(0)
        store_value(b, values[out.id], fn.args[len(node.inputs)], offset, out.dtype)

    def vectors(rows: list[ir.Value], col: ir.Value, lanes: int) -> None:
        """lanes elements of a row from column col: each operand one vector load, or one splat per row."""
        values: dict[int, ir.Value] = {}
        for (vid, arg, _), walk in zip(loads, merged):
            constant = literal(node.inputs[arg])
            if constant is not None:
                values[vid] = splat(b, constant, lanes)
                continue
            at = index(b, 0, *zip([*rows, col], walk), nonnegative=True)
            loaded = load(b, fn.args[arg], at, elem, lanes if walk[-1] else 1)
            values[vid] = loaded if walk[-1] else splat(b, loaded, lanes)
        for inner, rule in zip(body, rules):
            values[inner.outputs[0].id] = rule(b, *(values[v.id] for v in inner.inputs))
        store(b, values[out.id], fn.args[len(node.inputs)], index(b, 0, *zip([*rows, col], merged[-1]),
                                                                  nonnegative=True), elem)

    def row(rows: list[ir.Value]) -> None:
        """One row of dims[-1] elements: a loop of full vectors, then the rest as shorter ones (8, 4, 2, 1)."""
        full, left = divmod(dims[-1], width)
        with for_range(b, full, "v") as k:
            vectors(rows, b.mul(k, i64(width), flags=("nsw", "nuw")), width)
        for part in (1 << bit for bit in reversed(range(left.bit_length())) if left >> bit & 1):
            vectors(rows, i64(dims[-1] - left), part)
            left -= part

    vectorised = row_vectors(node, body, dims, merged, width)
    elem = element_type(DType.f32)

    def unit(phase: int, i: ir.Value) -> None:
        if len(dims) > 1:
            with for_nest(b, dims[1:-1] if vectorised else dims[1:]) as rest:
                if vectorised:
                    row([i, *rest])
                else:
                    element([i, *rest])
        elif len(dims) == 1:
            count, first = (CHUNK, b.mul(i, i64(CHUNK))) if phase == 0 else _tail(b, dims[0])
            with for_range(b, count, "e") as j:
                element([b.add(first, j)])
        else:
            element([])

    if out.size > 0:
        counts = _unit_counts(dims, b)
        part, parts = parts_of(b, node, fn)
        total = counts[0] if len(counts) == 1 else sum(counts) if all(isinstance(c, int) for c in counts) else \
            b.add(counts[0], counts[1])
        lo, hi = share(b, total, part, parts)
        for_phases(b, lo, hi, counts, unit, "chunk")
    b.ret_void()


def _loop_dims(node: Node, loads: Sequence[tuple[int, int, Sequence[int]]]) -> tuple[list[int], list[list[int]]]:
    """The merged loop dims of node's output and each operand's (then the output's) strides over them."""
    out = node.outputs[0]
    return merge_dims(out.shape, [list(st) for _, _, st in loads] + [broadcast_strides(out.shape, out.shape)])


def _tail(b: ir.IRBuilder, size: int | ir.Value) -> tuple[int | ir.Value, ir.Value]:
    """(count, first index) of the elements after the full CHUNKs of a 1-D loop of size elements."""
    if isinstance(size, int):
        return size % CHUNK, i64(size - size % CHUNK)
    tail = b.urem(size, i64(CHUNK))
    return tail, b.sub(size, tail)


def _unit_counts(dims: list[int | ir.Value], b: ir.IRBuilder | None = None) -> list[int | ir.Value]:
    """Units per phase: the outermost dim's indices, or full CHUNKs then the tail of a merged 1-D loop
    (b: where the size is a run-time value)."""
    if len(dims) != 1 or isinstance(dims[0], int):
        return [dims[0]] if len(dims) > 1 else [dims[0] // CHUNK, int(dims[0] % CHUNK > 0)] if dims else [1]
    size = dims[0]
    return [b.udiv(size, i64(CHUNK)), b.zext(b.icmp_unsigned("!=", b.urem(size, i64(CHUNK)), i64(0)), size.type)]


def size_arguments(node: Node) -> list[int]:
    """The size a plain elementwise node's function takes as a trailing i64 argument: its outermost merged
    loop dim (the units its parts share), so the same loop over other lengths shares the function (swin_t's
    residual adds of four stages are one)."""
    dims = _loop_dims(node, _own_loads(node))[0]
    return dims[:1] if node.outputs[0].size > 0 else []


def runtime_shapes(node: Node, target: object) -> tuple[dict[int, tuple], tuple, dict[str, object]] | None:
    """For kernel_key: the shapes left out; what the loop is made of instead: the merged dims after the
    first and every operand's strides over them."""
    if node.outputs[0].size == 0:
        return None
    dims, merged = _loop_dims(node, _own_loads(node))
    return {v.id: (None,) for v in (*node.inputs, *node.outputs)}, ("loop", len(dims), tuple(dims[1:]),
                                                                     tuple(map(tuple, merged))), {}


def _own_loads(node: Node) -> list[tuple[int, int, tuple[int, ...]]]:
    return [(v.id, k, broadcast_strides(v.shape, node.outputs[0].shape)) for k, v in enumerate(node.inputs)]


def _fused_loads(node: Node) -> list[tuple[int, int, Sequence[int]]]:
    return list(node.attrs["loads"])


def _units(loads_of: Callable[[Node], Sequence[tuple[int, int, Sequence[int]]]]) -> UnitsRule:
    def units(node: Node, target: object, parts: int) -> int:
        return sum(_unit_counts(_loop_dims(node, loads_of(node))[0])) if node.outputs[0].size else 1

    return units


ELEMENTWISE = (*UNARY, *BINARY, *COMPARE, "select", "convert", "bitcast")  # the ops of emit_elementwise


@emitter(*ELEMENTWISE, units=_units(_own_loads))
def emit_elementwise(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    emit_loop(node, [node], _own_loads(node), fn, f32_lanes(ctx.target))


@emitter(FUSED, units=_units(_fused_loads))
def emit_fused(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    """A chain merged by passes/fuse.py: every inner value has the output's shape."""
    emit_loop(node, list(node.attrs["nodes"]), _fused_loads(node), fn, f32_lanes(ctx.target))


sizes_as_arguments(SizeRules(size_arguments, runtime_shapes), *ELEMENTWISE)
