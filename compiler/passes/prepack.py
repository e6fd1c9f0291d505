"""Weight pre-packing: a constant matmul `b` is stored in the order the register tile reads it.

The matmul tile (codegen/matmul.py) walks b's rows k for one block of columns j0 : j0+width
(width = NV*W lanes, or the shorter tail block). Row-major, consecutive rows are N elements
apart, so one tile's reads are short strided pieces; packed, element (k, j0 + c) sits at
j0*K + k*width + c and the tile reads one contiguous stream (the prefetcher's best case,
and every cache line fully used). The packed constant keeps b's logical shape (K, N);
attrs["packed_b"] records the column block the layout was made for, which the emitter checks.
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.codegen.matmul import lanes, micro_tile
from cerebro.compiler.ir import Graph, Value


def pack_columns(b: np.ndarray, block: int) -> np.ndarray:
    """b[K, N] reordered into column blocks of `block` (the last one shorter), each block row-major."""
    depth, columns = b.shape
    pieces = [np.ascontiguousarray(b[:, j0:j0 + block]).reshape(-1) for j0 in range(0, columns, block)]
    return np.concatenate(pieces).reshape(depth, columns) if pieces else b.copy()


def prepack_weights(graph: Graph, target: object) -> Graph:
    """Replace each constant 2-D matmul `b` by its packed copy for target's tile, in place; returns graph."""
    packed: dict[tuple[int, int], Value] = {}
    for node in graph.nodes:
        if node.op != "matmul" or "packed_b" in node.attrs:
            continue
        b = node.inputs[1]
        if not b.is_const or b.rank != 2 or b.size == 0:
            continue
        _, vectors = micro_tile(target)
        if lanes(target, b.dtype) == 1:
            continue  # scalar tiles: nothing to gain
        block = lanes(target, b.dtype) * vectors
        key = (b.id, block)
        if key not in packed:
            data = pack_columns(b.data, block)
            packed[key] = Value(b.shape, b.dtype, f"{b.name}.packed" if b.name else "", data=data)
        node.inputs[1] = packed[key]
        node.attrs["packed_b"] = block
    return graph
