"""Channel shuffles as one interleaving concatenation (ShuffleNet's blocks, channels last).

ShuffleNetV2 joins its two branches and shuffles their channels:
  c = concatenate(x_1, ..., x_G, axis=-1)      [..., G*K]  (each x_k [..., K])
  t = transpose(reshape(c, [..., G, K]), swap the last two)   [..., K, G]
t[..., j, k] is x_k[..., j], so t = concatenate(reshape(x_k, [..., K, 1]) for k, axis=-1): one pass that
interleaves the G inputs (codegen/layout.py copies rows of one element per input as vectors) instead of
the concatenation's copy and then the transpose's. Same elements moved, so the same bits; the reshapes
are views (memory plan).
"""

from __future__ import annotations

from cerebro.compiler.ir import Graph, Node, Value, make_node
from cerebro.compiler.passes.dce import eliminate_dead_nodes


def _interleaving(producer: dict[int, Node], node: Node) -> list[Value] | None:
    """The inputs x_1..x_G of a shuffle ending in transpose `node` (see the module doc), or None."""
    perm = tuple(node.attrs["perm"])
    rank = len(perm)
    if rank < 2 or perm != (*range(rank - 2), rank - 1, rank - 2):
        return None
    split = producer.get(node.inputs[0].id)
    if split is None or split.op != "reshape":
        return None
    join = producer.get(split.inputs[0].id)
    if join is None or join.op != "concatenate" or join.attrs["axis"] != join.outputs[0].rank - 1:
        return None
    parts, (groups, width) = join.inputs, split.outputs[0].shape[-2:]
    lead = join.outputs[0].shape[:-1]
    if split.outputs[0].shape[:-2] != lead or len(parts) != groups:
        return None
    if any(x.shape != (*lead, width) for x in parts):
        return None
    return parts


def interleave_shuffles(graph: Graph) -> Graph:
    """Rewrite each channel shuffle (module doc) in place; returns graph."""
    producer = {v.id: n for n in graph.nodes for v in n.outputs}
    nodes: list[Node] = []
    for node in graph.nodes:
        parts = _interleaving(producer, node) if node.op == "transpose" else None
        if parts is None:
            nodes.append(node)
            continue
        columns = []
        for x in parts:
            nodes.append(make_node("reshape", [x], node.loc, shape=(*x.shape, 1)))
            columns.append(nodes[-1].outputs[0])
        out = node.outputs[0]
        nodes.append(make_node("concatenate", columns, node.loc, out, axis=out.rank - 1))
    graph.nodes = nodes
    return eliminate_dead_nodes(graph)
