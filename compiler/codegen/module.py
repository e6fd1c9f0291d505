"""The LLVM module of a model: node functions, stage functions, cerebro_entry and the .cbx globals.

Layout of the emitted module (see runtime_kmod/include/cerebro/abi.h):
  internal void @node<k>(ptr in..., ptr out... [, i32 part, i32 parts])
                                                   one per node, filled by its emitter (parts: PARALLEL ops)
  internal void @stage<s>(ptr inputs, ptr outputs, ptr arena, i32 part, i32 parts)
                                                   calls its nodes (or slices of them: Piece)
                                                   with pointers from the memory plan
  internal void @step<k>(ptr inputs, ptr outputs, ptr arena, i32 part, i32 parts)
                                                   the same for step k of a call split into parts
  i32 @cerebro_entry(ptr inputs, ptr outputs, ptr arena, i32 stage_word)
                                                   decodes the word, switch on the stage (one part)
                                                   or the step (more); 1 if bad, 2 after the last step
  @cerebro_weights / @cerebro_meta / @cerebro_ir   placeholder sections the .cbx writer fills
A call split into parts (abi.h) runs steps instead of stages, every step on
every part: a parallel node computes its part's share, any other node runs
on part 0. Steps end where the parts must meet: between two node calls of
which one is parallel, so no part reads what another is still writing. The
host runs every part of a step before the next, on any of its threads, and
waits in between (it can sleep; code that imports nothing could only spin).
A node sliced over several stages is one call in a step (its slices, part
i*parts + part of k*parts, tile the same units). The output copies run on
part 0 at the end, in a step of their own when the last node was parallel.
llvmlite.ir cannot spell hidden globals or target attributes, so `finish_text`
rewrites those lines of the printed module.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from llvmlite import ir

from cerebro.compiler.cbx.format import LAST_STEP, MAX_STAGES, meta_size
from cerebro.compiler.codegen import EMITTERS, PARALLEL, EmitContext, conv
from cerebro.compiler.codegen.kernel_key import Key, kernel_key
from cerebro.compiler.codegen.partition import Piece
from cerebro.compiler.ir import Graph, IRError, Node
from cerebro.compiler.ir.loop import Layout
from cerebro.compiler.ir.plan import VIEW_OPS, MemoryPlan, Place
from cerebro.compiler.targets import Target

PTR = ir.PointerType()
I8, I32, I64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)


@dataclass
class Globals:
    weights: ir.GlobalVariable
    meta: ir.GlobalVariable
    text: ir.GlobalVariable


def _placeholder(module: ir.Module, name: str, size: int) -> ir.GlobalVariable:
    return ir.GlobalVariable(module, ir.ArrayType(I8, size), name)


# op -> the sizes its node function takes as trailing i64 arguments instead of constants, so that nodes
# differing only in them share one function (kernel_key leaves them out)
SIZE_ARGUMENTS: dict[str, Callable[[Node], list[int]]] = {"conv": conv.size_arguments}


def _size_arguments(node: Node) -> list[ir.Constant]:
    rule = SIZE_ARGUMENTS.get(node.op)
    return [ir.Constant(I64, size) for size in rule(node)] if rule is not None else []


def _node_function(ctx: EmitContext, node: Node, index: int, prefix: str = "", sizes: bool = False
                   ) -> ir.Function:
    """prefix: what sets apart the node functions of a loop's body (codegen/loop_op.py) from the model's;
    sizes: the function takes _size_arguments (its callers pass them)."""
    emit = EMITTERS.get(node.op)
    if emit is None:
        raise IRError(f"{node.where()}: no code generator for this op")
    params = [PTR] * (len(node.inputs) + len(node.outputs)) + [I32, I32] * (node.op in PARALLEL)
    params += [I64] * len(_size_arguments(node)) * sizes
    fn = ir.Function(ctx.module, ir.FunctionType(ir.VoidType(), params), f"{prefix}node{index}_{node.op}")
    fn.linkage = "internal"
    # Kept out of line: inlining hundreds of kernels into the stage functions
    # tripled LLVM's time on MobileNetV3 (45 s -> 13 s) for no run-time gain.
    fn.attributes.add("noinline")
    for arg in fn.args:  # every buffer argument, so the emitters need not
        if arg.type == PTR:
            arg.add_attribute("noalias")
    emit(ctx, node, fn)
    return fn


class _StageBuilder:
    """Turns memory-plan places into pointers and node calls inside one stage or step function."""

    def __init__(self, fn: ir.Function, weights: ir.GlobalVariable) -> None:
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.inputs, self.outputs, self.arena, self.part, self.parts = fn.args[:5]
        self.weights = weights

    def call(self, node: Node, node_fn: ir.Function, args: list[ir.Value], index: ir.Value, count: int) -> None:
        """A parallel node runs on every part (slice `index` of `count`: as part index*parts + part of
        count*parts), any other on part 0 only."""
        sizes = _size_arguments(node)
        if node.op in PARALLEL:
            b = self.b
            part, parts = self.part, self.parts
            if count > 1:
                part = b.add(b.mul(self.parts, index), self.part)
                parts = b.mul(self.parts, ir.Constant(I32, count))
            b.call(node_fn, args + [part, parts] + sizes)
        else:
            with self.b.if_then(self.b.icmp_unsigned("==", self.part, ir.Constant(I32, 0))):
                self.b.call(node_fn, args + sizes)

    def node(self, node: Node, node_fn: ir.Function, plan: MemoryPlan, index: int = 0, count: int = 1) -> None:
        """Calls the node (slice `index` of `count`) on the memory plan's pointers."""
        args = [self.pointer(plan.place(v)) for v in node.inputs + node.outputs]
        self.call(node, node_fn, args, ir.Constant(I32, index), count)

    def copy_outputs(self, plan: MemoryPlan, memcpy: ir.Function) -> None:
        """Part 0 copies the graph outputs the plan could not place in the caller's buffers."""
        if not any(nbytes for _, _, nbytes in plan.copies):
            return
        with self.b.if_then(self.b.icmp_unsigned("==", self.part, ir.Constant(I32, 0))):
            for source, index, nbytes in plan.copies:
                if nbytes:
                    dst = self.pointer(Place("output", index))
                    size, volatile = ir.Constant(I64, nbytes), ir.Constant(ir.IntType(1), 0)
                    self.b.call(memcpy, [dst, self.pointer(source), size, volatile])

    def pointer(self, place: Place) -> ir.Value:
        b = self.b
        if place.kind in ("input", "output"):
            array = self.inputs if place.kind == "input" else self.outputs
            slot = b.gep(array, [ir.Constant(I64, place.offset)], inbounds=True, source_etype=PTR)
            return b.load(slot, typ=PTR)
        base = self.arena if place.kind == "arena" else self.weights
        return b.gep(base, [ir.Constant(I64, place.offset)], inbounds=True, source_etype=I8)


def emit_module(graph: Graph, plan: MemoryPlan, stages: list[list[Piece]], target: Target, ir_text: str,
                loops: dict[int, Layout] | None = None) -> str:
    """LLVM IR text of the whole model (graph already verified and planned; loops: its loop nodes' scratch
    layouts, passes/loops.loop_layouts)."""
    module = ir.Module(name=graph.name)
    module.triple = target.triple
    ctx = EmitContext(module, target, loops or {})
    num_tensors = len(graph.inputs) + len(graph.outputs)
    text = ir_text.encode() + b"\0"
    globals_ = Globals(_placeholder(module, "cerebro_weights", len(plan.weights)),
                       _placeholder(module, "cerebro_meta", meta_size(num_tensors)),
                       _placeholder(module, "cerebro_ir", len(text)))

    functions: dict[int, ir.Function] = {}
    kernels: dict[Key, ir.Function] = {}  # nodes whose code would be the same call one function
    for index, node in enumerate(graph.nodes):
        if node.op in VIEW_OPS or all(v.size == 0 for v in node.outputs):
            continue
        key = kernel_key(node)  # None: no function shared
        fn = kernels.get(key) if key is not None else None
        if fn is None:
            fn = _node_function(ctx, node, index, sizes=True)
            if key is not None:
                kernels[key] = fn
        functions[id(node)] = fn

    memcpy = module.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])
    stage_fns: dict[int, ir.Function] = {}
    runs: list[_Run] = []
    for number, pieces in enumerate(stages):
        if _continues(stages, number) and id(pieces[0].node) in functions:
            if runs and runs[-1].first + runs[-1].stages == number:
                runs[-1].stages += 1
            else:
                runs.append(_Run(number, 1, pieces[0]))
            continue
        sb = _StageBuilder(_body(module, f"stage{number}"), globals_.weights)
        for piece in pieces:
            if id(piece.node) in functions:
                sb.node(piece.node, functions[id(piece.node)], plan, piece.index, piece.count)
        if number == len(stages) - 1:
            sb.copy_outputs(plan, memcpy)
        sb.b.ret_void()
        stage_fns[number] = sb.b.function
    for run in runs:
        run.fn = _run_function(module, run, functions[id(run.piece.node)], plan, globals_.weights)
    steps = _steps(stages, functions, any(nbytes for _, _, nbytes in plan.copies))
    step_fns = []
    for number, nodes in enumerate(steps):
        sb = _StageBuilder(_body(module, f"step{number}"), globals_.weights)
        for node in nodes:
            sb.node(node, functions[id(node)], plan)
        if number == len(steps) - 1:
            sb.copy_outputs(plan, memcpy)
        sb.b.ret_void()
        step_fns.append(sb.b.function)
    _entry(module, stage_fns, runs, step_fns)
    return finish_text(str(module), target, len(plan.weights), meta_size(num_tensors), text)


def _body(module: ir.Module, name: str) -> ir.Function:
    """An empty internal stage or step function: void (inputs, outputs, arena, part, parts)."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR, PTR, I32, I32]), name)
    fn.linkage = "internal"
    return fn


def _steps(stages: list[list[Piece]], functions: dict[int, ir.Function], copies: bool) -> list[list[Node]]:
    """The node calls of a split call, in steps: a step ends between two node calls of which one is
    parallel (part 0 alone runs consecutive serial nodes), and after a parallel last node when part 0
    then copies outputs (it needs every part's share). A node sliced over stages is called once."""
    steps: list[list[Node]] = [[]]
    previous: Node | None = None
    for node in (piece.node for pieces in stages for piece in pieces):
        if id(node) not in functions or node is previous:
            continue
        if previous is not None and PARALLEL.intersection((node.op, previous.op)):
            steps.append([])
        steps[-1].append(node)
        previous = node
    if copies and previous is not None and previous.op in PARALLEL:
        steps.append([])
    if len(steps) > MAX_STAGES:
        raise IRError(f"a call split into parts would take {len(steps)} steps; the stage word allows {MAX_STAGES}")
    return steps


@dataclass
class _Run:
    """Stages first .. first+stages-1, each one more slice of piece's node (from piece.index on): one
    function takes the slice as an argument, so a node cut into thousands of slices costs LLVM one
    small function, not thousands."""

    first: int
    stages: int
    piece: Piece
    fn: ir.Function | None = None


def _continues(stages: list[list[Piece]], number: int) -> bool:
    """Stage `number` is only the next slice of the node the stage before ended with (so it needs no
    barrier) and is not the last stage (which copies outputs)."""
    if number == 0 or number == len(stages) - 1 or len(stages[number]) != 1:
        return False
    piece, before = stages[number][0], stages[number - 1][-1]
    return piece.count > 1 and before.node is piece.node and before.index == piece.index - 1


def _run_function(module: ir.Module, run: _Run, node_fn: ir.Function, plan: MemoryPlan,
                  weights: ir.GlobalVariable) -> ir.Function:
    """void @slices<first>(inputs, outputs, arena, part, parts, slice): calls the node's slice."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR, PTR, I32, I32, I32]), f"slices{run.first}")
    fn.linkage = "internal"
    sb = _StageBuilder(fn, weights)
    node = run.piece.node
    args = [sb.pointer(plan.place(v)) for v in node.inputs + node.outputs]
    sb.call(node, node_fn, args, fn.args[5], run.piece.count)
    sb.b.ret_void()
    return fn


def _entry(module: ir.Module, stage_fns: dict[int, ir.Function], runs: list[_Run], step_fns: list[ir.Function]
           ) -> None:
    """cerebro_entry: split the stage word (abi.h) and run the stage (a stage of a run: its run's
    function with the slice), or with more than one part the step (the last returns LAST_STEP); an
    index past the last or a part outside 0..parts-1 is a bad stage."""
    entry = ir.Function(module, ir.FunctionType(I32, [PTR, PTR, PTR, I32]), "cerebro_entry")
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    bad = entry.append_basic_block("bad_stage")
    word = entry.args[3]
    stage = b.and_(word, ir.Constant(I32, 0xFFFF))
    part = b.and_(b.lshr(word, ir.Constant(I32, 16)), ir.Constant(I32, 0xFF))
    parts = b.add(b.lshr(word, ir.Constant(I32, 24)), ir.Constant(I32, 1))
    dispatch, steps, stages = (entry.append_basic_block(name) for name in ("dispatch", "steps", "stages"))
    b.cbranch(b.icmp_unsigned("<", part, parts), dispatch, bad)
    b.position_at_end(dispatch)
    b.cbranch(b.icmp_unsigned(">", parts, ir.Constant(I32, 1)), steps, stages)
    b.position_at_end(stages)
    for run in runs:
        offset = b.sub(stage, ir.Constant(I32, run.first))
        with b.if_then(b.icmp_unsigned("<", offset, ir.Constant(I32, run.stages))):
            b.call(run.fn, [*entry.args[:3], part, parts, b.add(offset, ir.Constant(I32, run.piece.index))])
            b.ret(ir.Constant(I32, 0))
    switch = b.switch(stage, bad)
    for number, fn in stage_fns.items():
        block = entry.append_basic_block(f"run_stage{number}")
        switch.add_case(ir.Constant(I32, number), block)
        b.position_at_end(block)
        b.call(fn, [*entry.args[:3], part, parts])
        b.ret(ir.Constant(I32, 0))
    b.position_at_end(steps)
    switch = b.switch(stage, bad)
    for number, fn in enumerate(step_fns):
        block = entry.append_basic_block(f"run_step{number}")
        switch.add_case(ir.Constant(I32, number), block)
        b.position_at_end(block)
        b.call(fn, [*entry.args[:3], part, parts])
        b.ret(ir.Constant(I32, LAST_STEP if number == len(step_fns) - 1 else 0))
    b.position_at_end(bad)
    b.ret(ir.Constant(I32, 1))


_ESCAPED = re.compile(rb'[^\x20-\x7e]|["\\]')  # what an LLVM c"..." string spells as \XX


def _c_string(data: bytes) -> str:
    return _ESCAPED.sub(lambda m: b"\\%02X" % m[0][0], data).decode("ascii")


# The lines finish_text rewrites (found by one regex over the text: a model's module has 100k+ lines)
_FINISHED = re.compile(r'^(?:@"cerebro_(weights|meta|ir)" = .*|define .*)$', re.M)


def finish_text(text: str, target: Target, weights_size: int, meta_size: int, ir_bytes: bytes) -> str:
    """Spell the .cbx globals and give every defined function the target's attribute group
    (#1, the same plus noinline, for functions llvmlite marked noinline)."""
    spelled = {
        "weights": f'@"cerebro_weights" = hidden global [{weights_size} x i8] zeroinitializer, '
                   f'section ".bss.cerebro.weights", align 64',  # NOBITS: no zeros in the object (cbx/writer.py)
        "meta": f'@"cerebro_meta" = hidden global [{meta_size} x i8] zeroinitializer, section ".cerebro.meta", align 8',
        "ir": f'@"cerebro_ir" = hidden global [{len(ir_bytes)} x i8] c"{_c_string(ir_bytes)}", '
              f'section ".cerebro.ir", align 1',
    }

    def finish(match: re.Match) -> str:
        if match[1] is not None:
            return spelled[match[1]]
        line = match[0]
        group = "#1" if re.search(r"\)[a-z ]*\bnoinline\b[a-z ]*\{?$", line) else "#0"
        return re.sub(r"\)[a-z ]*(\{?)$", rf") {group} \1", line).rstrip()

    lines = [_FINISHED.sub(finish, text.rstrip("\n"))]
    # no jump tables: a switch lowered to an indirect jump is refused by objtool in the kernel's RETPOLINE build
    attrs = ["nounwind", "noredzone", '"no-jump-tables"="true"']
    if target.is_x86:
        attrs.append("fn_ret_thunk_extern")
    attrs += [f'"target-cpu"="{target.cpu}"', f'"target-features"="{target.features}"']
    lines.append(f"attributes #0 = {{ {' '.join(attrs)} }}")
    lines.append(f"attributes #1 = {{ noinline {' '.join(attrs)} }}")
    return "\n".join(lines) + "\n"
