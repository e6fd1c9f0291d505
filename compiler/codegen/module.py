"""The LLVM module of a model: node functions, stage functions, cerebro_entry and the .cbx globals.

Layout of the emitted module (see runtime_kmod/include/cerebro/abi.h):
  internal void @node<k>(ptr in..., ptr out...)    one per node, filled by its emitter
  internal void @stage<s>(ptr inputs, ptr outputs, ptr arena)
                                                   calls its nodes with pointers from the memory plan
  i32 @cerebro_entry(ptr inputs, ptr outputs, ptr arena, i32 stage)
                                                   switch on stage; 1 for a bad stage, else 0
  @cerebro_weights / @cerebro_meta / @cerebro_ir   placeholder sections the .cbx writer fills
llvmlite.ir cannot spell hidden globals or target attributes, so `finish_text`
rewrites those lines of the printed module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llvmlite import ir

from cerebro.compiler.codegen import EMITTERS, EmitContext
from cerebro.compiler.ir import Graph, IRError, Node
from cerebro.compiler.passes.memplan import VIEW_OPS, MemoryPlan, Place
from cerebro.compiler.targets import Target

PTR = ir.PointerType()
I8, I32, I64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
META_FIXED, META_PER_TENSOR = 520, 144


@dataclass
class Globals:
    weights: ir.GlobalVariable
    meta: ir.GlobalVariable
    text: ir.GlobalVariable


def _placeholder(module: ir.Module, name: str, size: int) -> ir.GlobalVariable:
    return ir.GlobalVariable(module, ir.ArrayType(I8, size), name)


def _node_function(ctx: EmitContext, node: Node, index: int) -> ir.Function:
    emit = EMITTERS.get(node.op)
    if emit is None:
        raise IRError(f"{node.where()}: no code generator for this op")
    arity = len(node.inputs) + len(node.outputs)
    fn = ir.Function(ctx.module, ir.FunctionType(ir.VoidType(), [PTR] * arity), f"node{index}_{node.op}")
    fn.linkage = "internal"
    # Kept out of line: inlining hundreds of kernels into the stage functions
    # tripled LLVM's time on MobileNetV3 (45 s -> 13 s) for no run-time gain.
    fn.attributes.add("noinline")
    for arg in fn.args:
        arg.add_attribute("noalias")
    emit(ctx, node, fn)
    return fn


class _StageBuilder:
    """Turns memory-plan places into pointers inside one stage function."""

    def __init__(self, fn: ir.Function, weights: ir.GlobalVariable) -> None:
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.inputs, self.outputs, self.arena = fn.args
        self.weights = weights

    def pointer(self, place: Place) -> ir.Value:
        b = self.b
        if place.kind in ("input", "output"):
            array = self.inputs if place.kind == "input" else self.outputs
            slot = b.gep(array, [ir.Constant(I64, place.offset)], inbounds=True, source_etype=PTR)
            return b.load(slot, typ=PTR)
        base = self.arena if place.kind == "arena" else self.weights
        return b.gep(base, [ir.Constant(I64, place.offset)], inbounds=True, source_etype=I8)


def emit_module(graph: Graph, plan: MemoryPlan, stages: list[list[Node]], target: Target, ir_text: str) -> str:
    """LLVM IR text of the whole model (graph already verified and planned)."""
    module = ir.Module(name=graph.name)
    module.triple = target.triple
    ctx = EmitContext(module, target)
    num_tensors = len(graph.inputs) + len(graph.outputs)
    text = ir_text.encode() + b"\0"
    globals_ = Globals(_placeholder(module, "cerebro_weights", len(plan.weights)),
                       _placeholder(module, "cerebro_meta", META_FIXED + META_PER_TENSOR * num_tensors),
                       _placeholder(module, "cerebro_ir", len(text)))

    functions: dict[int, ir.Function] = {}
    for index, node in enumerate(graph.nodes):
        if node.op in VIEW_OPS or all(v.size == 0 for v in node.outputs):
            continue
        functions[id(node)] = _node_function(ctx, node, index)

    memcpy = module.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])
    stage_fns = []
    for number, nodes in enumerate(stages):
        fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR, PTR]), f"stage{number}")
        fn.linkage = "internal"
        sb = _StageBuilder(fn, globals_.weights)
        for node in nodes:
            if id(node) in functions:
                args = [sb.pointer(plan.place(v)) for v in node.inputs + node.outputs]
                sb.b.call(functions[id(node)], args)
        if number == len(stages) - 1:
            for source, index, nbytes in plan.copies:
                if nbytes:
                    dst = sb.pointer(Place("output", index))
                    size, volatile = ir.Constant(I64, nbytes), ir.Constant(ir.IntType(1), 0)
                    sb.b.call(memcpy, [dst, sb.pointer(source), size, volatile])
        sb.b.ret_void()
        stage_fns.append(fn)

    entry = ir.Function(module, ir.FunctionType(I32, [PTR, PTR, PTR, I32]), "cerebro_entry")
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    bad = entry.append_basic_block("bad_stage")
    switch = b.switch(entry.args[3], bad)
    for number, fn in enumerate(stage_fns):
        block = entry.append_basic_block(f"run_stage{number}")
        switch.add_case(ir.Constant(I32, number), block)
        b.position_at_end(block)
        b.call(fn, list(entry.args[:3]))
        b.ret(ir.Constant(I32, 0))
    b.position_at_end(bad)
    b.ret(ir.Constant(I32, 1))
    return finish_text(str(module), target, len(plan.weights), META_FIXED + META_PER_TENSOR * num_tensors, text)


def _c_string(data: bytes) -> str:
    return "".join(chr(c) if 32 <= c < 127 and c not in (34, 92) else f"\\{c:02X}" for c in data)


def finish_text(text: str, target: Target, weights_size: int, meta_size: int, ir_bytes: bytes) -> str:
    """Spell the .cbx globals and give every defined function the target's attribute group
    (#1, the same plus noinline, for functions llvmlite marked noinline)."""
    lines = []
    for line in text.splitlines():
        if line.startswith('@"cerebro_weights" = '):
            line = (f'@"cerebro_weights" = hidden global [{weights_size} x i8] zeroinitializer, '
                    f'section ".cerebro.weights", align 64')
        elif line.startswith('@"cerebro_meta" = '):
            line = (f'@"cerebro_meta" = hidden global [{meta_size} x i8] zeroinitializer, '
                    f'section ".cerebro.meta", align 8')
        elif line.startswith('@"cerebro_ir" = '):
            line = (f'@"cerebro_ir" = hidden global [{len(ir_bytes)} x i8] c"{_c_string(ir_bytes)}", '
                    f'section ".cerebro.ir", align 1')
        elif line.startswith("define "):
            group = "#1" if re.search(r"\)[a-z ]*\bnoinline\b[a-z ]*\{?$", line) else "#0"
            line = re.sub(r"\)[a-z ]*(\{?)$", rf") {group} \1", line).rstrip()
        lines.append(line)
    # no jump tables: a switch lowered to an indirect jump is refused by objtool in the kernel's RETPOLINE build
    attrs = ["nounwind", "noredzone", '"no-jump-tables"="true"']
    if target.is_x86:
        attrs.append("fn_ret_thunk_extern")
    attrs += [f'"target-cpu"="{target.cpu}"', f'"target-features"="{target.features}"']
    lines.append(f"attributes #0 = {{ {' '.join(attrs)} }}")
    lines.append(f"attributes #1 = {{ noinline {' '.join(attrs)} }}")
    return "\n".join(lines) + "\n"
