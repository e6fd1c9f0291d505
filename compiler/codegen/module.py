"""The LLVM module of a model: node functions, cerebro_entry with its call tables and the .cbx globals.

Layout of the emitted module (see runtime_kmod/include/cerebro/abi.h):
  internal void @node<k>(ptr in..., ptr out... [, i32 part, i32 parts])
                                                   one per node, filled by its emitter (parts: PARALLEL ops)
  i32 @cerebro_entry(ptr inputs, ptr outputs, ptr arena, i32 stage_word)
                                                   decodes the word, finds the stage (one part) or
                                                   the step (more) in constant tables and walks its
                                                   row of call entries (node calls, or slices of
                                                   them: Piece, with the memory plan's pointers;
                                                   calls.py); 1 if bad, 2 after the last step
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

import contextlib
import gc
import re
from collections.abc import Iterator
from dataclasses import dataclass

from llvmlite import ir

from cerebro.compiler.cbx.format import MAX_STAGES, meta_size
from cerebro.compiler.codegen import EMITTERS, PARALLEL, SIZES, EmitContext, mathfn
from cerebro.compiler.codegen.calls import SLICE, UNCHUNKED, Call, CallTable, Chunking, Segment, emit_entry
from cerebro.compiler.codegen.kernel_key import Key, kernel_key
from cerebro.compiler.codegen.partition import Piece
from cerebro.compiler.ir import Graph, IRError, Node
from cerebro.compiler.ir.loop import Layout
from cerebro.compiler.ir.plan import VIEW_OPS, MemoryPlan
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


def _size_arguments(node: Node) -> list[int]:
    """The sizes node's function takes as trailing i64 arguments (registry.SizeRules)."""
    rules = SIZES.get(node.op)
    return rules.arguments(node) if rules is not None else []


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


@contextlib.contextmanager
def young_garbage() -> Iterator[None]:
    """No cyclic garbage collection within the block (unless the caller had it off already).

    llvmlite's module is tens of thousands of objects in reference cycles (an instruction and its block),
    alive until printed: collected as they are made, they outlived the young collections, went to the
    oldest generation and so brought on a full collection, which walks every object of the process
    (JAX's ~340k): about one per resnet18 compile, 0.1-0.2 s. Paused, they stay young, and _release
    frees them by reference counting once printed; the first collection after the block (still within
    the compile) walks the few left. Only the module's objects are made here, so memory grows by no more
    than the module itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def emit_module(graph: Graph, plan: MemoryPlan, stages: list[list[Piece]], target: Target, ir_text: str,
                loops: dict[int, Layout] | None = None, chunking: Chunking = UNCHUNKED) -> str:
    """LLVM IR text of the whole model (graph already verified and planned; loops: its loop nodes' scratch
    layouts, passes/loops.loop_layouts; chunking: the stages and steps run once per chunk of the batch)."""
    with young_garbage():
        return _emit_module(graph, plan, stages, target, ir_text, loops, chunking)


def _emit_module(graph: Graph, plan: MemoryPlan, stages: list[list[Piece]], target: Target, ir_text: str,
                 loops: dict[int, Layout] | None, chunking: Chunking) -> str:
    module = ir.Module(name=graph.name)
    module.triple = target.triple
    ctx = EmitContext(module, target, loops or {})
    mathfn.use_target(module, target)
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
        key = kernel_key(node, target)  # None: no function shared
        fn = kernels.get(key) if key is not None else None
        if fn is None:
            fn = _node_function(ctx, node, index, sizes=True)
            if key is not None:
                kernels[key] = fn
        functions[id(node)] = fn

    table = CallTable(module, plan, len(graph.inputs), len(graph.outputs))

    def call(node: Node, index: int | None = 0, count: int = 1) -> Call:
        return Call(node, functions[id(node)], index, count, tuple(_size_arguments(node)))

    stage_segments: list[Segment] = []
    in_run = False  # the stage before only continued a node's slices: this one may extend its segment
    for number, pieces in enumerate(stages):
        if _continues(stages, number) and id(pieces[0].node) in functions:
            if in_run:
                stage_segments[-1].length += 1
            else:
                piece = pieces[0]
                calls, row = table.add([call(piece.node, SLICE, piece.count)], False)
                stage_segments.append(Segment(number, 1, calls, row, piece.index))
            in_run = True
            continue
        in_run = False
        calls = [call(p.node, p.index, p.count) for p in pieces if id(p.node) in functions]
        stage_segments.append(Segment(number, 1, *table.add(calls, number == len(stages) - 1)))
    steps = (_steps(stages, functions, any(nbytes for _, _, nbytes in plan.copies), chunking.count)
             if chunking.regions == 1 else [])  # chunks in parallel take no steps (calls.emit_entry)
    step_segments = [Segment(number, 1, *table.add([call(node) for node in nodes], number == len(steps) - 1))
                     for number, nodes in enumerate(steps)]
    emit_entry(module, table, globals_.weights, stage_segments, step_segments, chunking)
    printed = str(module)
    _release(module)
    return finish_text(printed, target, len(plan.weights), meta_size(num_tensors), text)


def _release(module: ir.Module) -> None:
    """Empty the printed module's objects (instructions, blocks, arguments, functions, the module), whose
    references run in cycles (an instruction and its block, a phi and its loop's values, a function and
    its arguments, closures of the emitters): reference counting then frees nearly all of it at once, and
    the collection after young_garbage has next to nothing to walk (resnet18: 60k objects -> a few)."""
    for fn in module.functions:
        for block in fn.blocks:
            for instruction in block.instructions:
                instruction.__dict__.clear()
            block.__dict__.clear()
        for arg in fn.args:
            arg.__dict__.clear()
        fn.__dict__.clear()
    module.__dict__.clear()


def _steps(stages: list[list[Piece]], functions: dict[int, ir.Function], copies: bool, chunks: int = 1
           ) -> list[list[Node]]:
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
    if len(steps) * chunks > MAX_STAGES:
        raise IRError(f"a call split into parts would take {len(steps) * chunks} steps; the stage word allows "
                      f"{MAX_STAGES}")
    return steps


def _continues(stages: list[list[Piece]], number: int) -> bool:
    """Stage `number` is only the next slice of the node the stage before ended with (so it needs no
    barrier) and is not the last stage (which copies outputs)."""
    if number == 0 or number == len(stages) - 1 or len(stages[number]) != 1:
        return False
    piece, before = stages[number][0], stages[number - 1][-1]
    return piece.count > 1 and before.node is piece.node and before.index == piece.index - 1


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
