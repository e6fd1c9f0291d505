"""The compiler driver: IR graph in, complete .cbx bytes out.

verify -> fold, dce -> optimise (transposes, row kernels, fusion, epilogues, prepack, views) -> verify -> stages
-> memory plan -> LLVM module -> O3 -> object -> .cbx
"""

from __future__ import annotations

import dataclasses
import math
import re

import llvmlite.binding as llvm

from cerebro.compiler.cbx.format import MAX_PARTS, Meta, TensorSpec
from cerebro.compiler.cbx.writer import finish_object
from cerebro.compiler.codegen.module import emit_module
from cerebro.compiler.ir import Graph, IRError, Node, Value, format_graph, verify
from cerebro.compiler.passes import FUSED, eliminate_dead_nodes, fold_constants, fuse_elementwise, plan_memory
from cerebro.compiler.passes.epilogue import fuse_epilogues
from cerebro.compiler.passes.prepack import prepack_weights
from cerebro.compiler.passes.rows import ROW_KERNEL, fuse_rows
from cerebro.compiler.passes.transpose import absorb_transposes, matmul_view, simplify_transposes
from cerebro.compiler.targets import Target, resolve_target

STAGE_FLOPS = 20_000_000  # budget per stage, so one kernel FPU section stays short
_TRANSCENDENTAL = frozenset({"exp", "log", "log1p", "expm1", "tanh", "erf", "logistic", "sin", "cos", "pow"})


def _matmul_flops(node: Node) -> int:
    return 2 * node.outputs[0].size * matmul_view(node).depth


def _conv_flops(node: Node) -> int:
    w = node.inputs[1]
    return 2 * node.outputs[0].size * math.prod(w.shape[:-1])


def _window_flops(node: Node) -> int:
    return node.outputs[0].size * math.prod(node.attrs["window"])


FLOP_RULES = {
    "matmul": _matmul_flops,
    "conv": _conv_flops,
    "reduce_window": _window_flops,
    **{op: (lambda node: node.inputs[0].size) for op in ("reduce_sum", "reduce_max", "reduce_min", "reduce_prod",
                                                          "argmax", "argmin")},
    **{op: (lambda node: 20 * node.outputs[0].size) for op in _TRANSCENDENTAL},
    "reshape": lambda node: 0,
    FUSED: lambda node: sum(node_flops(inner) for inner in node.attrs["nodes"]),
    ROW_KERNEL: lambda node: sum(node_flops(inner) for inner in node.attrs["nodes"]),
}


def node_flops(node: Node) -> int:
    """A rough cost: multiply-adds count two, transcendentals twenty, data movement one per element."""
    rule = FLOP_RULES.get(node.op)
    cost = int(rule(node)) if rule else sum(v.size for v in node.outputs)
    epilogue = node.attrs.get("epilogue")  # an elementwise chain fused into a matmul/conv runs in its stage
    if epilogue is not None:
        cost += sum(node_flops(inner) for inner in epilogue.nodes)
    return cost


def split_stages(nodes: list[Node], budget: int) -> list[list[Node]]:
    """Consecutive runs of nodes whose estimated flops stay within budget (a bigger node gets its own stage)."""
    stages: list[list[Node]] = [[]]
    spent = 0
    for node in nodes:
        cost = node_flops(node)
        if stages[-1] and spent + cost > budget:
            stages.append([])
            spent = 0
        stages[-1].append(node)
        spent += cost
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
    """Parse, verify, optimise (O3, new pass manager) and emit an ELF object."""
    tm, module = _optimised(text, target)
    return tm.emit_object(module)


def compile_assembly(text: str, target: Target) -> str:
    """The assembly compile_llvm would assemble (to check what the vectoriser did)."""
    tm, module = _optimised(text, target)
    return tm.emit_assembly(module)


def _optimised(text: str, target: Target) -> tuple[llvm.TargetMachine, llvm.ModuleRef]:
    tm = target.target_machine()
    module = llvm.parse_assembly(text)
    module.verify()
    module.triple = target.triple
    module.data_layout = str(tm.target_data)
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(module, pb)
    return tm, module


def optimise(graph: Graph, target: Target) -> Graph:
    """The rewriting passes after folding, in order; each takes and returns the graph."""
    graph = simplify_transposes(graph)
    graph = fuse_rows(graph)
    graph = fuse_elementwise(graph)
    graph = fuse_epilogues(graph)
    graph = prepack_weights(graph, target)
    graph = absorb_transposes(graph)
    return graph


def lower(graph: Graph, target: str | Target = "host", stage_flops: int = STAGE_FLOPS
          ) -> tuple[Graph, str, Meta, bytes]:
    """Everything up to LLVM: (optimised graph, LLVM IR text, meta, weights)."""
    tgt = resolve_target(target)
    verify(graph)
    graph = eliminate_dead_nodes(fold_constants(_private_copy(graph)))
    ir_text = format_graph(graph)
    graph = optimise(graph, tgt)
    verify(graph, lowered=True)  # the passes kept the graph well formed
    stages = split_stages(graph.nodes, stage_flops)
    plan = plan_memory(graph)
    text = emit_module(graph, plan, stages, tgt, ir_text)
    flops = [sum(node_flops(n) for n in stage) for stage in stages]
    names = graph.output_names
    if len(set(names)) != len(names):
        raise IRError(f"graph output names must be distinct: {names}")
    meta = Meta(machine=tgt.machine, num_stages=len(stages), arena_size=plan.arena_size,
                weights_size=len(plan.weights), flops=sum(flops), max_stage_flops=max(flops),
                triple=tgt.triple, cpu=tgt.cpu, features=tgt.meta_features, model_name=_model_name(graph.name),
                parts=MAX_PARTS,
                inputs=[TensorSpec(v.name, v.shape, v.dtype) for v in graph.inputs],
                outputs=[TensorSpec(n, v.shape, v.dtype) for n, v in zip(names, graph.outputs)])
    return graph, text, meta, plan.weights


def _model_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:63] or "model"


def build(graph: Graph, target: str | Target = "host", name: str | None = None,
          stage_flops: int = STAGE_FLOPS) -> bytes:
    """Compile graph into a complete .cbx (ELF relocatable object + Cerebro sections) for target.

    target: 'host', 'x86_64', 'x86_64-v3', 'x86_64-v4' or 'aarch64' (see compiler/targets.py).
    name: the model name recorded in the meta (default: graph.name).
    stage_flops: estimated flops per stage before the work is split into another stage.
    The caller's graph is not modified.
    """
    if name is not None:
        graph = _private_copy(graph)
        graph.name = name
    _, text, meta, weights = lower(graph, target, stage_flops)
    return finish_object(compile_llvm(text, resolve_target(target)), meta, weights)
