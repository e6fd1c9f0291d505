"""Weight layouts of the integer kernels, shared by the passes that make them (passes/prepack.py,
passes/int8_static.py, the ONNX quantized-op rules) and the emitters that read them (codegen/matmul_int.py,
codegen/conv_int_packed.py): data facts, so they sit below both.

- pairs_b (matmul_integer): [*B, K, N] weights stored as [*B, K/2, N, 2], so the register tile widens one
  (b[k], b[k+1]) pair per column and multiplies it with vpmaddwd by a broadcast (a[k], a[k+1]) pair.
- packed_b = CHANNELS (conv_integer): per group of CHANNELS output channels, tap and STEP-channel input
  step, PAIRS vectors of 16 bytes (codegen/conv_int_packed.py's docstring has the byte order).
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.graph import Node, Value

PAIR_MIN_ROWS = 4  # below this a product's row tile is mostly empty: one dot product per output is faster
STEP = 16  # conv input channels per activation load (two halves of 8)
PAIRS = 4  # channel pairs per half: vpshufd 0..3
CHANNELS = 4  # output channels per weight vector


def pairs_pay(rows: int, depth: int) -> bool:
    """Whether a product of constant weights (zero points 0) runs the pairs form (pairs_b)."""
    return rows >= PAIR_MIN_ROWS and depth % 2 == 0


def pair_layout(weights: np.ndarray) -> np.ndarray:
    """[*B, K, N] weights as pairs_b stores them, [*B, K/2, N, 2], in an array of the [*B, N, K] shape."""
    *batch, depth, columns = weights.shape
    pairs = np.swapaxes(weights.reshape(*batch, depth // 2, 2, columns), -1, -2)
    return np.ascontiguousarray(pairs).reshape(*batch, columns, depth)


def conv_packable(node: Node) -> bool:
    """Whether a conv_integer's weights fit the packed layout: constant weights and weight zero points,
    either with w - zw in i8 or u8 weights, whole STEP-channel input steps and whole vectors of output
    channels per group (passes/prepack.py adds the target condition: vpmaddwd on 8 i32 lanes)."""
    if node.op != "conv_integer" or "packed_b" in node.attrs:
        return False
    x, w, _, w_zero = node.inputs
    if not (w.is_const and w_zero.is_const):
        return False
    groups = node.attrs.get("groups", 1)
    return (w.shape[-1] % STEP == 0 and (w.shape[0] // groups) % CHANNELS == 0 and x.shape[-1] == w.shape[-1] * groups
            and (w.dtype is DType.u8 or _centred(w.data, w_zero.data) is not None))


def _centred(w: np.ndarray, w_zero: np.ndarray) -> np.ndarray | None:
    """w - w_zero as i8, or None where it does not fit."""
    centred = w.astype(np.int16) - w_zero.astype(np.int16).reshape(-1, 1, 1, 1)
    return centred.astype(np.int8) if centred.size == 0 or -128 <= centred.min() and centred.max() <= 127 else None


def pack_conv_weights(w: np.ndarray) -> np.ndarray:
    """w in the packed kernel's order, keeping its shape [Cout, KH, KW, Cin/g] and dtype."""
    cout, kh, kw, cin = w.shape
    blocks = w.reshape(cout // CHANNELS, CHANNELS, kh * kw, cin // STEP, 2, PAIRS, 2)
    return np.ascontiguousarray(blocks.transpose(0, 2, 3, 5, 4, 1, 6)).reshape(w.shape)


def pack_conv_node(node: Node, packed: dict[tuple[int, int], Value]) -> None:
    """Give node its packed weights (shared by nodes reading the same constants): w - zw as i8 with zero weight
    zero points where that fits, else u8 weights as they are (the kernel subtracts their zero points)."""
    w, w_zero = node.inputs[1], node.inputs[3]
    centred = _centred(w.data, w_zero.data)
    key = (w.id, w_zero.id)
    if key not in packed:
        data = centred if centred is not None else w.data
        packed[key] = Value(w.shape, DType.i8 if centred is not None else w.dtype,
                            f"{w.name}.packed" if w.name else "", data=pack_conv_weights(data))
    node.inputs[1] = packed[key]
    if centred is not None:
        node.inputs[3] = Value(w_zero.shape, DType.i8, "", data=np.zeros(w_zero.shape, np.int8))
    node.attrs["packed_b"] = CHANNELS
