"""Dead-node elimination: drop nodes none of whose outputs reach a graph output."""

from __future__ import annotations

from cerebro.compiler.ir import Graph


def eliminate_dead_nodes(graph: Graph) -> Graph:
    """Remove unused nodes in place (walking backwards from the outputs); returns graph."""
    needed = {v.id for v in graph.outputs}
    kept = []
    for node in reversed(graph.nodes):
        if any(v.id in needed for v in node.outputs):
            kept.append(node)
            needed.update(v.id for v in node.inputs)
    graph.nodes = kept[::-1]
    return graph
