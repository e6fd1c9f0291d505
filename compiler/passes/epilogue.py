"""Epilogue fusion: matmul/conv followed by an elementwise chain (bias, batchnorm, relu, gelu,
residual add) becomes one node, so the chain runs on each tile while it is still in cache
instead of in a second pass over the whole output.

Runs after fuse_elementwise. An elementwise or FUSED node E absorbs the matmul/conv P that
produced one of its inputs V when V has E's shape and dtype, E is V's only reader (and V is no
graph output), and each other value E loads is addressed as row * row_stride + col * col_stride,
where col indexes the trailing dims that make up one row of P's columns (conv: channels; a
reshape matmul -> [.., heads, dim] splits them) and row the leading dims flattened; row_stride
is 0 or the row length (broadcast over rows, or full shape), col_stride 0 or 1. P keeps its op; its inputs grow by
E's other inputs, its output becomes E's and attrs["epilogue"] says how to compute it.

A concatenation hosts one too (ir/hosts.py says which nodes may): its columns are its dims from the axis
on, and each input's rows go through the chain as they are copied (codegen/layout.py).

A matmul_integer with constant weights ([N, K], transpose_b) hosts an epilogue too: quantize="int8"'s
dequantize (i32 -> f32, scale, bias) or fixed-point requantize (i32 -> u8), so the i32 product is never
written out; its kernel runs the chain on each finished band of rows from a scratch row, so E may change
the dtype there (the float hosts run it in place, so it may not).
"""

from __future__ import annotations

import math

from cerebro.compiler.ir import Graph, Node, Value
from cerebro.compiler.ir.fused import FUSED, Epilogue
from cerebro.compiler.ir.hosts import epilogue_columns, hosts_epilogue, integer_host
from cerebro.compiler.ir.ops import ELEMENTWISE
from cerebro.compiler.ir.strides import broadcast_strides, contiguous_strides


def _loads(node: Node) -> list[tuple[int, Value, tuple[int, ...]]]:
    """(value id, storage, strides over node's output) for each value node reads from memory."""
    if node.op == FUSED:
        return [(vid, node.inputs[slot], tuple(strides)) for vid, slot, strides in node.attrs["loads"]]
    out = node.outputs[0].shape
    return [(v.id, v, tuple(broadcast_strides(v.shape, out))) for v in node.inputs]


def _column_split(shape: tuple[int, ...], columns: int) -> int | None:
    """The first of the trailing dims that make up one row of `columns` elements (None if none do)."""
    for split in range(len(shape) - 1, -1, -1):
        if math.prod(shape[split:]) == columns:
            return split
        if math.prod(shape[split:]) > columns:
            return None
    return None


def _scaled(strides: tuple[int, ...], shape: tuple[int, ...]) -> int | None:
    """s when strides are s * (row-major strides of shape), for s in (0, 1); dims of size 1 do not count."""
    pairs = [(st, c) for st, c, d in zip(strides, contiguous_strides(shape), shape) if d > 1]
    for scale in (0, 1):
        if all(st == scale * c for st, c in pairs):
            return scale
    return None


def _row_col(strides: tuple[int, ...], shape: tuple[int, ...], split: int) -> tuple[int, int] | None:
    """(row_stride, col_stride) when strides read as row * row_stride + col * col_stride, where
    row indexes shape[:split] and col shape[split:] (each flattened), else None."""
    col = _scaled(strides[split:], shape[split:])
    lead = [(st, c) for st, c, d in zip(strides[:split], contiguous_strides(shape)[:split], shape[:split]) if d > 1]
    if col is None:
        return None
    if all(st == 0 for st, _ in lead):
        return 0, col
    if all(st == c for st, c in lead):
        return math.prod(shape[split:]), col
    return None


def _fold(producer: Node, elementwise: Node, source: Value) -> Node | None:
    """producer with elementwise as its epilogue, or None when the pair does not qualify. source is
    producer's output, or a reshape of it whose trailing dims still make up one row of columns."""
    out = elementwise.outputs[0]
    split = _column_split(out.shape, epilogue_columns(producer))
    if split is None or source.shape != out.shape or (source.dtype != out.dtype and not integer_host(producer)):
        return None
    extra: list[Value] = []
    loads = []
    for vid, storage, strides in _loads(elementwise):
        if storage.id == source.id:
            if vid != source.id or _scaled(strides, out.shape) != 1:
                return None
            continue
        walk = _row_col(strides, out.shape, split)
        if walk is None:
            return None
        if storage.id not in [v.id for v in extra]:
            extra.append(storage)
        slot = len(producer.inputs) + [v.id for v in extra].index(storage.id)
        loads.append((vid, slot, *walk))
    body = tuple(elementwise.attrs["nodes"]) if elementwise.op == FUSED else (elementwise,)
    before = producer.attrs.get("epilogue")
    # a chain fuse_elementwise left in two nodes (a value read twice, as gelu does) continues the first
    if before is not None and source.id == producer.outputs[0].id:
        epilogue = Epilogue(before.source, before.nodes + body, before.loads + tuple(loads))
    elif before is not None:
        return None
    else:
        epilogue = Epilogue(source.id, body, tuple(loads))
    attrs = dict(producer.attrs, epilogue=epilogue)
    fused = Node(producer.op, list(producer.inputs) + extra, [out], attrs, producer.loc)
    out.producer = fused
    return fused


def fuse_epilogues(graph: Graph) -> Graph:
    """Give matmul/conv nodes the elementwise chain that is their only reader, in place; returns graph."""
    readers = graph.reader_counts()
    outputs = {v.id for v in graph.outputs}
    producers = {node.outputs[0].id: node for node in graph.nodes if hosts_epilogue(node)}
    reshapes = {node.outputs[0].id: node for node in graph.nodes if node.op == "reshape"}
    absorbed: set[int] = set()
    nodes = []
    for node in graph.nodes:
        if node.op in ELEMENTWISE or node.op == FUSED:
            for value in node.inputs:
                if readers.get(value.id) != 1 or value.id in outputs or math.prod(value.shape) == 0:
                    continue
                producer, skipped = producers.get(value.id), None
                if producer is None and value.id in reshapes:  # matmul -> reshape (leading dims) -> chain
                    skipped = reshapes[value.id]
                    inner = skipped.inputs[0]
                    producer = producers.get(inner.id)
                    if (producer is None or producer.op not in ("matmul", "matmul_integer")
                            or readers.get(inner.id) != 1
                            or inner.id in outputs or _column_split(value.shape, inner.shape[-1]) is None):
                        continue
                if producer is None:
                    continue
                fused = _fold(producer, node, value)
                if fused is not None:
                    absorbed.update(id(n) for n in (producer, skipped) if n is not None)
                    producers[fused.outputs[0].id] = node = fused
                    break
        nodes.append(node)
    graph.nodes = [node for node in nodes if id(node) not in absorbed]
    return graph
