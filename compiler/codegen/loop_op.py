"""The `loop` op (compiler/ir/loop.py) as a real loop: each step calls the body's node functions.

The node is prepared by passes/loops.py: its body holds no constants and has a memory plan of its own,
and its last output is the scratch that passes/loops.Layout lays out. Per step:
  cur/next carries: the two buffers of each carry, swapped by the step's parity (the body writes its new
                    carries straight into `next`, so no step copies a carry);
  x and y rows:     read and written in place (emitters assume element alignment only); step i
                    reads and writes row i (reverse: length-1-i).
A while loop runs its condition's node functions on the current carries before each step. The body's
node functions are named after the (first) loop's own function, so bodies of different loops never clash.
"""

from __future__ import annotations

import weakref

from llvmlite import ir

from cerebro.compiler.codegen.registry import PARALLEL, EmitContext, emitter
from cerebro.compiler.ir import Graph, IRError, Node
from cerebro.compiler.ir.loop import parts, row_bytes
from cerebro.compiler.ir.plan import VIEW_OPS, MemoryPlan, Place

PTR = ir.PointerType()
I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)


class _Graph:
    """A body or condition: its node functions and memory plan, called with pointers to its inputs and
    outputs (lists of ir values, by position)."""

    def __init__(self, ctx: EmitContext, graph: Graph, plan: MemoryPlan, prefix: str) -> None:
        from cerebro.compiler.codegen.module import _node_function  # module imports this package

        self.graph, self.plan = graph, plan
        self.calls = [(node, _node_function(ctx, node, k, prefix)) for k, node in enumerate(graph.nodes)
                      if node.op not in VIEW_OPS and not all(v.size == 0 for v in node.outputs)]

    def call(self, b: ir.IRBuilder, work: ir.Value, inputs: list[ir.Value], outputs: list[ir.Value]) -> None:
        def pointer(place: Place) -> ir.Value:
            if place.kind == "input":
                return inputs[place.offset]
            if place.kind == "output":
                return outputs[place.offset]
            if place.kind == "arena":
                return _at(b, work, place.offset)
            raise IRError(f"a loop body reads from {place.kind}: passes/loops.py lifts its constants")

        for node, fn in self.calls:
            args = [pointer(self.plan.place(v)) for v in node.inputs + node.outputs]
            b.call(fn, args + [ir.Constant(I32, 0), ir.Constant(I32, 1)] * (node.op in PARALLEL))
        for source, index, nbytes in self.plan.copies:
            if nbytes:
                _copy(b, outputs[index], pointer(source), nbytes)


# One set of node functions per body (or condition) and module: the chunks of a split scan
# (passes/loops.split_scans) hold the same body and share its code.
_COMPILED: weakref.WeakKeyDictionary[ir.Module, dict[int, _Graph]] = weakref.WeakKeyDictionary()


def _compiled(ctx: EmitContext, graph: Graph, plan: MemoryPlan, prefix: str) -> _Graph:
    known = _COMPILED.setdefault(ctx.module, {})
    if id(graph) not in known:  # the entry keeps graph alive, so its id is never reused in this module
        known[id(graph)] = _Graph(ctx, graph, plan, prefix)
    return known[id(graph)]


def _copy(b: ir.IRBuilder, dst: ir.Value, src: ir.Value, nbytes: int) -> None:
    memcpy = b.module.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])
    b.call(memcpy, [dst, src, ir.Constant(I64, nbytes), ir.Constant(I1, 0)])


def _at(b: ir.IRBuilder, base: ir.Value, offset: int | ir.Value) -> ir.Value:
    offset = offset if isinstance(offset, ir.Value) else ir.Constant(I64, offset)
    return b.gep(base, [offset], inbounds=True, source_etype=I8)


@emitter("loop")
def emit_loop(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    if not node.attrs.get("scratch", 0):
        raise IRError(f"{node.where()}: a loop is compiled after passes/loops.py prepares it")
    plan = ctx.loops.get(id(node))
    if plan is None:
        raise IRError(f"{node.where()}: no scratch layout for this loop (EmitContext.loops: passes/loops.loop_layouts)")
    consts, carries, xs = parts(node)
    num_in = len(node.inputs)
    inputs, outputs = list(fn.args[:num_in]), list(fn.args[num_in:])
    nc, nk = len(consts), len(carries)
    const_args, carry_in, x_args = inputs[:nc], inputs[nc:nc + nk], inputs[nc + nk:]
    scratch = outputs[-1]
    carry_out, y_args = outputs[:nk], outputs[nk:-1]
    body = _compiled(ctx, node.attrs["body"], plan.body, f"{fn.name}.")
    cond = _compiled(ctx, node.attrs["cond"], plan.cond, f"{fn.name}.cond.") if plan.cond is not None else None

    b = ir.IRBuilder(fn.append_basic_block("entry"))
    work = _at(b, scratch, plan.work)
    buffers = [(_at(b, scratch, first), _at(b, scratch, second)) for first, second in plan.carries]
    for (first, _), source, value in zip(buffers, carry_in, carries):
        _copy(b, first, source, value.nbytes)
    entry = b.block
    head, step, done = (fn.append_basic_block(name) for name in ("head", "step", "done"))
    b.branch(head)

    b.position_at_end(head)
    i = b.phi(I64, "i")
    i.add_incoming(ir.Constant(I64, 0), entry)
    odd = b.trunc(i, I1)
    current = [b.select(odd, second, first) for first, second in buffers]
    following = [b.select(odd, first, second) for first, second in buffers]
    if cond is not None:
        flag = _at(b, scratch, plan.flag)
        cond.call(b, work, const_args + current, [flag])
        go = b.icmp_unsigned("!=", b.load(flag, typ=I8), ir.Constant(I8, 0))
    else:
        go = b.icmp_unsigned("<", i, ir.Constant(I64, int(node.attrs["length"])))
    b.cbranch(go, step, done)

    b.position_at_end(step)
    row = _row(b, node, i)
    x_rows = [_at(b, arg, b.mul(row, ir.Constant(I64, row_bytes(x)))) for x, arg in zip(xs, x_args)]
    y_rows = [_at(b, arg, b.mul(row, ir.Constant(I64, row_bytes(y)))) for y, arg in zip(node.outputs[nk:-1], y_args)]
    body.call(b, work, const_args + current + x_rows, following + y_rows)
    i.add_incoming(b.add(i, ir.Constant(I64, 1)), b.block)
    b.branch(head)

    b.position_at_end(done)
    for target, source, value in zip(carry_out, current, carries):
        _copy(b, target, source, value.nbytes)
    b.ret_void()


def _row(b: ir.IRBuilder, node: Node, i: ir.Value) -> ir.Value:
    """The row step i reads and writes: i, or length-1-i for a reverse scan (0 for a while loop)."""
    if node.attrs["cond"] is not None:
        return ir.Constant(I64, 0)
    if node.attrs.get("reverse"):
        return b.sub(ir.Constant(I64, int(node.attrs["length"]) - 1), i)
    return i
