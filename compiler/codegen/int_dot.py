"""The integer dot-product core of matmul_integer and conv_integer: sum_k (a[k] - za) * (b[k] - zb) in i32,
with the fastest exact instruction of the target (DOT_FORMS, by targets.int8_dot).

- vpdpbusd (AVX-512 VNNI, AVX-VNNI): 4 u8 x s8 products summed into each i32 lane, 32 (64) per instruction.
- sdot (aarch64 dotprod): 4 s8 x s8 products into each i32 lane, 16 per instruction.
- pmaddwd (everything else, the portable form): bytes widened to i16, pairs of i16 products summed into
  i32 lanes, which LLVM turns into vpmaddwd on x86 (16 per AVX2 instruction), smull/sadalp on NEON and
  plain i32 multiplies on a target without vector registers. vpmaddubsw is not used: its i16 pair sums
  saturate (255 * -128 * 2), so an exact result needs two of them per step, no faster than this.

The byte forms read fixed signedness, so an operand of the other one is flipped (x ^ 0x80: an s8 v read as
u8 is v + 128, a u8 v read as s8 is v - 128) and so is its zero point; then, over the Kv vector positions,
    sum (a' - za')(b' - zb') = sum a'b' - zb' sum a' - za' sum b' + Kv za' zb'
which is exact in wrapping i32 arithmetic, so the instruction multiplies raw bytes and the zero points
cost one sum per row and one per column. The pmaddwd form subtracts a's zero point when widening (the
difference fits i16) and needs only the row sums. Positions past the last whole step are a scalar tail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llvmlite import ir

from cerebro.compiler.codegen.llvm_types import constant, load, splat
from cerebro.compiler.codegen.loops import fold_range, i64
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.targets import f32_lanes, int8_dot, lanes

I8, I16, I32 = ir.IntType(8), ir.IntType(16), ir.IntType(32)


@dataclass(frozen=True)
class DotForm:
    """One step: `width` bytes of a row times `width` bytes of a column, added into `sums` i32 lanes.
    a_signed/b_signed: the byte encoding the instruction reads (None: widened to i16 as the dtype says)."""

    name: str
    width: int
    sums: int
    a_signed: bool | None
    b_signed: bool | None
    intrinsic: str | None  # the LLVM intrinsic of a byte form: (acc, a bytes, b bytes) -> acc

    @property
    def folds_a_zero(self) -> bool:
        """a's zero point is subtracted in the operand (no column sums needed)."""
        return self.a_signed is None

    def operand_type(self) -> ir.VectorType:
        return ir.VectorType(I16 if self.folds_a_zero else I8, self.width)

    def step(self, builder: ir.IRBuilder, acc: ir.Value, a: ir.Value, b: ir.Value) -> ir.Value:
        if self.intrinsic is not None:
            fn = builder.module.globals.get(self.intrinsic) or ir.Function(
                builder.module, ir.FunctionType(acc.type, [acc.type, a.type, b.type]), name=self.intrinsic)
            return builder.call(fn, [acc, a, b])
        wide = ir.VectorType(I32, self.width)
        product = builder.mul(builder.sext(a, wide), builder.sext(b, wide))
        if self.sums == 1:  # no vector registers (an fpu "none" target, KINT): acc is a scalar i32
            return builder.add(acc, builder.add(*(builder.extract_element(product, i64(p)) for p in (0, 1))))
        halves = [ir.Constant(ir.VectorType(I32, self.sums), list(range(p, self.width, 2))) for p in (0, 1)]
        pairs = builder.add(*(builder.shuffle_vector(product, product, half) for half in halves))
        return builder.add(acc, pairs)

    def a_operand(self, builder: ir.IRBuilder, raw: ir.Value, dtype: DType, zero: ir.Value) -> ir.Value:
        """Loaded bytes of a as this form's operand (zero: a's raw zero point, subtracted when widening)."""
        if self.folds_a_zero:
            return builder.sub(widen(builder, raw, dtype, I16), splat(builder, widen(builder, zero, dtype, I16),
                                                                       self.width))
        return _flipped(builder, raw, dtype, self.a_signed)

    def b_operand(self, builder: ir.IRBuilder, raw: ir.Value, dtype: DType) -> ir.Value:
        if self.folds_a_zero:
            return widen(builder, raw, dtype, I16)
        return _flipped(builder, raw, dtype, self.b_signed)

    def a_zero(self, builder: ir.IRBuilder, zero: ir.Value, dtype: DType) -> ir.Value | None:
        """a's zero point as the operands encode it (i32), None where the operand has it subtracted."""
        return None if self.folds_a_zero else _encoded_zero(builder, zero, dtype, self.a_signed)

    def b_zero(self, builder: ir.IRBuilder, zero: ir.Value, dtype: DType) -> ir.Value:
        return widen(builder, zero, dtype) if self.folds_a_zero else _encoded_zero(builder, zero, dtype,
                                                                                  self.b_signed)

    def ones(self) -> ir.Constant:
        """An operand of ones: step(acc, x, ones) sums x."""
        return constant(self.operand_type().element, 1, self.width)


def widen(builder: ir.IRBuilder, value: ir.Value, dtype: DType, to: ir.IntType = I32) -> ir.Value:
    """u8/i8 (scalar or lanes) as wider integers: zero- or sign-extended."""
    wide = ir.VectorType(to, value.type.count) if isinstance(value.type, ir.VectorType) else to
    return builder.sext(value, wide) if dtype.is_signed else builder.zext(value, wide)


def _flipped(builder: ir.IRBuilder, raw: ir.Value, dtype: DType, signed: bool) -> ir.Value:
    return raw if dtype.is_signed == signed else builder.xor(raw, constant(I8, 0x80, raw.type.count))


def _encoded_zero(builder: ir.IRBuilder, zero: ir.Value, dtype: DType, signed: bool) -> ir.Value:
    value = widen(builder, zero, dtype)
    if dtype.is_signed == signed:
        return value
    return builder.add(value, ir.Constant(I32, -128 if signed else 128))


# targets.int8_dot's instruction (None: the widening multiply-add) -> the form at n i32 lanes
DOT_FORMS: dict[str | None, Callable[[int], DotForm]] = {
    "vpdpbusd": lambda n: DotForm("vpdpbusd", 4 * n, n, False, True, f"llvm.x86.avx512.vpdpbusd.{32 * n}"),
    "sdot": lambda n: DotForm("sdot", 16, 4, True, True, "llvm.aarch64.neon.sdot.v4i32.v16i8"),
    None: lambda n: DotForm("pmaddwd", 2 * n, n, None, None, None),
}


def dot_form(target: object, depth: int) -> DotForm:
    """The fastest exact dot-product form the target's CPU features allow for dots of `depth` bytes: on the
    widest registers whose step fits in depth (a 64-byte AVX-512 step would leave 32 input channels all to
    the scalar tail), else on the narrowest (128-bit)."""
    n = lanes(target, DType.i32)
    forms = []
    while True:
        forms.append(DOT_FORMS[int8_dot(target, n)](n))
        if n <= 4:
            break
        n //= 2
    return next((form for form in forms if form.width <= depth), forms[-1])


def band_rows(target: object) -> int:
    """Rows (matmul rows, conv output pixels) sharing each loaded block of COLUMNS weight rows: the
    accumulators fit the register file (16 vector registers on x86 below AVX-512, 32 on AVX-512 and NEON)."""
    return 2 if getattr(target, "is_x86", True) and f32_lanes(target) < 16 else 4


def reduce_add(builder: ir.IRBuilder, vector: ir.Value) -> ir.Value:
    ty = vector.type
    if not isinstance(ty, ir.VectorType):
        return vector
    name = f"llvm.vector.reduce.add.v{ty.count}i32"
    fn = builder.module.globals.get(name) or ir.Function(builder.module, ir.FunctionType(I32, [ty]), name=name)
    return builder.call(fn, [vector])


@dataclass(frozen=True)
class Side:
    """Rows of one operand: its buffer, element dtype, each row's first element, each row's raw zero point."""

    pointer: ir.Value
    dtype: DType
    starts: list[ir.Value]
    zeros: list[ir.Value]


def row_sums(builder: ir.IRBuilder, form: DotForm, a: Side, steps: int) -> list[ir.Value]:
    """sum of each a row's operand over `steps` whole steps (the zero-point correction's row term)."""
    zero = constant(I32, 0, form.sums)
    with fold_range(builder, steps, [zero] * len(a.starts), "ks") as (ks, carry):
        k = builder.mul(ks, i64(form.width))
        carry.values = [form.step(builder, acc, op, form.ones()) for acc, op in zip(carry.values, _a_ops(
            builder, form, a, k))]
    return [reduce_add(builder, v) for v in carry.values]


def _a_ops(builder: ir.IRBuilder, form: DotForm, a: Side, k: ir.Value) -> list[ir.Value]:
    return [form.a_operand(builder, load(builder, a.pointer, builder.add(start, k), I8, form.width), a.dtype, zero)
            for start, zero in zip(a.starts, a.zeros)]


@dataclass
class Sums:
    """What dot products accumulate before the zero-point correction: per (row, column) the products of
    operands (vectors), per row the row sums (vectors; None where the caller has them from row_sums()), per
    column the column sums (vectors, byte forms only), per (row, column) the exact tail products (i32) and
    the count of vector positions summed (i32, for the Kv za' zb' term)."""

    products: list[ir.Value]
    rows: list[ir.Value] | None
    columns: list[ir.Value]
    tails: list[ir.Value]
    positions: ir.Value

    @staticmethod
    def zero(form: DotForm, height: int, width: int, with_rows: bool) -> Sums:
        vector = constant(I32, 0, form.sums)
        return Sums([vector] * (height * width), [vector] * height if with_rows else None,
                    [] if form.folds_a_zero else [vector] * width, [ir.Constant(I32, 0)] * (height * width),
                    ir.Constant(I32, 0))

    def values(self) -> list[ir.Value]:
        return [*self.products, *(self.rows or []), *self.columns, *self.tails, self.positions]

    def like(self, values: list[ir.Value]) -> Sums:
        """These sums' shape holding `values` (as values() lists them)."""
        cuts = [len(self.products), len(self.rows or []), len(self.columns), len(self.tails)]
        parts, at = [], 0
        for n in cuts:
            parts.append(values[at:at + n])
            at += n
        return Sums(parts[0], parts[1] if self.rows is not None else None, parts[2], parts[3], values[at])


def accumulate(builder: ir.IRBuilder, form: DotForm, a: Side, b: Side, depth: int, sums: Sums,
               valid: ir.Value | None = None) -> Sums:
    """sums plus the dot products of a's rows with b's rows over [0, depth) from their starts; where
    `valid` (i1) is false, sums unchanged (the rows were read at clamped, in-bounds starts)."""
    steps = depth // form.width
    height, width = len(a.starts), len(b.starts)
    with fold_range(builder, steps, sums.products + (sums.rows or []) + sums.columns, "kb") as (kb, carry):
        k = builder.mul(kb, i64(form.width))
        a_ops = _a_ops(builder, form, a, k)
        b_ops = [form.b_operand(builder, load(builder, b.pointer, builder.add(start, k), I8, form.width), b.dtype)
                 for start in b.starts]
        at = iter(carry.values)
        new = [form.step(builder, next(at), a_ops[r], b_ops[t]) for r in range(height) for t in range(width)]
        if sums.rows is not None:
            new += [form.step(builder, next(at), op, form.ones()) for op in a_ops]
        new += [form.step(builder, next(at), form.ones(), op) for op in b_ops[:len(sums.columns)]]
        carry.values = new
    vectors = carry.values
    tails = _tail(builder, a, b, sums.tails, steps * form.width, depth)
    positions = builder.add(sums.positions, ir.Constant(I32, steps * form.width))
    grown = sums.like([*vectors, *tails, positions])
    if valid is None:
        return grown
    return sums.like([builder.select(valid, new, old) for new, old in zip(grown.values(), sums.values())])


def finish(builder: ir.IRBuilder, form: DotForm, sums: Sums, a: Side, b: Side,
           a_sums: list[ir.Value] | None = None) -> list[ir.Value]:
    """[sum (a_r - za_r) * (b_t - zb_t) for r, t] (row-major, i32) from the accumulated sums; a_sums: row_sums()
    when sums carry no row sums."""
    width = len(b.starts)
    products = [reduce_add(builder, v) for v in sums.products]
    rows = a_sums if sums.rows is None else [reduce_add(builder, v) for v in sums.rows]
    columns = [reduce_add(builder, v) for v in sums.columns]
    a_zeros = [form.a_zero(builder, z, a.dtype) for z in a.zeros]
    b_zeros = [form.b_zero(builder, z, b.dtype) for z in b.zeros]
    totals = []
    for i, (product, tail) in enumerate(zip(products, sums.tails)):
        r, t = divmod(i, width)
        total = builder.sub(product, builder.mul(b_zeros[t], rows[r]))
        if columns:
            total = builder.sub(total, builder.mul(a_zeros[r], columns[t]))
            total = builder.add(total, builder.mul(builder.mul(a_zeros[r], sums.positions), b_zeros[t]))
        totals.append(builder.add(total, tail))
    return totals


def dot_block(builder: ir.IRBuilder, form: DotForm, a: Side, b: Side, depth: int,
              a_sums: list[ir.Value]) -> list[ir.Value]:
    """[sum_k<depth (a_r[k] - za_r) * (b_t[k] - zb_t) for r, t] (row-major) in i32; a_sums: row_sums() of a
    over depth // form.width steps (shared by every column block of a band of rows)."""
    sums = accumulate(builder, form, a, b, depth, Sums.zero(form, len(a.starts), len(b.starts), False))
    return finish(builder, form, sums, a, b, a_sums)


def _tail(builder: ir.IRBuilder, a: Side, b: Side, totals: list[ir.Value], start: int, depth: int) -> list[ir.Value]:
    """totals plus the exact products at positions [start, depth)."""
    if start == depth:
        return totals
    width = len(b.starts)
    with fold_range(builder, depth, totals, "kt", start=start) as (k, carry):
        a_vals, b_vals = ([builder.sub(widen(builder, load(builder, side.pointer, builder.add(s, k), I8), side.dtype),
                                       widen(builder, z, side.dtype)) for s, z in zip(side.starts, side.zeros)]
                          for side in (a, b))
        carry.values = [builder.add(total, builder.mul(a_vals[i // width], b_vals[i % width]))
                        for i, total in enumerate(carry.values)]
    return carry.values
