"""Reference implementations of what the passes make: the fused ops, and a matmul/conv with lowered
attributes (an epilogue, packed weights, a strided view). With them the interpreter runs a lowered
graph, so the passes can be checked to keep a graph's meaning. Every body node runs its own op's
reference, so a fused op means exactly what its parts mean.
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir.graph import Node, Value
from cerebro.compiler.ir.hosts import epilogue_columns, operand_count
from cerebro.compiler.ir.matmul_view import matmul_view
from cerebro.compiler.ir.ops import OPS


def _exact(value: Value, result: np.ndarray) -> np.ndarray:
    return np.array(result, dtype=value.dtype.numpy).reshape(value.shape)


def _walk(storage: np.ndarray, shape: tuple[int, ...], strides: tuple[int, ...]) -> np.ndarray:
    """The elements at offset sum(index * stride) of storage (flattened), as an array of shape."""
    flat = np.ascontiguousarray(storage).reshape(-1)
    return np.lib.stride_tricks.as_strided(flat, shape, [s * flat.itemsize for s in strides], writeable=False)


def _run_body(body: tuple[Node, ...], env: dict[int, np.ndarray]) -> None:
    for inner in body:
        (value,) = inner.outputs
        env[value.id] = _exact(value, OPS[inner.op].reference(inner, *(env[v.id] for v in inner.inputs)))


def fused_elementwise(node: Node, *inputs: np.ndarray) -> np.ndarray:
    out = node.outputs[0]
    env = {vid: _walk(inputs[slot], out.shape, strides) for vid, slot, strides in node.attrs["loads"]}
    _run_body(node.attrs["nodes"], env)
    return env[out.id]


def _in_frame(frame: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A value of `shape` (broadcast to the frame rows + (n,), or to rows) from the frame it was read as."""
    if len(shape) < frame.ndim:
        frame = frame[..., 0]
    return frame[tuple(slice(0, 1) if d == 1 else slice(None) for d in shape)]


def row_kernel(node: Node, *inputs: np.ndarray) -> np.ndarray:
    """Each load walks the frame rows + (n,) (element (row, col) at row . row_strides + col * col_stride)."""
    rows, n = tuple(node.attrs["rows"]), node.attrs["n"]
    shapes = {v.id: v.shape for inner in node.attrs["nodes"] for v in inner.inputs}
    env = {}
    for vid, slot, row_strides, col_stride in node.attrs["loads"]:
        frame = _walk(inputs[slot], rows + (n,), tuple(row_strides) + (col_stride,))
        env[vid] = _in_frame(frame, shapes[vid])
    _run_body(node.attrs["nodes"], env)
    return env[node.outputs[0].id]


def unpack_columns(packed: np.ndarray, block: int) -> np.ndarray:
    """The inverse of passes/prepack.py's pack_columns: b[K, N] from its column blocks of `block`."""
    depth, columns = packed.shape
    flat, b, at = packed.reshape(-1), np.empty_like(packed), 0
    for j0 in range(0, columns, block):
        width = min(block, columns - j0)
        b[:, j0:j0 + width] = flat[at:at + depth * width].reshape(depth, width)
        at += depth * width
    return b


def lowered_host(node: Node, *inputs: np.ndarray) -> np.ndarray:
    """A matmul/conv the passes gave packed weights (attrs packed_b), strided operands (view) and/or
    an elementwise epilogue; a concatenation with an epilogue."""
    declaration = OPS[node.op]
    arity = operand_count(node)  # matmul_integer's zero points follow x and w; an epilogue's loads follow
    plain = Node(node.op, node.inputs[:arity], [],
                 {k: v for k, v in node.attrs.items() if k not in declaration.lowered})
    operands = list(inputs[:arity])
    if "packed_b" in node.attrs:
        w = operands[1]
        operands[1] = unpack_columns(w.reshape(-1, w.shape[-1]), node.attrs["packed_b"]).reshape(w.shape)
    if node.attrs.get("pairs_b"):  # matmul_integer's [N, K] weights stored as [K/2, N, 2] (codegen/matmul_int.py)
        w = operands[1]
        columns, depth = w.shape[-2:]
        operands[1] = np.swapaxes(w.reshape(-1, depth // 2, columns, 2), 1, 2).reshape(w.shape)
    out = node.outputs[0]
    view = node.attrs.get("view")
    if view is not None:
        view = matmul_view(node)
        logical_c = (*view.batch, view.rows, view.columns)
        operands[0] = _walk(operands[0], (*view.batch, view.rows, view.depth), view.a)
        operands[1] = _walk(operands[1], (*view.batch, view.depth, view.columns), view.b)
    result = np.asarray(declaration.reference(plain, *operands))
    epilogue = node.attrs.get("epilogue")
    if epilogue is not None:
        columns = epilogue_columns(node)
        env = {epilogue.source: result.reshape(out.shape)}
        for vid, slot, row_stride, col_stride in epilogue.loads:
            env[vid] = _walk(inputs[slot], (out.size // columns, columns), (row_stride, col_stride)).reshape(out.shape)
        _run_body(epilogue.nodes, env)
        result = env[out.id]
    if view is not None:
        stored = np.zeros(out.size, out.dtype.numpy)
        np.lib.stride_tricks.as_strided(stored, logical_c, [s * stored.itemsize for s in view.c])[...] = result
        result = stored
    return _exact(out, result)
