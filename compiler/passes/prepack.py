"""Weight pre-packing: a constant matmul `b` or conv kernel is stored in the order the register tile reads it.

The matmul tile (codegen/matmul.py) walks b's rows k for one block of columns j0 : j0+width
(width = NV*W lanes, or the shorter tail block). Row-major, consecutive rows are N elements
apart, so one tile's reads are short strided pieces; packed, element (k, j0 + c) sits at
j0*K + k*width + c and the tile reads one contiguous stream (the prefetcher's best case,
and every cache line fully used). The packed constant keeps b's logical shape (K, N);
attrs["packed_b"] records the column block the layout was made for, which the emitter checks.
A conv kernel w[*K, Cin, Cout] is packed as the matrix [prod(K) * Cin, Cout] (the conv tile's K
is kernel positions x Cin).
A conv_integer kernel that codegen/conv_int_packed.py runs (vpmaddwd on 8 i32 lanes: AVX2 without VNNI) is
packed in its own order (ir/int8_layouts.py), its weight zero points moved into the weights.
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import DType, Graph, Node, Value
from cerebro.compiler.ir.int8_layouts import conv_packable, pack_conv_node
from cerebro.compiler.ir.matmul_view import matmul_view
from cerebro.compiler.ir.ops import Role, role_of
from cerebro.compiler.targets import conv_tile, int8_dot, lanes, matmul_tile


def pack_columns(b: np.ndarray, block: int) -> np.ndarray:
    """b[K, N] reordered into column blocks of `block` (the last one shorter), each block row-major.

    One copy for all the full blocks (a strided transpose view) and one for the tail: per-block copies
    and a concatenation cost a second pass over hundreds of MB of weights."""
    depth, columns = b.shape
    full = columns // block * block
    out = np.empty(b.size, b.dtype)
    out[:depth * full].reshape(full // block, depth, block)[...] = \
        b[:, :full].reshape(depth, full // block, block).transpose(1, 0, 2)
    out[depth * full:].reshape(depth, columns - full)[...] = b[:, full:]
    return out.reshape(depth, columns)


def _matmul_weights(node: Node) -> int | None:
    """Input index of a packable matmul b (constant, 2-D), or None."""
    b = node.inputs[1]
    return 1 if b.is_const and b.rank == 2 else None


def _conv_weights(node: Node) -> int | None:
    """Input index of a packable conv kernel: constant, one group, not the depthwise (1x1 channel) kernel.
    As a matrix it is w[K positions * Cin, Cout], which the conv tile walks like the matmul's b."""
    w = node.inputs[1]
    depthwise = w.shape[-2] == 1 and w.shape[-1] == 1
    return 1 if w.is_const and node.attrs.get("groups", 1) == 1 and not depthwise else None


def _tile_vectors(node: Node, target: object) -> int:
    """The vectors of the register tile the weights are packed for: a matmul's (targets.matmul_tile, as
    codegen/matmul.py's tile) or a conv's (targets.conv_tile, as codegen/conv.py's tile)."""
    if node.op == "matmul":
        return matmul_tile(target, matmul_view(node).all_rows)[1]
    return conv_tile(target, node)[1]


PACKABLE = {Role.MATMUL: _matmul_weights, Role.CONV: _conv_weights}  # role -> which input is its weights


def prepack_weights(graph: Graph, target: object) -> Graph:
    """Replace each packable constant weight by its packed copy for target's tile, in place; returns graph."""
    packed: dict[tuple[int, int], Value] = {}
    integer: dict[tuple[int, int], Value] = {}
    packs_conv_integer = (getattr(target, "is_x86", False) and lanes(target, DType.i32) >= 8
                          and int8_dot(target, 8) is None)
    for node in graph.nodes:
        if packs_conv_integer and conv_packable(node):  # a layout of its own (output channels along the lanes)
            pack_conv_node(node, integer)
            continue
        rule = PACKABLE.get(role_of(node.op))
        slot = rule(node) if rule and "packed_b" not in node.attrs else None
        if slot is None or node.inputs[slot].size == 0 or lanes(target, node.inputs[slot].dtype) == 1:
            continue  # (scalar tiles: nothing to gain)
        w = node.inputs[slot]
        block = lanes(target, w.dtype) * _tile_vectors(node, target)
        if (w.id, block) not in packed:
            data = pack_columns(w.data.reshape(-1, w.shape[-1]), block).reshape(w.shape)
            packed[(w.id, block)] = Value(w.shape, w.dtype, f"{w.name}.packed" if w.name else "", data=data)
        node.inputs[slot] = packed[(w.id, block)]
        node.attrs["packed_b"] = block
    return graph
