"""argsort: a stable LSD radix sort of positions, one byte of the key per pass, no scratch beyond the output.

Each row's i64 output (8 bytes per element) holds two i32 position arrays A and B while sorting:
    A = 0, 1, ..., n-1
    for each key byte, low to high:
      count the byte's values over x (in x's order: a histogram does not depend on it)
      skip the pass if every element has the same byte
      else prefix-sum the counts and move each position of src to dst by its element's byte
      (src/dst alternate between A and B; a counting pass is stable, so ties keep their order)
    copy to A if the last pass ended in B, then widen A to i64 from the back (out[i] takes
    bytes 8i..8i+8, which only overlap A's entries at or after i, already read).
With k < n (lax.top_k) each row instead keeps its best k positions in order in its output, and
one pass over x inserts an element only when its key beats the k-th kept one (ties keep the lower
index, which came first): O(n) compares plus O(k) per insertion, so O(n k) at worst.
The key of an element (reference.ordered_key) is its bits mapped so unsigned order is the sort order:
canonical order first makes zeros +0 and NaNs one positive NaN (on the bits: INFINITY_BITS says where
a float's NaNs start); floats flip every bit when negative and the sign bit otherwise; signed
integers flip the sign bit; descending inverts the key. The 256 counts live on the stack (1 KiB),
the only stack the kernel takes. Positions are i32 while sorting, so a row holds under 2^31 elements.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from llvmlite import ir

from cerebro.compiler.codegen.llvm_types import index, load, stack_array, store
from cerebro.compiler.codegen.loops import I64, fold_range, for_range, i64
from cerebro.compiler.codegen.registry import EmitContext, emitter, unsupported
from cerebro.compiler.ir import DType, Node

I32 = ir.IntType(32)
PTR = ir.PointerType()
BUCKETS = 256
INFINITY_BITS = {DType.f32: 0x7F800000, DType.f64: 0x7FF0000000000000}  # per float dtype argsort accepts


def _key(builder: ir.IRBuilder, raw: ir.Value, dtype: DType, order: str, descending: bool) -> ir.Value:
    """The element's unsigned sort key (an integer as wide as the element), from its bits alone."""
    width = raw.type.width
    sign_bit = ir.Constant(raw.type, 1 << (width - 1))
    if dtype.is_float:
        if order == "canonical":  # a zero magnitude is +0; a magnitude above infinity's is one NaN
            magnitude = builder.and_(raw, ir.Constant(raw.type, (1 << (width - 1)) - 1))
            zero = builder.icmp_unsigned("==", magnitude, ir.Constant(raw.type, 0))
            raw = builder.select(zero, ir.Constant(raw.type, 0), raw)
            infinity = INFINITY_BITS[dtype]
            nan = builder.icmp_unsigned(">", magnitude, ir.Constant(raw.type, infinity))
            raw = builder.select(nan, ir.Constant(raw.type, infinity + 1), raw)
        flip = builder.or_(builder.ashr(raw, ir.Constant(raw.type, width - 1)), sign_bit)
        key = builder.xor(raw, flip)
    elif dtype.is_int and dtype.is_signed:
        key = builder.xor(raw, sign_bit)
    else:
        key = raw
    return builder.not_(key) if descending else key


def _key_at(builder: ir.IRBuilder, node: Node, px: ir.Value, at: ir.Value) -> ir.Value:
    """The sort key of element `at` of the node's input, in the node's order and direction."""
    dtype = node.inputs[0].dtype
    raw = load(builder, px, at, ir.IntType(8 * dtype.itemsize))
    return _key(builder, raw, dtype, node.attrs.get("order", "canonical"), bool(node.attrs.get("descending", False)))


def _byte(builder: ir.IRBuilder, key: ir.Value, byte: ir.Value) -> ir.Value:
    """Byte number `byte` (an i64 value: the passes are one loop, so the code holds one pass) of key."""
    shift = builder.mul(byte, i64(8))
    shift = builder.trunc(shift, key.type) if key.type.width < 64 else shift
    return builder.zext(builder.trunc(builder.lshr(key, shift), ir.IntType(8)), I64)


@emitter("argsort")
def emit_argsort(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    (x,) = node.inputs
    n = x.shape[-1]
    if x.dtype.is_float and x.dtype not in INFINITY_BITS:
        raise unsupported(node, f"argsort of {x.dtype.name}")
    if n >= 2**31:
        raise unsupported(node, f"argsort of rows of {n} elements (under 2^31)")
    if node.outputs[0].shape[-1] < n:
        _emit_first_k(node, fn)
        return
    rows = math.prod(x.shape[:-1])
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    px, pout = fn.args
    counts = stack_array(builder, I32, BUCKETS, "counts")
    slots = stack_array(builder, PTR, 2, "src_dst")
    if rows * n == 0:
        builder.ret_void()
        return

    def key_at(row_x: ir.Value, position: ir.Value, byte: ir.Value) -> ir.Value:
        return _byte(builder, _key_at(builder, node, px, builder.add(row_x, position)), byte)

    def slot(which: int) -> ir.Value:
        return builder.gep(slots, [i64(which)], inbounds=True, source_etype=PTR)

    with for_range(builder, rows, "r") as r:
        row_x = index(builder, 0, (r, n))
        first = builder.gep(pout, [index(builder, 0, (r, 2 * n))], inbounds=True, source_etype=I32)
        second = builder.gep(first, [i64(n)], inbounds=True, source_etype=I32)
        with for_range(builder, n, "init") as i:
            store(builder, builder.trunc(i, I32), first, i, I32)
        builder.store(first, slot(0))
        builder.store(second, slot(1))
        with for_range(builder, x.dtype.itemsize, "byte") as byte:
            _radix_pass(builder, counts, slot, n, lambda position: key_at(row_x, position, byte))
        src = builder.load(slot(0), typ=PTR)
        with builder.if_then(builder.icmp_unsigned("!=", src, first)):
            with for_range(builder, n, "copy") as i:
                store(builder, load(builder, src, i, I32), first, i, I32)
        with for_range(builder, n, "widen") as i:
            back = builder.sub(i64(n - 1), i)
            wide = builder.sext(load(builder, first, back, I32), I64)
            store(builder, wide, pout, index(builder, 0, (r, n), (back, 1)), I64)
    builder.ret_void()


def _radix_pass(builder: ir.IRBuilder, counts: ir.Value, slot: Callable[[int], ir.Value], n: int,
                digit: Callable[[ir.Value], ir.Value]) -> None:
    """One stable counting pass over slot(0) -> slot(1) by digit(position), then swap the slots."""
    with for_range(builder, BUCKETS, "zero") as b:
        store(builder, ir.Constant(I32, 0), counts, b, I32)
    with for_range(builder, n, "hist") as i:
        d = digit(i)
        store(builder, builder.add(load(builder, counts, d, I32), ir.Constant(I32, 1)), counts, d, I32)
    uniform = builder.icmp_unsigned("==", load(builder, counts, digit(i64(0)), I32), ir.Constant(I32, n))
    with builder.if_then(builder.not_(uniform)):
        with fold_range(builder, BUCKETS, [ir.Constant(I32, 0)], "prefix") as (b, carry):
            count = load(builder, counts, b, I32)
            store(builder, carry.values[0], counts, b, I32)
            carry.values = [builder.add(carry.values[0], count)]
        src = builder.load(slot(0), typ=PTR)
        dst = builder.load(slot(1), typ=PTR)
        with for_range(builder, n, "move") as i:
            position = load(builder, src, i, I32)
            d = digit(builder.zext(position, I64))
            at = load(builder, counts, d, I32)
            store(builder, builder.add(at, ir.Constant(I32, 1)), counts, d, I32)
            store(builder, position, dst, builder.zext(at, I64), I32)
        builder.store(dst, slot(0))
        builder.store(src, slot(1))


def _emit_first_k(node: Node, fn: ir.Function) -> None:
    """Per row: keep the best k positions sorted in the output; insert x[j] when it beats the k-th."""
    (x,) = node.inputs
    n, k = x.shape[-1], node.outputs[0].shape[-1]
    rows = math.prod(x.shape[:-1])
    bits = ir.IntType(8 * x.dtype.itemsize)
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    px, pout = fn.args
    if rows * k == 0:
        builder.ret_void()
        return
    with for_range(builder, rows, "r") as r:
        row_x, row_out = index(builder, 0, (r, n)), index(builder, 0, (r, k))

        def key_of(position: ir.Value) -> ir.Value:
            return _key_at(builder, node, px, builder.add(row_x, position))

        def kept(m: ir.Value) -> ir.Value:
            return load(builder, pout, builder.add(row_out, m), I64)

        worst = ir.Constant(bits, (1 << bits.width) - 1)
        with fold_range(builder, n, [i64(0), worst], "j") as (j, carry):
            count, threshold = carry.values
            key = key_of(j)
            full = builder.icmp_unsigned("==", count, i64(k))
            beats = builder.or_(builder.not_(full), builder.icmp_unsigned("<", key, threshold))
            before = builder.block
            with builder.if_then(beats):
                start = builder.select(full, i64(k - 1), count)
                slot = _shift_down(builder, start, lambda m: builder.icmp_unsigned(">", key_of(kept(m)), key),
                                   lambda m: store(builder, kept(m), pout, builder.add(row_out, builder.add(m, i64(1))),
                                                   I64))
                store(builder, j, pout, builder.add(row_out, slot), I64)
                grown = builder.select(full, count, builder.add(count, i64(1)))
                now_full = builder.icmp_unsigned("==", grown, i64(k))
                last = key_of(kept(builder.sub(grown, i64(1))))  # always a kept slot; the k-th once full
                new_threshold = builder.select(now_full, last, worst)
                inserted = builder.block
            merged_count = builder.phi(I64)
            merged_count.add_incoming(count, before)
            merged_count.add_incoming(grown, inserted)
            merged_threshold = builder.phi(bits)
            merged_threshold.add_incoming(threshold, before)
            merged_threshold.add_incoming(new_threshold, inserted)
            carry.values = [merged_count, merged_threshold]
    builder.ret_void()


def _shift_down(builder: ir.IRBuilder, start: ir.Value, after: Callable[[ir.Value], ir.Value],
                move_up: Callable[[ir.Value], None]) -> ir.Value:
    """m = start; while m > 0 and after(m - 1): move_up(m - 1); m -= 1. Returns the final m (insertion sort's
    hole)."""
    entry = builder.block
    test = builder.append_basic_block("shift.test")
    check = builder.append_basic_block("shift.check")
    body = builder.append_basic_block("shift.body")
    done = builder.append_basic_block("shift.done")
    builder.branch(test)
    builder.position_at_end(test)
    m = builder.phi(I64, name="m")
    m.add_incoming(start, entry)
    builder.cbranch(builder.icmp_signed(">", m, i64(0)), check, done)
    builder.position_at_end(check)
    previous = builder.sub(m, i64(1))
    builder.cbranch(after(previous), body, done)
    builder.position_at_end(body)
    move_up(previous)
    m.add_incoming(previous, builder.block)
    builder.branch(test)
    builder.position_at_end(done)
    return m
