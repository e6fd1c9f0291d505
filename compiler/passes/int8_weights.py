"""Dynamic-range int8 weights (build(quantize="int8-weights"), as ONNX Runtime's quantize_dynamic):
each packed constant f32 matmul b (passes/prepack.py) becomes int8 with one f32 scale per output column,
symmetric (scale = max|b[:, n]| / 127, values rounded half to even, zero point 0), so a layer streams a
quarter of the bytes; activations stay f32.

codegen/matmul.py widens each loaded int8 vector to f32 in registers and accumulates a @ q in f32 (at one
row in matmul.K_CHAINS interleaved partial sums); the scale multiplies each output column once, as the first
step of the node's epilogue (a per-column load, passes/epilogue.py's form), after the last K panel and
before any bias or activation.
The result differs from the f32 model only by the weights' rounding: |error| <= sum_k |a_k| * scale_n / 2.
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import DType, Graph, Node, Value
from cerebro.compiler.ir.fused import Epilogue
from cerebro.compiler.passes.prepack import pack_columns
from cerebro.compiler.quantize import check_quantize


def quantize_columns(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 q, f32 scale[N]) with b[:, n] ~ q[:, n] * scale[n]; an all-zero column gets scale 1."""
    peak = np.abs(b).max(axis=0) if b.shape[0] else np.zeros(b.shape[1], np.float32)
    scale = np.where(peak > 0, peak / 127, 1).astype(np.float32)
    q = np.clip(np.rint(b / scale), -127, 127).astype(np.int8)
    return q, scale


def _unpacked(data: np.ndarray, block: int) -> np.ndarray:
    """The row-major b[K, N] that pack_columns(b, block) made data from."""
    depth, columns = data.shape
    where = pack_columns(np.arange(depth * columns).reshape(depth, columns), block)
    out = np.empty(depth * columns, data.dtype)
    out[where.reshape(-1)] = data.reshape(-1)
    return out.reshape(depth, columns)


def _scaled_epilogue(node: Node, scale: Value) -> Epilogue | None:
    """node's epilogue with `product * scale` (per column) first, or None where the epilogue reads the
    product reshaped so that its last dim is not the output column."""
    out, slot = node.outputs[0], len(node.inputs)
    before: Epilogue | None = node.attrs.get("epilogue")
    if before is None:
        raw = Value(out.shape, out.dtype)
        return Epilogue(raw.id, (Node("mul", [raw, _broadcast(scale, out.rank)], [out], {}, node.loc),),
                        ((scale.id, slot, 0, 1),))
    product = next(v for inner in before.nodes for v in inner.inputs if v.id == before.source)
    if product.shape[-1:] != scale.shape:
        return None
    raw = Value(product.shape, product.dtype)
    multiply = Node("mul", [raw, _broadcast(scale, product.rank)], [product], {}, node.loc)
    return Epilogue(raw.id, (multiply, *before.nodes), (*before.loads, (scale.id, slot, 0, 1)))


def _broadcast(scale: Value, rank: int) -> Value:
    """scale as [1, ..., 1, N] (same id and data: the epilogue load reads it per column)."""
    return Value((1,) * (rank - 1) + scale.shape, scale.dtype, scale.name, data=scale.data, id=scale.id)


def quantize_weights(graph: Graph, mode: str | None) -> Graph:
    """With mode "int8-weights": each prepacked f32 matmul weight as int8 plus a per-column scale, in
    place; returns graph."""
    if mode is None:
        return graph
    check_quantize(mode)
    done: dict[int, tuple[Value, Value]] = {}
    for node in graph.nodes:
        if node.op != "matmul" or "packed_b" not in node.attrs:
            continue
        a, b = node.inputs[:2]
        if a.dtype is not DType.f32 or b.dtype is not DType.f32 or b.rank != 2 or b.size == 0:
            continue
        if b.id not in done:
            q, scale = quantize_columns(_unpacked(b.data, node.attrs["packed_b"]))
            stem = b.name or "w"
            done[b.id] = (Value(b.shape, DType.i8, f"{stem}.i8", data=pack_columns(q, node.attrs["packed_b"])),
                          Value(scale.shape, DType.f32, f"{stem}.scale", data=scale))
        weights, scale = done[b.id]
        epilogue = _scaled_epilogue(node, scale)
        if epilogue is None:
            continue
        node.inputs[1] = weights
        node.inputs.append(scale)
        node.attrs["epilogue"] = epilogue
    return graph
