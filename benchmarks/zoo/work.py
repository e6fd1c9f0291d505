"""The work a model's call must do, counted on the graph Cerebro compiles (the imported IR with its
constant expressions folded): flops of convolutions, of matmuls against weights and of matmuls between
activations (attention's products), the rest (elementwise, normalisation, softmax, pools) as the IR's
cost model counts it; the weight bytes a call reads; and the activation tensors that cross between
convolutions and matmuls, which a layer-by-layer execution must write out and read back. Of the
convolutions' flops, two parts are counted apart too: dense 3x3 stride-1 ones, which Winograd's
transforms can do with fewer multiplications (F(2x2, 3x3): 2.25x fewer), the one way under a flop floor;
and grouped ones (depthwise), whose few flops per byte keep them far from the FMA peak."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from cerebro.compiler.ir import Graph, Node
from cerebro.compiler.ir.ops import OPS, Role, role_of

# Work that a perfect compiler need not do at all: views, copies and layout changes (it would pick one
# layout and write producers in place), so neither its flops nor its bytes count.
NO_WORK = frozenset({Role.VIEW, Role.LAYOUT, Role.BROADCAST})
HEAVY = (Role.CONV, Role.MATMUL)  # their operands and results are the activation traffic (elementwise work fuses)


def _kind(node: Node, role: Role | None) -> str:
    if role is Role.CONV:
        return "conv"
    if role is Role.MATMUL:
        return "matmul" if any(v.is_const for v in node.inputs) else "attention"
    return "other"


def winograd_eligible(node: Node) -> bool:
    """A dense 2-D 3x3 convolution with stride 1 and no dilation (w is [KH, KW, Cin, Cout])."""
    w = node.inputs[1]
    ones = (1,) * (w.rank - 2)
    return (node.op == "conv" and w.shape[:-2] == (3, 3) and node.attrs.get("groups", 1) == 1
            and tuple(node.attrs["strides"]) == ones and tuple(node.attrs.get("rhs_dilation") or ones) == ones
            and tuple(node.attrs.get("lhs_dilation") or ones) == ones)


def _weight_bytes(node: Node, role: Role | None, counted: set[int]) -> int:
    """The constants node reads that no earlier node read; of a gathered table only the rows it takes."""
    total = 0
    for position, value in enumerate(node.inputs):
        if value.is_const and value.id not in counted:
            counted.add(value.id)
            gathered = role is Role.GATHER and position == 0
            total += node.outputs[0].nbytes if gathered else value.nbytes
    return total


def count_graph(graph: Graph) -> dict:
    """Flops by kind (and the dense 3x3/1 and the grouped convolutions' among them), weight bytes, and the
    activations at conv/matmul boundaries as {bytes: how many}, each tensor once per boundary (a producer's
    output and a consumer's input are one write and one read)."""
    flops = {"conv": 0, "matmul": 0, "attention": 0, "other": 0}
    conv3x3 = grouped = 0
    weights, counted, activations = 0, set(), Counter()
    for node in graph.nodes:
        role = role_of(node.op)
        weights += _weight_bytes(node, role, counted)
        if role in NO_WORK or node.op not in OPS:
            continue
        flops[_kind(node, role)] += OPS[node.op].cost(node)
        if role is Role.CONV and winograd_eligible(node):
            conv3x3 += OPS[node.op].cost(node)
        elif role is Role.CONV and node.attrs.get("groups", 1) > 1:
            grouped += OPS[node.op].cost(node)
        if role in HEAVY:
            activations.update(v.nbytes for v in (*node.inputs, *node.outputs) if not v.is_const)
    return {"flops": flops, "conv3x3_flops": conv3x3, "grouped_conv_flops": grouped, "weight_bytes": weights,
            "activation_bytes": {str(n): k for n, k in sorted(activations.items(), reverse=True)}}


def count(onnx_file: Path) -> dict:
    """count_graph of the ONNX file as Cerebro imports it, constants folded and dead nodes dropped."""
    from cerebro.compiler.passes import eliminate_dead_nodes, fold_constants
    from cerebro.frontends.onnx import import_onnx

    graph = eliminate_dead_nodes(fold_constants(import_onnx(onnx_file.read_bytes())))
    return count_graph(graph)
