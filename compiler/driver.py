"""The compiler driver: IR graph in, complete .cbx bytes out.

verify -> fold, dce -> optimise (layouts, transposes, row kernels, fusion, epilogues, Winograd, prepack, views)
-> verify -> stages -> memory plan -> LLVM module -> O3/O2 -> object -> .cbx
"""

from __future__ import annotations

import dataclasses
import gc
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import llvmlite.binding as llvm
import numpy as np

from cerebro.compiler import llvm_parts
from cerebro.compiler.cbx.format import MAX_PARTS, MAX_STAGES, Meta, TensorSpec
from cerebro.compiler.cbx.profile_table import attach_profile, node_info
from cerebro.compiler.cbx.writer import Sealed, sealed_object
from cerebro.compiler.codegen import UNITS
from cerebro.compiler.codegen.calls import Chunking
from cerebro.compiler.codegen.module import emit_module
from cerebro.compiler.codegen.partition import Piece
from cerebro.compiler.fpu_check import check_integer_graph, check_object
from cerebro.compiler.ir import Graph, IRError, Node, Value, format_graph, verify
from cerebro.compiler.ir.fused import node_flops
from cerebro.compiler.ir.loop import UNBOUNDED
from cerebro.compiler.ir.plan import Weights
from cerebro.compiler.passes import eliminate_dead_nodes, fold_constants, fuse_elementwise, plan_memory
from cerebro.compiler.passes.batch_chunks import Chunks, chunk_batch
from cerebro.compiler.passes.epilogue import fuse_epilogues
from cerebro.compiler.passes.explicit_pad import pad_conv_inputs
from cerebro.compiler.passes.half_weights import narrow_half_weights
from cerebro.compiler.passes.int8_weights import quantize_weights
from cerebro.compiler.passes.layout import choose_layouts
from cerebro.compiler.passes.loops import loop_layouts, prepare_loops, split_scans
from cerebro.compiler.passes.prepack import prepack_weights
from cerebro.compiler.passes.rows import fuse_rows
from cerebro.compiler.passes.shuffle import interleave_shuffles
from cerebro.compiler.passes.softmax_terms import zero_subnormal_softmax_terms
from cerebro.compiler.passes.transpose import absorb_transposes, simplify_transposes
from cerebro.compiler.passes.winograd import winograd_convs
from cerebro.compiler.progress import phase
from cerebro.compiler.quantize import check_quantize
from cerebro.compiler.targets import Target, resolve_target

# The stage budget: the kernel host runs each stage in one kernel_fpu_begin/end section (preemption
# off), which should last at most about 1 ms. Assumed rate: a 2 GHz core doing 2 estimated flops
# (node_flops) per cycle, 4 GFLOP/s: the matmul/conv register tiles sustain 10-20 (22-54 GFLOP/s
# measured for a 512^3 matmul on one AVX2 core), memory-bound elementwise work about 1 element per
# cycle, which node_flops counts as 1 flop (transcendentals 20). So 1 ms ~ 4 M estimated flops.
STAGE_FLOPS = 4_000_000
COLLECTED_BUILD_BYTES = 64 << 20  # a .cbx this big: build_sealed collects the build's garbage (~30 ms) first


def slice_node(node: Node, budget: int, target: Target) -> list[Piece]:
    """The node in as few slices as keep each within budget, or as small as its units allow (a node
    that is not parallel, or whose unit of work alone exceeds the budget, stays bigger: honestly
    reported in meta.max_stage_flops)."""
    cost = node_flops(node)
    rule = UNITS.get(node.op)
    if budget <= 0 or cost <= budget or rule is None:
        return [Piece(node, 0, 1, cost)]
    count = _slice_count(cost, budget, lambda parts: max(1, rule(node, target, parts)))
    units = max(1, rule(node, target, count))
    edges = [units * i // count for i in range(count + 1)]
    return [Piece(node, i, count, -(-cost * (edges[i + 1] - edges[i]) // units)) for i in range(count)]


def _slice_count(cost: int, budget: int, units: Callable[[int], int]) -> int:
    """The fewest slices whose largest fits the budget, else the count giving the smallest largest.
    Counts go up from the least that could fit while each slice still gets a unit (a rule's units may
    depend on the count, as matmul's rows or columns: once too few, they stay too few)."""
    fewest = min(-(-cost // budget), MAX_STAGES)
    best: tuple[int, int] | None = None  # (largest slice, count)
    for count in range(fewest, MAX_STAGES + 1):
        total = units(count)
        if total < count:
            break
        largest = -(-cost * -(-total // count) // total)
        best = min(best or (largest, count), (largest, count))
        if largest <= budget:
            break
    if best is not None:
        return best[1]
    return next(c for c in range(fewest - 1, 0, -1) if units(c) >= c)  # fewer units than `fewest`


def split_stages(nodes: list[Node], budget: int, target: Target, count: int = 1) -> list[list[Piece]]:
    """Consecutive runs of node slices whose estimated flops stay within budget (a bigger slice gets
    its own stage). budget 0: every node whole, each in its own stage (a zero-cost node joins the one
    before), as build(profile=True) wants. A model too big for the stage word at this budget gets the
    smallest doubled budget that fits: user space runs it as well, and meta.max_stage_flops says
    honestly what a kernel's max_stage_flops limit must allow. Batch chunks run the stages `count` times,
    and all of them share the stage word (vit_b_16 b8 in chunks of 1: 9433 stages of 4 MFLOP a chunk)."""
    while True:
        stages = _split_at(nodes, budget, target)
        if len(stages) * count <= MAX_STAGES:
            return stages
        if budget <= 0:
            raise IRError(f"{len(stages)} nodes: more than the stage word's {MAX_STAGES} stages")
        budget *= 2


def _split_at(nodes: list[Node], budget: int, target: Target) -> list[list[Piece]]:
    stages: list[list[Piece]] = [[]]
    spent = 0
    for node in nodes:
        for piece in slice_node(node, budget, target):
            if stages[-1] and spent + piece.flops > budget:
                stages.append([])
                spent = 0
            stages[-1].append(piece)
            spent += piece.flops
    return stages


def _private_copy(graph: Graph) -> Graph:
    """A copy the passes may rewrite: new nodes and node outputs (same ids); inputs and constants,
    which no pass changes, are shared."""
    copied = Graph(graph.name)
    copied.inputs = list(graph.inputs)
    fresh: dict[int, Value] = {}
    for node in graph.nodes:
        twin = Node(node.op, [fresh.get(v.id, v) for v in node.inputs], [], dict(node.attrs), node.loc)
        for value in node.outputs:
            fresh[value.id] = dataclasses.replace(value, producer=twin)
            twin.outputs.append(fresh[value.id])
        copied.nodes.append(twin)
    copied.set_outputs([fresh.get(v.id, v) for v in graph.outputs], list(graph.output_names))
    return copied


def compile_llvm(text: str, target: Target) -> bytes:
    """Parse, verify, optimise (llvm_parts: O3, O2 for conv kernels) and emit an ELF object."""
    tm, module = _optimised(text, target)
    with phase("LLVM machine code"):
        return tm.emit_object(module)


def compile_assembly(text: str, target: Target) -> str:
    """The assembly compile_llvm would assemble (to check what the vectoriser did)."""
    tm, module = _optimised(text, target)
    return tm.emit_assembly(module)


def _optimised(text: str, target: Target) -> tuple[llvm.TargetMachine, llvm.ModuleRef]:
    tm = target.target_machine()
    with phase("LLVM optimise"):  # parse and verify too; each kernel at its level, on two cores if big
        return tm, llvm_parts.optimise_in_parts(text, target, tm, llvm_parts.worth_processes(text))


def optimise(graph: Graph, target: Target, quantize: str | None = None) -> Graph:
    """The rewriting passes after folding, in order; each takes and returns the graph."""
    graph = choose_layouts(graph)
    graph = interleave_shuffles(simplify_transposes(graph))
    graph = pad_conv_inputs(graph)
    graph = fuse_rows(zero_subnormal_softmax_terms(graph))
    graph = fuse_elementwise(graph)
    graph = fuse_epilogues(graph)
    graph = winograd_convs(graph, target)
    graph = prepack_weights(graph, target)
    graph = quantize_weights(graph, quantize)
    graph = narrow_half_weights(graph, target)
    graph = absorb_transposes(graph)
    return graph


def lower(graph: Graph, target: str | Target = "host", stage_flops: int = STAGE_FLOPS,
          quantize: str | None = None, chunked: bool = True,
          chunk: int | None = None) -> tuple[Graph, str, Meta, Weights]:
    """Everything up to LLVM: (optimised graph, LLVM IR text, meta, weights). chunked: a batch too big for the
    cache may run in chunks (passes/batch_chunks.py; meta.num_stages is then the chunks' stages in turn).
    chunk: chunks of this many samples, bypassing the rules (a benchmark's forced build)."""
    check_quantize(quantize)
    tgt = resolve_target(target)
    with phase("verify"):
        verify(graph)
    with phase("fold constants"):
        folded = eliminate_dead_nodes(fold_constants(_private_copy(graph)))
        ir_text = format_graph(folded)
    if tgt.fpu == "none":
        check_integer_graph(folded)
    chunks = chunk_batch(folded, size=chunk) if chunked else Chunks(folded, 1)
    graph = chunks.graph
    with phase("optimise"):
        graph = optimise(graph, tgt, quantize)
        graph = split_scans(prepare_loops(graph, lambda body: optimise(
            eliminate_dead_nodes(fold_constants(_private_copy(body))), tgt, quantize)), stage_flops)
        verify(graph, lowered=True)  # the passes kept the graph well formed
    with phase("stages and memory plan"):
        if len(graph.nodes) * chunks.count >= MAX_STAGES:  # not even a stage per node fits the stage word
            return lower(folded, tgt, stage_flops, quantize, chunked=False)
        stages = split_stages(graph.nodes, stage_flops, tgt, chunks.count)
        plan = plan_memory(graph)
    with phase("lower to LLVM IR"):
        chunking = Chunking(chunks.count, tuple(v.nbytes for v in graph.inputs), tuple(v.nbytes for v in graph.outputs),
                            chunks.regions)
        text = emit_module(graph, plan, stages, tgt, ir_text, loop_layouts(graph), chunking)
    flops = [sum(piece.flops for piece in stage) for stage in stages]
    names = graph.output_names
    if len(set(names)) != len(names):
        raise IRError(f"graph output names must be distinct: {names}")
    meta = Meta(machine=tgt.machine, num_stages=len(stages) * chunks.count,
                arena_size=plan.arena_size, regions=chunking.regions,
                region_size=chunking.region_bytes(plan.arena_size),
                weights_size=len(plan.weights),
                flops=min(sum(node_flops(n) for n in graph.nodes) * chunks.count, UNBOUNDED),
                max_stage_flops=min(max(flops), UNBOUNDED),  # a while loop's steps are UNBOUNDED
                triple=tgt.triple, cpu=tgt.cpu, features=tgt.meta_features, model_name=_model_name(graph.name),
                parts=MAX_PARTS, fpu=tgt.fpu,
                inputs=[TensorSpec(v.name, v.shape, v.dtype) for v in folded.inputs],
                outputs=[TensorSpec(n, v.shape, v.dtype) for n, v in zip(names, folded.outputs)])
    return graph, text, meta, plan.weights


def _model_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:63] or "model"


def build(graph: Graph, target: str | Target = "host", name: str | None = None,
          stage_flops: int = STAGE_FLOPS, profile: bool = False, quantize: str | None = None,
          chunk: int | None = None) -> bytes:
    """build_sealed's .cbx as one bytes."""
    return bytes(build_sealed(graph, target, name, stage_flops, profile, quantize, chunk))


def build_sealed(graph: Graph, target: str | Target = "host", name: str | None = None,
                 stage_flops: int = STAGE_FLOPS, profile: bool = False, quantize: str | None = None,
                 chunk: int | None = None) -> Sealed:
    """_built's pieces. The passes' graphs are reference cycles (node <-> value) that hold the packed
    weights the pieces are made of: for a big file they are collected here, so the weights go when the
    caller drops the pieces, not at some later collection (a zoo worker loading gpt2's 495 MB file after
    dropping them faulted fresh pages for it: load 0.73 -> 1.6 s)."""
    sealed = _built(graph, target, name, stage_flops, profile, quantize, chunk)
    if sealed.nbytes >= COLLECTED_BUILD_BYTES:
        gc.collect()
    return sealed


def _built(graph: Graph, target: str | Target, name: str | None, stage_flops: int, profile: bool,
           quantize: str | None, chunk: int | None) -> Sealed:
    """Compile graph into a complete .cbx (ELF relocatable object + Cerebro sections) for target, as the
    pieces of the file (Sealed: written piece by piece, a model's weights are not joined into one more copy).

    target: 'host', 'x86_64', 'x86_64-v3', 'x86_64-v4' or 'aarch64' (see compiler/targets.py).
    name: the model name recorded in the meta (default: graph.name).
    stage_flops: estimated flops per stage (node_flops) before the work goes on in another stage; a
    bigger node is cut into slices (see Piece). 0: every node whole in its own stage.
    profile: every node whole in its own stage (stage_flops is ignored), and a table naming each stage's
    node, op and source locations stored in the file (compiler/cbx/profile_table.py) for `cerebroc
    profile` and cerebro.Model.profile.
    quantize: None (f32 as given) or "int8-weights" (passes/int8_weights.py: constant matmul weights int8
    with a scale per output column, activations f32).
    chunk: run the batch in chunks of this many samples (a divisor of it; the batch itself: whole) whatever
    passes/batch_chunks.py's rules pick: for benchmarks/batch_chunks.py, which measures the rules' choice.
    The caller's graph is not modified.
    """
    if name is not None:
        graph = _private_copy(graph)
        graph.name = name
    with _small_pages():
        optimised, text, meta, weights = lower(graph, target, 0 if profile else stage_flops, quantize, chunk=chunk)
        obj = compile_llvm(text, resolve_target(target))
        if meta.fpu == "none":
            with phase("check fpu none"):
                check_object(obj, meta.machine, f"model '{meta.model_name}'")
        with phase("write .cbx"):
            sealed = sealed_object(obj, meta, weights)
            if profile:
                stages = split_stages(optimised.nodes, 0, resolve_target(target))
                table = [[node_info(p.node, p.flops) for p in stage] for stage in stages]
                sealed = Sealed((attach_profile(bytes(sealed), table * (meta.num_stages // len(stages))),))
            return sealed


@contextmanager
def _small_pages() -> Iterator[None]:
    """numpy's arrays made meanwhile without MADV_HUGEPAGE (the caller's setting restored after). A build
    makes and drops hundreds of MB of weight copies (folding, packing, the .cbx), and where the kernel's
    transparent huge pages defrag on madvise, faults in such arrays compact memory first: on a Xeon VM bert's
    build and .cbx write took 3.5 CPU s with numpy's default, 2.8 without (the 435 MB file written in 0.85 ->
    0.15 s). numpy's switch is private (numpy._core.multiarray); where it is missing nothing changes."""
    core = getattr(np, "_core", None)
    switch = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if switch is None:
        yield
        return
    before = switch(False)
    try:
        yield
    finally:
        switch(before)
