"""A matmul whose output is only cut into column slices becomes one matmul per slice.

GPT-2's attention projection is one matmul against W[768, 2304] (+ bias), whose output is then sliced
into q, k and v ([.., 0:768], [.., 768:1536], [.., 1536:2304]): three copies of the whole output per layer.
Here each slice gets its own matmul against its columns of W (and of the bias), so q, k and v are
written where they are read and the slices disappear:

    slice(reshape(matmul(a, W) + b))[.., c0:c1]  ->  reshape(matmul(a, W[:, c0:c1]) + b[.., c0:c1])

Each output element is the same dot product over the same K in the same order (the kernel's K panels
depend on K alone), so the bits do not change. The chain between the matmul and the slices may hold
constant bias adds and reshapes that keep the last dim (they only regroup rows); every value in it has one
reader and is no graph output; the slices cut only the last dim, with unit stride, and do not overlap
(no column is computed twice).
"""

from __future__ import annotations

from cerebro.compiler.ir import Graph, Node, Value


def _bias(node: Node, value: Value) -> Value | None:
    """The constant node adds to value along value's rows (last dim the same or 1), else None."""
    if node.op != "add" or len(node.inputs) != 2 or value not in node.inputs:
        return None
    other = node.inputs[1] if node.inputs[0] is value else node.inputs[0]
    if other is value or not other.is_const or other.rank > value.rank or other.dtype != value.dtype:
        return None
    return other if other.shape and other.shape[-1] in (1, value.shape[-1]) else None


def _keeps_columns(node: Node, value: Value) -> bool:
    """node is a reshape of value that keeps its last dim."""
    out = node.outputs[0].shape
    return node.op == "reshape" and bool(out) and out[-1] == value.shape[-1]


def _columns(node: Node, value: Value) -> tuple[int, int] | None:
    """(first, end) column when node is a unit-stride slice of value's last dim only, else None."""
    if node.op != "slice" or node.inputs[0] is not value or not value.shape:
        return None
    start, limit, strides = node.attrs["start"], node.attrs["limit"], node.attrs["strides"]
    lead = len(value.shape) - 1
    if any(s != 1 for s in strides) or any(s != 0 for s in start[:lead]) or tuple(limit[:lead]) != value.shape[:lead]:
        return None
    return (start[lead], limit[lead]) if limit[lead] > start[lead] else None


def _split(node: Node, users: dict[int, list[Node]], outputs: set[int]) -> tuple[list, list[Node]] | None:
    """(chain steps, slice nodes) when node's output reaches only disjoint column slices, else None.
    A step is ("bias", add node, constant) or ("reshape", reshape node)."""
    a, w = node.inputs[:2] if len(node.inputs) == 2 else (None, None)
    if w is None or not w.is_const or w.rank != 2 or "epilogue" in node.attrs or "view" in node.attrs:
        return None
    value, steps = node.outputs[0], []
    while True:
        readers = users.get(value.id, [])
        if value.id in outputs or not readers:
            return None
        if all(_columns(r, value) for r in readers):
            spans = sorted(_columns(r, value) for r in readers)
            if len(set(map(id, readers))) != len(readers) or any(e > s for (_, e), (s, _) in zip(spans, spans[1:])):
                return None
            return steps, readers
        if len(readers) != 1:
            return None
        (reader,) = readers
        bias = _bias(reader, value)
        if bias is not None:
            steps.append(("bias", reader, bias))
        elif _keeps_columns(reader, value):
            steps.append(("reshape", reader))
        else:
            return None
        value = reader.outputs[0]


def _columns_of(const: Value, first: int, end: int) -> Value:
    """const's columns first:end (a last dim of 1 broadcasts: kept)."""
    if const.shape[-1] == 1:
        return const
    data = const.data[..., first:end].copy()
    return Value(data.shape, const.dtype, f"{const.name}[{first}:{end}]" if const.name else "", data=data)


def split_sliced_matmuls(graph: Graph) -> Graph:
    """Rewrite each matmul that only feeds column slices as one matmul per slice (in place); returns graph."""
    users, outputs = graph.users(), {v.id for v in graph.outputs}
    replaced: dict[int, list[Node]] = {}  # id of the matmul -> its new nodes
    dropped: set[int] = set()
    for node in graph.nodes:
        found = _split(node, users, outputs) if node.op == "matmul" else None
        if found is None:
            continue
        steps, slices = found
        a, w = node.inputs
        new: list[Node] = []
        for piece in slices:
            first, end = _columns(piece, piece.inputs[0])
            value = a
            chain = [("matmul", None), *((step[0], step) for step in steps)]
            for number, (kind, step) in enumerate(chain):
                last = number == len(chain) - 1
                if kind == "matmul":
                    inputs, attrs, loc, shape = [a, _columns_of(w, first, end)], {}, node.loc, node.outputs[0].shape
                elif kind == "bias":
                    _, add, bias = step
                    part = _columns_of(bias, first, end)
                    inputs = [value, part] if add.inputs[0] is not bias else [part, value]
                    attrs, loc, shape = {}, add.loc, add.outputs[0].shape
                else:
                    _, reshape = step
                    shape = reshape.outputs[0].shape
                    attrs, loc = {"shape": (*shape[:-1], end - first)}, reshape.loc
                    inputs = [value]
                made = Node(kind if kind != "bias" else "add", inputs, [], attrs, loc)
                out = piece.outputs[0] if last else Value((*shape[:-1], end - first), node.outputs[0].dtype)
                out.producer = made
                made.outputs.append(out)
                new.append(made)
                value = out
        replaced[id(node)] = new
        dropped.update(id(n) for n in (*(step[1] for step in steps), *slices))
    if replaced:
        graph.nodes = [m for n in graph.nodes if id(n) not in dropped for m in replaced.get(id(n), [n])]
    return graph
