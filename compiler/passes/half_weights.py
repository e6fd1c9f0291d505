"""16-bit weights stay 16-bit where a layer streams them: a packed constant matmul b (passes/prepack.py)
whose every f32 value is a bfloat16 (low 16 bits zero), or else a float16, as a bf16 or f16 model's
weights are once the frontends widen them, is stored in that type, so the layer reads half the bytes;
codegen/matmul.py widens each loaded vector exactly (bf16: a 16-bit shift; f16: the hardware's
conversion, so only on targets that have one, targets.widens_f16: in integer ops it costs more than
the bytes save), so every product and sum is the f32 layer's, bit for bit (a NaN's payload aside).

Only where one row block of the tile reads b (rows <= the micro tile's): each weight is then loaded once
per call and the layer is a stream of b, bound by memory (a batch-1 dense layer). With more rows the
tile reuses each loaded b vector across rows and the widening would cost more than the bytes save.
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import DType, Graph, Value
from cerebro.compiler.ir.matmul_view import matmul_view
from cerebro.compiler.targets import matmul_tile, widens_f16


def _bf16_bits(data: np.ndarray) -> np.ndarray | None:
    """data's bf16 bits when every f32 value is a bfloat16 (its low 16 bits are zero)."""
    bits = np.ascontiguousarray(data).view(np.uint32)
    return None if np.any(bits & 0xFFFF) else (bits >> 16).astype(np.uint16)


def _f16_bits(data: np.ndarray) -> np.ndarray | None:
    """data's f16 bits when every f32 value is a float16 (it round-trips bit for bit)."""
    with np.errstate(over="ignore", invalid="ignore"):
        half = np.ascontiguousarray(data).astype(np.float16)
    same = half.astype(np.float32).view(np.uint32) == np.ascontiguousarray(data).view(np.uint32)
    return half.view(np.uint16) if same.all() else None


NARROWER = ((DType.bf16, _bf16_bits), (DType.f16, _f16_bits))  # tried in order: bf16 widens cheapest


def narrowed(value: Value, target: object) -> Value:
    """An f32 constant as the first 16-bit type holding all its values that target widens cheaply, or itself."""
    for dtype, bits_of in NARROWER:
        if dtype is DType.f16 and not widens_f16(target):
            continue
        bits = bits_of(value.data)
        if bits is not None:
            name = f"{value.name}.{dtype.name}" if value.name else ""
            return Value(value.shape, dtype, name, data=bits.view(dtype.numpy))
    return value


def narrow_half_weights(graph: Graph, target: object) -> Graph:
    """Store each packed f32 weight of a one-row-block matmul in a 16-bit type that holds it, in place;
    returns graph."""
    done: dict[int, Value] = {}
    for node in graph.nodes:
        if node.op != "matmul" or "packed_b" not in node.attrs:
            continue
        a, b = node.inputs[:2]
        view = matmul_view(node)
        tile_rows, _ = matmul_tile(target, view.all_rows)
        if a.dtype is not DType.f32 or b.dtype is not DType.f32 or view.all_rows > tile_rows:
            continue
        if b.id not in done:
            done[b.id] = narrowed(b, target)
        node.inputs[1] = done[b.id]
    return graph
