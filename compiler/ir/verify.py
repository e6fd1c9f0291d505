"""The verifier: a graph is well formed, in order, and every node agrees with its rule."""

from __future__ import annotations

from cerebro.compiler.ir.graph import Graph, IRError
from cerebro.compiler.ir.ops import infer


def verify(graph: Graph) -> None:
    """Raise IRError naming the first offending op (and its source location)."""
    defined = {v.id for v in graph.inputs}
    names = [v.name for v in graph.inputs]
    if len(set(names)) != len(names) or not all(names):
        raise IRError(f"graph inputs need distinct, non-empty names: {names}")
    for node in graph.nodes:
        for value in node.inputs:
            if not value.is_const and value.id not in defined:
                raise IRError(f"{node.where()}: input {value!r} is used before it is defined")
        expected = infer(node)
        got = [(v.shape, v.dtype) for v in node.outputs]
        if [(tuple(s), d) for s, d in expected] != got:
            raise IRError(f"{node.where()}: outputs {got} disagree with the op's rule {expected}")
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
