"""Transposes around matmuls: compose them, cancel them, and let the matmul read/write through strides.

simplify_transposes (before fusion):
  transpose(transpose(x, p0), p)  -> transpose(x, p0[p])  (dropped when that is the identity)
  transpose(matmul(a, b), p)      -> transpose(matmul(b^T, a^T), s[p])   (s swaps the last two dims)
  the second only when it leaves fewer transposes (attention's P^T and the final transpose cancel:
  out^T = V^T @ P^T becomes out = P @ V).

absorb_transposes (after epilogue fusion): a transpose feeding a matmul operand, or reading a
matmul's result, becomes strides of that matmul (attrs["view"], a MatmulView) when the micro-kernel
can walk them: any strides for a (one scalar per row and k), unit column stride for b and c (vector
loads and stores along N). The matmul then reads/writes the untransposed buffers and the transpose
node disappears. A matmul with an epilogue keeps a contiguous c (the epilogue addresses rows of it).
"""

from __future__ import annotations

from cerebro.compiler.ir import Graph, Node, Value, make_node
from cerebro.compiler.ir.matmul_view import MatmulView, matmul_view
from cerebro.compiler.ir.strides import contiguous_strides
from cerebro.compiler.passes.dce import eliminate_dead_nodes


def _swap_last(rank: int) -> tuple[int, ...]:
    return tuple(range(rank - 2)) + (rank - 1, rank - 2)


def _is_identity(perm: tuple[int, ...]) -> bool:
    return perm == tuple(range(len(perm)))


class _Rewriter:
    """Producer/reader bookkeeping for one walk over the graph."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.producer: dict[int, Node] = {v.id: n for n in graph.nodes for v in n.outputs}
        self.readers = graph.reader_counts()
        self.outputs = {v.id for v in graph.outputs}
        self.reader: dict[int, Node] = {v.id: n for n in graph.nodes for v in n.inputs}  # the last one

    def transpose_of(self, value: Value) -> Node | None:
        node = self.producer.get(value.id)
        return node if node is not None and node.op == "transpose" else None

    def private(self, value: Value) -> bool:
        """value has one reader and is no graph output: its producer may be folded into that reader."""
        return self.readers.get(value.id) == 1 and value.id not in self.outputs

    def source(self, value: Value, perm: tuple[int, ...]) -> tuple[Value, tuple[int, ...]]:
        """(x, q) with transpose(value, perm) == transpose(x, q), looking through a transpose producer."""
        inner = self.transpose_of(value)
        if inner is None:
            return value, perm
        first = tuple(inner.attrs["perm"])
        return inner.inputs[0], tuple(first[p] for p in perm)


def _transpose_node(x: Value, perm: tuple[int, ...], loc: str) -> tuple[Node | None, Value]:
    """A transpose node making transpose(x, perm), or (None, x) for the identity."""
    if _is_identity(perm):
        return None, x
    node = make_node("transpose", [x], loc, perm=perm)
    return node, node.outputs[0]


def _swap_matmul(rw: _Rewriter, node: Node) -> list[Node] | None:
    """transpose(matmul(a, b), p) as [a', b', matmul(a', b'), transpose] when that has fewer transposes."""
    mm = rw.producer.get(node.inputs[0].id)
    if mm is None or mm.op != "matmul" or "view" in mm.attrs or not rw.private(node.inputs[0]):
        return None
    a, b = mm.inputs
    swap = _swap_last(a.rank)
    perm = tuple(swap[p] for p in node.attrs["perm"])
    new_a, na = _transpose_node(*rw.source(b, swap), mm.loc)
    new_b, nb = _transpose_node(*rw.source(a, swap), mm.loc)
    dying = {v.id for v in (a, b) if rw.transpose_of(v) is not None and rw.private(v)}
    if sum(n is not None for n in (new_a, new_b)) + (not _is_identity(perm)) >= 1 + len(dying):
        return None
    out = node.outputs[0]
    if _is_identity(perm):
        product = make_node("matmul", [na, nb], mm.loc, out)
        return [n for n in (new_a, new_b) if n is not None] + [product]
    product = make_node("matmul", [na, nb], mm.loc)
    last = make_node("transpose", [product.outputs[0]], node.loc, out, perm=perm)
    return [n for n in (new_a, new_b) if n is not None] + [product, last]


def _compose(graph: Graph) -> Graph:
    """transpose of transpose -> one transpose; identity transposes dropped (not graph outputs)."""
    rw = _Rewriter(graph)
    replaced: dict[int, Value] = {}
    for node in graph.nodes:
        node.inputs = [replaced.get(v.id, v) for v in node.inputs]
        if node.op != "transpose":
            continue
        x, perm = rw.source(node.inputs[0], tuple(node.attrs["perm"]))
        if _is_identity(perm) and node.outputs[0].id not in rw.outputs:
            replaced[node.outputs[0].id] = x
        node.inputs = [x]
        node.attrs = dict(node.attrs, perm=perm)
    return eliminate_dead_nodes(graph)


def _swap_one(graph: Graph) -> bool:
    """Apply the first profitable transpose(matmul) rewrite, in place; False when there is none."""
    rw = _Rewriter(graph)
    for at, node in enumerate(graph.nodes):
        rewritten = _swap_matmul(rw, node) if node.op == "transpose" else None
        if rewritten is not None:
            graph.nodes[at:at + 1] = rewritten
            return True
    return False


def simplify_transposes(graph: Graph) -> Graph:
    """Compose and cancel transposes, in place; returns graph."""
    graph = _compose(graph)
    while _swap_one(graph):
        graph = _compose(eliminate_dead_nodes(graph))
    return graph


def _strides_through(transpose: Node) -> tuple[int, ...]:
    """Strides, in the transpose's input buffer, of each dim of its output."""
    x_strides = contiguous_strides(transpose.inputs[0].shape)
    return tuple(x_strides[p] for p in transpose.attrs["perm"])


def _strides_into(transpose: Node) -> tuple[int, ...]:
    """Strides, in the transpose's output buffer, of each dim of its input."""
    perm = transpose.attrs["perm"]
    out_strides = contiguous_strides(transpose.outputs[0].shape)
    return tuple(out_strides[perm.index(axis)] for axis in range(len(perm)))


def _unit_columns(strides: tuple[int, ...], columns: int) -> bool:
    return strides[-1] == 1 or columns == 1


def _absorb(rw: _Rewriter, node: Node, done: set[int]) -> set[int]:
    """Fold the transposes around matmul `node` into its view; ids of the transpose nodes folded
    (done: those folded into earlier matmuls, which no longer exist)."""
    view = matmul_view(node)
    if any(d == 0 for d in (*view.batch, view.rows, view.depth, view.columns)):
        return set()
    folded: set[int] = set()
    a_t, b_t = (rw.transpose_of(v) for v in node.inputs[:2])
    a_t, b_t = (t if t is not None and id(t) not in done else None for t in (a_t, b_t))
    if a_t is not None and rw.private(node.inputs[0]) and node.inputs[0].id != node.inputs[1].id:
        view = _replace(view, a=_strides_through(a_t))
        node.inputs[0] = a_t.inputs[0]
        folded.add(id(a_t))
    if (b_t is not None and rw.private(node.inputs[1]) and "packed_b" not in node.attrs
            and _unit_columns(_strides_through(b_t), view.columns) and node.inputs[1].id != node.inputs[0].id):
        view = _replace(view, b=_strides_through(b_t))
        node.inputs[1] = b_t.inputs[0]
        folded.add(id(b_t))
    out = node.outputs[0]
    reader = rw.reader.get(out.id)
    if (reader is not None and reader.op == "transpose" and rw.private(out) and "epilogue" not in node.attrs
            and _unit_columns(_strides_into(reader), view.columns)):
        view = _replace(view, c=_strides_into(reader))
        node.outputs = [reader.outputs[0]]
        reader.outputs[0].producer = node
        folded.add(id(reader))
    if folded:
        node.attrs = dict(node.attrs, view=view)
    return folded


def _replace(view: MatmulView, **changes: tuple[int, ...]) -> MatmulView:
    return MatmulView(**{**view.__dict__, **changes})


def absorb_transposes(graph: Graph) -> Graph:
    """Matmuls read and write through the transposes next to them, in place; returns graph."""
    rw = _Rewriter(graph)
    folded: set[int] = set()
    for node in graph.nodes:
        if node.op == "matmul":
            folded |= _absorb(rw, node, folded)
    graph.nodes = [node for node in graph.nodes if id(node) not in folded]
    return graph
