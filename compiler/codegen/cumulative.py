"""cumulative: a running combine along one axis, folded in order from index 0.

x is viewed as [outer, n, inner]:
    for o in outer: out[o, 0, :] = x[o, 0, :]     (a sum: 0 + x[o, 0, :], so -0 becomes +0 as in XLA)
      for i in 1..n-1: for e in inner: out[o, i, e] = combine(out[o, i-1, e], x[o, i, e])
The inner loop is contiguous, so LLVM vectorises it across e; the order along the axis is the
reference's (sequential), so integer results are exact and float ones round as the reference does.
combine is elementwise.BINARY_RULES' scalar rule (max/min keep their NaN and -0 rules); logaddexp is
jax's formula over mathfn's exp and log1p (within a few ulp of the reference's numpy ones).
"""

from __future__ import annotations

import math

from llvmlite import ir

from cerebro.compiler.codegen import mathfn
from cerebro.compiler.codegen.elementwise import BINARY_RULES, UNARY_RULES, kind
from cerebro.compiler.codegen.llvm_types import index, load_value, store_value
from cerebro.compiler.codegen.loops import for_range
from cerebro.compiler.codegen.registry import EmitContext, emitter, unsupported
from cerebro.compiler.ir import Node

_COMBINE_OP = {"sum": "add", "prod": "mul", "max": "max", "min": "min"}


def _logaddexp(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """max(x, y) + log1p(exp(-|x - y|)), or x + y where x - y is NaN (as jax.numpy.logaddexp)."""
    delta = b.fsub(x, y)
    tail = mathfn.log1p(b, mathfn.exp(b, b.fneg(UNARY_RULES[("abs", "f")](b, delta))))
    spread = b.fadd(BINARY_RULES[("max", "f")](b, x, y), tail)
    return b.select(b.fcmp_unordered("uno", delta, delta), b.fadd(x, y), spread)


@emitter("cumulative")
def emit_cumulative(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    (x,) = node.inputs
    axis = node.attrs["axis"]
    combine = (_logaddexp if node.attrs["kind"] == "logaddexp" and x.dtype.is_float
               else BINARY_RULES.get((_COMBINE_OP.get(node.attrs["kind"], ""), kind(x.dtype))))
    if combine is None:
        raise unsupported(node, f"cumulative {node.attrs['kind']} on {x.dtype.name}")
    outer, n, inner = math.prod(x.shape[:axis]), x.shape[axis], math.prod(x.shape[axis + 1:])
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    px, pout = fn.args
    if x.size == 0:
        builder.ret_void()
        return
    with for_range(builder, outer, "o") as o:
        with for_range(builder, inner, "first") as e:
            at = index(builder, 0, (o, n * inner), (e, 1))
            first = load_value(builder, px, at, x.dtype)
            if node.attrs["kind"] == "sum":  # the sum starts from +0: a leading -0 becomes +0
                first = combine(builder, ir.Constant(first.type, 0), first)
            store_value(builder, first, pout, at, x.dtype)
        with for_range(builder, n, "i", start=1) as i:
            with for_range(builder, inner, "e") as e:
                at = index(builder, 0, (o, n * inner), (i, inner), (e, 1))
                before = builder.sub(at, ir.Constant(at.type, inner))
                running = load_value(builder, pout, before, x.dtype)
                store_value(builder, combine(builder, running, load_value(builder, px, at, x.dtype)), pout, at, x.dtype)
    builder.ret_void()
