"""scatter: copy x, then apply the updates one at a time, in order, at their flat positions.

    out = x
    for i in updates:  p = positions[i]
      if 0 <= p < size: out[p] = combine(out[p], updates[i])     (set: out[p] = updates[i])
The order is the updates' row-major order, as XLA's CPU loop, so duplicate positions accumulate in
the same order (float sums match bit for bit) and the last duplicate wins for set. A position
outside the output is dropped (the frontend marks dropped windows with -1), never written.
combine is elementwise.BINARY_RULES' scalar rule of the kind, so max/min keep their NaN and -0 rules.
"""

from __future__ import annotations

from llvmlite import ir

from cerebro.compiler.codegen.elementwise import BINARY_RULES, kind
from cerebro.compiler.codegen.llvm_types import element_type, load, load_value, store, store_value
from cerebro.compiler.codegen.loops import I64, for_range, i64
from cerebro.compiler.codegen.registry import EmitContext, emitter, unsupported
from cerebro.compiler.ir import Node


@emitter("scatter")
def emit_scatter(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    x, positions, updates = node.inputs
    out = node.outputs[0]
    combine_kind = node.attrs["kind"]
    combine = None if combine_kind == "set" else BINARY_RULES.get((combine_kind, kind(x.dtype)))
    if combine_kind != "set" and combine is None:
        raise unsupported(node, f"scatter {combine_kind} on {x.dtype.name}")
    bits = ir.IntType(x.dtype.itemsize * 8)
    position_type = element_type(positions.dtype)
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    px, ppositions, pupdates, pout = fn.args
    with for_range(builder, out.size, "copy") as i:
        store(builder, load(builder, px, i, bits), pout, i, bits)
    with for_range(builder, updates.size, "u") as i:
        raw = load(builder, ppositions, i, position_type)
        p = raw if position_type.width == 64 else (
            builder.sext(raw, I64) if positions.dtype.is_signed else builder.zext(raw, I64))
        inside = builder.and_(builder.icmp_signed(">=", p, i64(0)), builder.icmp_signed("<", p, i64(out.size)))
        with builder.if_then(inside):
            update = load_value(builder, pupdates, i, x.dtype)
            if combine is not None:
                update = combine(builder, load_value(builder, pout, p, x.dtype), update)
            store_value(builder, update, pout, p, x.dtype)
    builder.ret_void()
