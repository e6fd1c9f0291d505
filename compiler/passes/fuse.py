"""Elementwise fusion: a chain like conv -> sub -> mul -> add -> max becomes one loop.

An elementwise node absorbs the group that produced one of its inputs when that
value has the node's full output shape and no other reader (no other node, not
a graph output); it reads the input of a broadcast_in_dim directly, with
broadcast strides, instead of the broadcast copy. A group that changed becomes
one node, op FUSED: attrs["nodes"] are the original nodes in order and
attrs["loads"] says, for each value the body reads from memory, which input of
the fused node holds it and with which strides (elements, per output dim).
Intermediates then never touch memory, and the memory plan never sees them.

First, an elementwise node on a matmul/conv result whose one reader is a reshape of the leading dims
(GPT-2's Conv1D: matmul -> add bias -> reshape to [batch, seq, n]) runs after the reshape instead
(lift_reshapes), so it and what reads the reshape (GELU, the residual add) make one chain, which
passes/epilogue.py then fuses into the matmul whole; the reshape between them had stopped both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cerebro.compiler.ir import Graph, Node, Value
from cerebro.compiler.ir.fused import FUSED
from cerebro.compiler.ir.ops import ELEMENTWISE, EPILOGUE_HOSTS, Role, role_of
from cerebro.compiler.ir.strides import broadcast_strides, contiguous_strides
from cerebro.compiler.passes.dce import eliminate_dead_nodes


@dataclass
class _Group:
    body: list[Node] = field(default_factory=list)
    loads: dict[int, tuple[Value, tuple[int, ...]]] = field(default_factory=dict)  # value id -> (storage, strides)
    viewed: bool = False


def read_counts(graph: Graph) -> dict[int, int]:
    """How many times each value (by id) is read: once per node input, once per graph output."""
    count: dict[int, int] = {}
    for node in graph.nodes:
        for value in node.inputs:
            count[value.id] = count.get(value.id, 0) + 1
    for value in graph.outputs:
        count[value.id] = count.get(value.id, 0) + 1
    return count


def broadcast_view(node: Node) -> tuple[Value, tuple[int, ...]]:
    """The input of a broadcast_in_dim and the strides that read it at the broadcast's indices."""
    (x,) = node.inputs
    strides = [0] * node.outputs[0].rank
    for axis, (dim, stride) in enumerate(zip(node.attrs["broadcast_dimensions"], contiguous_strides(x.shape))):
        strides[dim] = 0 if x.shape[axis] == 1 else stride
    return x, tuple(strides)


def _fused_node(group: _Group) -> Node:
    storage: dict[int, Value] = {}
    for source, _ in group.loads.values():
        storage.setdefault(source.id, source)
    slot = {vid: k for k, vid in enumerate(storage)}
    loads = tuple((vid, slot[source.id], strides) for vid, (source, strides) in group.loads.items())
    out = group.body[-1].outputs[0]
    fused = Node(FUSED, list(storage.values()), [out], {"nodes": tuple(group.body), "loads": loads},
                 group.body[-1].loc)
    out.producer = fused
    return fused


def _liftable(node: Node, reshape: Node, producer: dict[int, Node], readers: dict[int, int]) -> Value | None:
    """node's full-shape input when node may run after `reshape` (its one reader): the reshape keeps
    the last dim, that input is a matmul/conv result read only here, and every other input is one
    row broadcast over the leading dims (a bias) or a scalar."""
    out, new = node.outputs[0], reshape.outputs[0].shape
    if len(node.outputs) != 1 or not new or not out.shape or new[-1] != out.shape[-1]:
        return None
    full = [v for v in node.inputs if v.shape == out.shape]
    if len(full) != 1 or readers.get(full[0].id) != 1 or full[0].producer is None:
        return None
    source = producer.get(full[0].id)
    if source is None or role_of(source.op) not in EPILOGUE_HOSTS:
        return None
    if any(v is not full[0] and (any(d != 1 for d in v.shape[:-1]) or v.rank > len(new)) for v in node.inputs):
        return None
    return full[0]


def lift_reshapes(graph: Graph) -> Graph:
    """elementwise(x, bias) -> reshape becomes reshape(x) -> elementwise(., bias), x a matmul/conv result
    (see the module docstring); the bias is read as a row of the new shape. In place; returns graph."""
    readers = read_counts(graph)
    producer = {v.id: node for node in graph.nodes for v in node.outputs}
    users: dict[int, list[Node]] = {}
    for node in graph.nodes:
        for value in node.inputs:
            users.setdefault(value.id, []).append(node)
    outputs = {v.id for v in graph.outputs}
    lifted: dict[int, list[Node]] = {}  # id of a node -> what replaces it
    for node in graph.nodes:
        if node.op not in ELEMENTWISE or len(node.outputs) != 1 or node.outputs[0].id in outputs:
            continue
        out = node.outputs[0]
        readers_of = users.get(out.id, [])
        if readers.get(out.id) != 1 or len(readers_of) != 1 or readers_of[0].op != "reshape":
            continue
        reshape = readers_of[0]
        x = _liftable(node, reshape, producer, readers)
        if x is None:
            continue
        new = reshape.outputs[0]
        replacement, inputs = [], []
        for v in node.inputs:
            shape = new.shape if v is x else (1,) * (new.rank - 1) + (v.shape[-1:] or (1,))
            if v.shape == shape:
                inputs.append(v)
            elif v.is_const:
                inputs.append(Value(shape, v.dtype, v.name, data=v.data.reshape(shape)))
            else:
                view = Node("reshape", [v], [Value(shape, v.dtype)], {"shape": shape}, node.loc)
                view.outputs[0].producer = view
                replacement.append(view)
                inputs.append(view.outputs[0])
        moved = Node(node.op, inputs, [new], dict(node.attrs), node.loc)
        new.producer = moved
        lifted[id(node)], lifted[id(reshape)] = [*replacement, moved], []
        reshape.inputs, reshape.outputs = [x], [Value(new.shape, new.dtype)]  # now x's view, placed before
        reshape.outputs[0].producer = reshape
        moved.inputs[node.inputs.index(x)] = reshape.outputs[0]
        lifted[id(node)].insert(0, reshape)
    if lifted:
        graph.nodes = [n for node in graph.nodes for n in lifted.get(id(node), [node])]
    return graph


def fuse_elementwise(graph: Graph) -> Graph:
    """Merge single-reader elementwise chains and absorb broadcasts, in place; returns graph."""
    graph = lift_reshapes(graph)
    readers = read_counts(graph)
    producer = {v.id: node for node in graph.nodes for v in node.outputs}
    groups: dict[int, _Group] = {}  # output value id of a group's last node -> the group
    order: list[_Group | Node] = []
    for node in graph.nodes:
        if node.op not in ELEMENTWISE:
            order.append(node)
            continue
        out = node.outputs[0]
        group = _Group()
        for value in node.inputs:
            inner = groups.get(value.id)
            if inner is not None and readers.get(value.id) == 1 and value.shape == out.shape:
                group.body.extend(inner.body)
                group.loads.update(inner.loads)
                group.viewed = True
                inner.body = []  # absorbed: its slot in `order` is dropped
                del groups[value.id]
            elif value.id not in group.loads:
                source = producer.get(value.id)
                if source is not None and role_of(source.op) is Role.BROADCAST:
                    x, strides = broadcast_view(source)
                    group.loads[value.id] = (x, tuple(0 if v == 1 and o != 1 else s
                                                      for v, o, s in zip(value.shape, out.shape, strides)))
                    group.viewed = True
                else:
                    group.loads[value.id] = (value, tuple(broadcast_strides(value.shape, out.shape)))
        group.body.append(node)
        groups[out.id] = group
        order.append(group)
    nodes = []
    for item in order:
        if isinstance(item, Node):
            nodes.append(item)
        elif item.body:
            nodes.append(_fused_node(item) if item.viewed else item.body[0])
    graph.nodes = nodes
    return eliminate_dead_nodes(graph)
