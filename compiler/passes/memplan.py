"""The static memory plan: where every tensor lives during a call.

Graph inputs and outputs stay in the caller's buffers (a node producing an
output writes straight into it), constants live in the weights blob, reshape
is a view of its input's storage, and every other tensor gets an offset in one
arena. Offsets come from liveness: tensors whose lifetimes do not overlap share
bytes (greedy by size, best-fitting gap, as TFLite's planner does). The first
RESERVED bytes of the arena hold nothing: a call split into parts keeps its
barrier counter there (codegen/module.py).
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import Graph, Value
from cerebro.compiler.ir.plan import VIEW_OPS, MemoryPlan, Place, Weights

ALIGN = 64
RESERVED = 64  # arena bytes 0..63: the barrier counter of a multi-threaded call (abi.h)


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _lay_out_weights(graph: Graph, places: dict[int, Place]) -> Weights:
    """The weights blob: every constant, little-endian, at an ALIGN-aligned offset (at least ALIGN bytes),
    as the arrays' own buffers and the padding between them (no copy of hundreds of MB here)."""
    pieces: list[memoryview] = []
    size = 0
    for const in graph.constants():
        places[const.id] = Place("weights", size)
        data = np.ascontiguousarray(const.data.astype(const.dtype.numpy.newbyteorder("<"), copy=False))
        padding = bytes(align(size + data.nbytes) - size - data.nbytes)
        pieces += (memoryview(data.reshape(-1).view(np.uint8)), memoryview(padding))
        size = align(size + data.nbytes)
    pieces.append(memoryview(bytes(max(0, ALIGN - size))))
    return Weights(tuple(piece for piece in pieces if piece.nbytes))


def _best_fit(size: int, busy: list[tuple[int, int]]) -> int:
    """The start of the smallest gap that holds size bytes between busy (offset, size) ranges."""
    best, best_gap, cursor = None, None, 0
    for offset, length in sorted(busy):
        gap = offset - cursor
        if gap >= size and (best_gap is None or gap < best_gap):
            best, best_gap = cursor, gap
        cursor = max(cursor, offset + length)
    return cursor if best is None else best


def plan_memory(graph: Graph) -> MemoryPlan:
    """Places for every value of graph (nodes in execution order)."""
    places: dict[int, Place] = {}
    weights = _lay_out_weights(graph, places)
    for index, value in enumerate(graph.inputs):
        places[value.id] = Place("input", index)

    root: dict[int, Value] = {}  # value id -> the value that owns its storage

    def owner(value: Value) -> Value:
        return root.get(value.id, value)

    for node in graph.nodes:
        if node.op in VIEW_OPS:
            root[node.outputs[0].id] = owner(node.inputs[0])

    end = len(graph.nodes)
    claimed: dict[int, int] = {}  # owner id -> output index
    copies: list[tuple[Value, int]] = []
    for index, value in enumerate(graph.outputs):
        base = owner(value)
        if base.producer is not None and base.id not in claimed:
            claimed[base.id] = index
        else:
            copies.append((base, index))

    # Liveness of arena tensors: [defining node, last reading node]; final copies read at `end`.
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    sizes: dict[int, int] = {}
    for step, node in enumerate(graph.nodes):
        for value in node.inputs:
            base = owner(value)
            if base.id in first:
                last[base.id] = step
        if node.op in VIEW_OPS:
            continue
        for value in node.outputs:
            if value.id not in claimed:
                first[value.id] = last[value.id] = step
                sizes[value.id] = align(value.nbytes)
    for base, _ in copies:
        if base.id in first:
            last[base.id] = end

    placed: list[tuple[int, int, int, int]] = [(0, RESERVED, -1, end + 1)]  # offset, size, first, last
    for vid in sorted(sizes, key=lambda v: (-sizes[v], first[v])):
        busy = [(off, size) for off, size, lo, hi in placed if not (hi < first[vid] or last[vid] < lo)]
        offset = _best_fit(sizes[vid], busy)
        placed.append((offset, sizes[vid], first[vid], last[vid]))
        places[vid] = Place("arena", offset)
    for vid, index in claimed.items():
        places[vid] = Place("output", index)
    for node in graph.nodes:
        if node.op in VIEW_OPS:
            places[node.outputs[0].id] = places[owner(node.inputs[0]).id]
    arena_size = max(off + size for off, size, _, _ in placed)
    plan_copies = [(places[base.id], index, graph.outputs[index].nbytes) for base, index in copies]
    return MemoryPlan(places, arena_size, weights, plan_copies)
