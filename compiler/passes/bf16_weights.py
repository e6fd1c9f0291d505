"""bf16 weights stay bf16 where a layer streams them: a packed constant matmul b (passes/prepack.py) whose
every f32 value is a bfloat16 (low 16 bits zero, as a bf16 model's weights are once the frontends widen
them) is stored as bf16, so the layer reads half the bytes; codegen/matmul.py widens each loaded vector
(a 16-bit shift: exact), so every product and sum is the f32 layer's, bit for bit.

Only where one row block of the tile reads b (rows <= the micro tile's): each weight is then loaded once
per call and the layer is a stream of b, bound by memory (a batch-1 dense layer). With more rows the
tile reuses each loaded b vector across rows and the widening would cost more than the bytes save.
"""

from __future__ import annotations

import math

import numpy as np

from cerebro.compiler.ir import DType, Graph, Value
from cerebro.compiler.ir.matmul_view import matmul_view
from cerebro.compiler.targets import micro_tile


def is_bf16_exact(data: np.ndarray) -> bool:
    """Whether every f32 value of data is a bfloat16 (its low 16 bits are zero)."""
    return not np.any(np.ascontiguousarray(data).view(np.uint32) & 0xFFFF)


def as_bf16(value: Value) -> Value:
    """A bf16-exact f32 constant as the bf16 constant of the same values (the high halves of its bits)."""
    bits = (np.ascontiguousarray(value.data).view(np.uint32) >> 16).astype(np.uint16)
    return Value(value.shape, DType.bf16, f"{value.name}.bf16" if value.name else "", data=bits.view(DType.bf16.numpy))


def narrow_bf16_weights(graph: Graph, target: object) -> Graph:
    """Store each bf16-exact packed f32 weight of a one-row-block matmul as bf16, in place; returns graph."""
    tile_rows, _ = micro_tile(target)
    narrowed: dict[int, Value] = {}
    for node in graph.nodes:
        if node.op != "matmul" or "packed_b" not in node.attrs:
            continue
        a, b = node.inputs[:2]
        view = matmul_view(node)
        if a.dtype is not DType.f32 or b.dtype is not DType.f32 or math.prod(view.batch) * view.rows > tile_rows:
            continue
        if b.id not in narrowed:
            narrowed[b.id] = as_bf16(b) if is_bf16_exact(b.data) else b
        node.inputs[1] = narrowed[b.id]
    return graph
