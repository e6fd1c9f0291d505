"""Row-kernel fusion: softmax, log_softmax, layernorm, rmsnorm (any per-row computation over the
last axis) become one node that makes a few sweeps over each row while it sits in L1.

A region is built around reductions over the trailing axis of an input shaped R + (n,). Every
value in it has one of three frames: R + (n,) (a row of n elements), R + (1,) or R (one scalar
per row). Its nodes are those reductions (sum/max/min), elementwise nodes, and broadcast_in_dim /
reshape nodes that map a frame onto a frame without moving data between rows. The region grows
backwards from its last node (the sink, whose value is its one output): a producer joins when it
qualifies and every reader of its value is already inside, so intermediates are never read
elsewhere. Values from outside are loaded per row: element (row, col) of input `slot` lives at
sum(row_index * row_strides) + col * col_stride (col_stride 0: one scalar per row). A
broadcast_in_dim or reshape of an outside value is such a view, not a copy. Elementwise nodes
reading a matmul/conv result stay outside, for passes/epilogue.py. Regions without a reduction
or without an elementwise node, rows longer than MAX_ROW or of length 1 are left alone.

The node: op ROW_KERNEL, inputs the outside values' storage, outputs [the sink's value],
attrs rows (R), n, nodes (the inner nodes in order) and loads ((value id, input slot,
row_strides, col_stride), ...). codegen/rows.py emits it.
"""

from __future__ import annotations

import math

from cerebro.compiler.ir import Graph, Node, Value
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.fused import ROW_KERNEL
from cerebro.compiler.ir.ops import ELEMENTWISE, EPILOGUE_HOSTS, Role, role_of
from cerebro.compiler.ir.strides import broadcast_strides, contiguous_strides
from cerebro.compiler.passes.dce import eliminate_dead_nodes
from cerebro.compiler.passes.fuse import broadcast_view

MAX_ROW = 16384  # longer rows do not fit L1: the separate reduce/elementwise kernels are as good
_FLOATS = (DType.f32, DType.f64)
_VIEWS = (Role.VIEW, Role.BROADCAST)  # read through strides, as a view of their input


class _Frame:
    """One (R, n) row space: which shapes are frames and which of them hold one scalar per row."""

    def __init__(self, rows: tuple[int, ...], n: int, dtype: DType) -> None:
        self.rows, self.n, self.dtype = rows, n, dtype
        self.full, self.column = rows + (n,), rows + (1,)

    def holds(self, shape: tuple[int, ...]) -> bool:
        return shape in (self.full, self.column, self.rows)

    def per_row(self, shape: tuple[int, ...]) -> bool:
        return shape in (self.column, self.rows)

    def address(self, strides: list[int], shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
        """(row strides, column stride) of strides given over frame shape `shape`."""
        if shape == self.rows:
            return tuple(strides), 0
        return tuple(strides[:-1]), strides[-1] if shape == self.full else 0


def _row_reduction(node: Node) -> bool:
    if role_of(node.op) is not Role.ROW_REDUCTION or node.inputs[0].dtype not in _FLOATS:
        return False
    x = node.inputs[0]
    return tuple(node.attrs["axes"]) == (x.rank - 1,) and 1 < x.shape[-1] <= MAX_ROW


def _frames(graph: Graph) -> list[_Frame]:
    seen: dict[tuple, _Frame] = {}
    for node in graph.nodes:
        if _row_reduction(node):
            x = node.inputs[0]
            if math.prod(x.shape) > 0:
                seen.setdefault((x.shape, x.dtype), _Frame(x.shape[:-1], x.shape[-1], x.dtype))
    return list(seen.values())


def _keeps_rows(node: Node, frame: _Frame) -> bool:
    """A view node whose input, when computed inside, maps onto the output without crossing rows."""
    (x,) = node.inputs
    out = node.outputs[0].shape
    if not frame.holds(x.shape):
        return False
    if node.op == "reshape":
        return x.shape == out or (frame.per_row(x.shape) and frame.per_row(out))
    return tuple(node.attrs["broadcast_dimensions"]) == tuple(range(x.rank)) and (
        x.shape == out or frame.per_row(x.shape))


def _qualifies(node: Node, frame: _Frame, producer: dict[int, Node], readers: dict[int, list[Node]]) -> bool:
    if role_of(node.op) is Role.ROW_REDUCTION:
        return _row_reduction(node) and node.inputs[0].shape == frame.full and node.inputs[0].dtype == frame.dtype
    out = node.outputs[0]
    if len(node.outputs) != 1 or not frame.holds(out.shape) or out.dtype != frame.dtype:
        return False
    if role_of(node.op) in _VIEWS:
        return node.inputs[0].dtype == frame.dtype
    if node.op not in ELEMENTWISE or any(v.dtype != frame.dtype for v in node.inputs):
        return False
    return not any(_epilogue_candidate(v, producer, readers) for v in node.inputs)


def _epilogue_candidate(value: Value, producer: dict[int, Node], readers: dict[int, list[Node]]) -> bool:
    """A matmul/conv result (maybe reshaped), or an elementwise chain on one, each with one reader:
    passes/epilogue.py fuses that reader into it. Through the chain: a post-norm transformer's last
    residual add (matmul, bias add, residual add, layernorm) then joins the matmul's epilogue as every
    other layer's does, whose sum is read twice, so both layers' matmuls and layernorms are one kernel each."""
    while len(readers.get(value.id, [])) == 1:
        source = producer.get(value.id)
        if source is None:
            return False
        if role_of(source.op) in EPILOGUE_HOSTS:
            return True
        if source.op == "reshape":
            value = source.inputs[0]
            continue
        chained = [v for v in source.inputs if v.shape == value.shape and v.id in producer]
        if source.op not in ELEMENTWISE or not chained:
            return False
        return any(_epilogue_candidate(v, producer, readers) for v in chained)
    return False


def _grow(graph: Graph, sink_at: int, frame: _Frame, readers: dict[int, list[Node]], outputs: set[int],
          producer: dict[int, Node], claimed: set[int]) -> list[Node]:
    """The region ending at graph.nodes[sink_at], scanned backwards (readers come after producers)."""
    inside = {id(graph.nodes[sink_at])}
    region = [graph.nodes[sink_at]]
    wanted = {v.id for v in region[0].inputs if v.id in producer}  # values whose producers may still join
    for node in reversed(graph.nodes[:sink_at]):
        if not wanted:
            break
        if len(node.outputs) != 1 or node.outputs[0].id not in wanted:
            continue
        value = node.outputs[0]
        wanted.discard(value.id)
        if id(node) in claimed:
            continue
        users = readers.get(value.id, [])
        if not users or value.id in outputs or any(id(user) not in inside for user in users):
            continue
        if not _qualifies(node, frame, producer, readers):
            continue
        if any(role_of(user.op) in _VIEWS and not _keeps_rows(user, frame) for user in users):
            continue
        inside.add(id(node))
        region.append(node)
        wanted.update(v.id for v in node.inputs if v.id in producer)
    region.reverse()
    return region


def _address(node: Node, value: Value, frame: _Frame, inner: set[int]) -> tuple[Value, tuple[int, ...], int]:
    """Storage and (row strides, column stride) of an outside value as node's input, or of a view node."""
    out = node.outputs[0].shape
    if node.op == "broadcast_in_dim" and value.id not in inner:
        source, strides = broadcast_view(node)
        strides = [0 if o == 1 else s for o, s in zip(out, strides)]
        return (source, *frame.address(strides, out))
    if node.op == "reshape" and value.id not in inner:
        strides = [0 if o == 1 else s for o, s in zip(out, contiguous_strides(out))]
        return (value, *frame.address(strides, out))
    if role_of(node.op) is Role.ROW_REDUCTION:
        return (value, *frame.address(contiguous_strides(frame.full), frame.full))
    return (value, *frame.address(broadcast_strides(value.shape, out), out))


def _row_node(region: list[Node], frame: _Frame) -> Node:
    inner = {node.outputs[0].id for node in region}
    storage: dict[int, Value] = {}
    loads: dict[int, tuple[int, tuple[int, ...], int]] = {}
    for node in region:
        for value in node.inputs:
            if value.id in inner:
                continue
            source, row_strides, col_stride = _address(node, value, frame, inner)
            slot = list(storage).index(source.id) if source.id in storage else len(storage)
            storage.setdefault(source.id, source)
            key = node.outputs[0].id if role_of(node.op) in _VIEWS else value.id
            loads[key] = (slot, row_strides, col_stride)
    out = region[-1].outputs[0]
    body = tuple(node for node in region if not (role_of(node.op) in _VIEWS and node.outputs[0].id in loads))
    attrs = {"rows": frame.rows, "n": frame.n, "nodes": body,
             "loads": tuple((vid, slot, rs, cs) for vid, (slot, rs, cs) in loads.items())}
    fused = Node(ROW_KERNEL, list(storage.values()), [out], attrs, region[-1].loc)
    out.producer = fused
    return fused


def _worth_it(region: list[Node]) -> bool:
    roles = [role_of(node.op) for node in region]
    return Role.ROW_REDUCTION in roles and Role.ELEMENTWISE in roles


def fuse_rows(graph: Graph) -> Graph:
    """Replace each per-row region (see the module docstring) by one ROW_KERNEL node; returns graph."""
    frames = _frames(graph)
    if not frames:
        return graph
    readers = graph.users()
    producer = {v.id: node for node in graph.nodes for v in node.outputs}
    outputs = {v.id for v in graph.outputs}
    claimed: set[int] = set()
    sinks: dict[int, Node] = {}  # id(sink) -> its row node
    for at in range(len(graph.nodes) - 1, -1, -1):
        sink = graph.nodes[at]
        if id(sink) in claimed or len(sink.outputs) != 1:
            continue
        for frame in frames:
            if role_of(sink.op) in _VIEWS or not _qualifies(sink, frame, producer, readers):
                continue
            region = _grow(graph, at, frame, readers, outputs, producer, claimed)
            if _worth_it(region):
                claimed.update(id(node) for node in region)
                sinks[id(sink)] = _row_node(region, frame)
                break
    if not sinks:
        return graph
    graph.nodes = [sinks.get(id(node), node) for node in graph.nodes if id(node) not in claimed or id(node) in sinks]
    return eliminate_dead_nodes(graph)
