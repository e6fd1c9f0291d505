"""take (gather along one axis): clamp each index once, then copy a contiguous slice.

x is viewed as [outer, dim, inner] and the output as [outer, count, inner]:
    for o in outer: for i in count:
      j = clamp(idx[i])   (mode "wrap" first adds dim to a negative index)
      out[o, i, :] = x[o, j, :]
The inner copy moves raw element bits (an integer type of the element's
size), so every dtype shares it and LLVM turns it into vector moves.
Indices are clamped into [0, dim), so a bad index never reads out of bounds.
"""

from __future__ import annotations

import math

from llvmlite import ir

from cerebro.compiler.codegen.llvm_types import element_type, index, load, store
from cerebro.compiler.codegen.loops import I64, for_range, i64
from cerebro.compiler.codegen.registry import EmitContext, emitter, unsupported
from cerebro.compiler.ir import Node


@emitter("take")
def emit_take(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    x, idx = node.inputs
    out = node.outputs[0]
    axis = node.attrs["axis"]
    mode = node.attrs.get("mode", "clip")
    outer, dim, inner = math.prod(x.shape[:axis]), x.shape[axis], math.prod(x.shape[axis + 1:])
    count = idx.size
    if dim == 0 and out.size:
        raise unsupported(node, f"take from an empty axis {axis} of {x.shape}")
    if mode not in ("clip", "wrap"):
        raise unsupported(node, f"take mode {mode!r}")
    bits = ir.IntType(x.dtype.itemsize * 8)
    index_elem = element_type(idx.dtype)
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    px, pidx, po = fn.args
    if out.size == 0:
        builder.ret_void()
        return
    with for_range(builder, outer, "o") as o:
        with for_range(builder, count, "i") as i:
            raw = load(builder, pidx, i, index_elem)
            j = raw if index_elem.width == 64 else (
                builder.sext(raw, I64) if idx.dtype.is_signed else builder.zext(raw, I64))
            if mode == "wrap":
                j = builder.select(builder.icmp_signed("<", j, i64(0)), builder.add(j, i64(dim)), j)
            j = builder.select(builder.icmp_signed("<", j, i64(0)), i64(0), j)
            j = builder.select(builder.icmp_signed(">", j, i64(dim - 1)), i64(dim - 1), j)
            source = index(builder, 0, (o, dim * inner), (j, inner))
            target = index(builder, 0, (o, count * inner), (i, inner))
            with for_range(builder, inner, "e") as e:
                value = load(builder, px, builder.add(source, e), bits)
                store(builder, value, po, builder.add(target, e), bits)
    builder.ret_void()
