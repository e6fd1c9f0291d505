"""The verifier: a graph is well formed, in order, and every node agrees with its rule.

After the compiler's passes (verify(graph, lowered=True)) some nodes no longer have their op's
plain operands: a fused group (attrs["nodes"]: fused elementwise chains, row kernels) is checked
node by node, a matmul/conv with an epilogue through the epilogue's nodes, and a node the passes
gave packed weights or strided views (LOWERED_ATTRS) for dataflow only.
"""

from __future__ import annotations

from cerebro.compiler.ir.graph import Graph, IRError, Node
from cerebro.compiler.ir.ops import infer

LOWERED_ATTRS = ("epilogue", "packed_b", "view")


def _check_rule(node: Node) -> None:
    expected = infer(node)
    got = [(v.shape, v.dtype) for v in node.outputs]
    if [(tuple(s), d) for s, d in expected] != got:
        raise IRError(f"{node.where()}: outputs {got} disagree with the op's rule {expected}")


def _check_lowered(node: Node) -> None:
    inner = list(node.attrs.get("nodes", ()))
    epilogue = node.attrs.get("epilogue")
    if epilogue is not None:
        inner += epilogue.nodes
    for part in inner:
        _check_rule(part)
    if "nodes" not in node.attrs and not any(attr in node.attrs for attr in LOWERED_ATTRS):
        _check_rule(node)


def verify(graph: Graph, lowered: bool = False) -> None:
    """Raise IRError naming the first offending op (and its source location); lowered: the graph
    is the passes' output (see the module docstring)."""
    defined = {v.id for v in graph.inputs}
    names = [v.name for v in graph.inputs]
    if len(set(names)) != len(names) or not all(names):
        raise IRError(f"graph inputs need distinct, non-empty names: {names}")
    for node in graph.nodes:
        for value in node.inputs:
            if not value.is_const and value.id not in defined:
                raise IRError(f"{node.where()}: input {value!r} is used before it is defined")
        (_check_lowered if lowered else _check_rule)(node)
        for value in node.outputs:
            if value.id in defined:
                raise IRError(f"{node.where()}: output {value!r} is defined twice")
            defined.add(value.id)
    if not graph.outputs:
        raise IRError("graph has no outputs")
    for value in graph.outputs:
        if not value.is_const and value.id not in defined:
            raise IRError(f"graph output {value!r} is never defined")
    if len(graph.output_names) != len(graph.outputs):
        raise IRError("graph output names do not match the outputs")
