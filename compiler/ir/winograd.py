"""The `winograd_conv` op: a 2-D 3x3, stride-1, undilated, one-group f32 convolution by Winograd's
minimal filtering F(m x m, 3 x 3) (Lavin & Gray 2015), which passes/winograd.py puts where it pays.

Each m x m block of outputs (a tile) reads an a x a block of inputs (a = m + 2) and is
    Y = A^T [ U (.) (B^T d B) ] A,  with U = G g G^T the transformed kernel,
so a tile costs a^2 multiply-adds per (Cin, Cout) pair instead of 9 m^2 (F(2,3): 16 vs 36).
The elementwise products over Cin are a^2 independent GEMMs (tiles x Cin) @ (Cin x Cout).

inputs:  x [N, H, W, Cin] f32 (channels last); u = transform_kernel(w, m, columns): U[p, ci, co] for
         the a^2 positions p, stored in blocks of `columns` output channels (Cout/columns, a^2, Cin,
         columns), the order the products' register tile streams it; then the chain's operands.
attrs:   padding ((top, bottom), (left, right)); tile (m); block (tiles per unit of work); columns;
         groups: a unit is a block of tiles and one of `groups` equal runs of its column blocks (passes/
         winograd.py: one column block each, so stage slices are small);
         chain: None or an Epilogue (compiler/ir/fused.py) run on the output, as a conv's epilogue.
outputs: y [N, OH, OW, Cout] f32; the scratch (f32): per unit of work, the transformed inputs of its
         tiles (a^2 x block x Cin) and one column block of products (a^2 x block x columns).
A tile past the output's edge reads zeros (padding) and its outputs beyond the edge are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.graph import IRError, Node

# tile m -> (B^T, G, A^T) of F(m x m, 3 x 3): interpolation points 0, -1, 1 (m = 2), 0, +-1, +-2 (m = 4)
TRANSFORMS: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {
    2: (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64),
        np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)),
    4: (np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                  [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64),
        np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                  [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], np.float64)),
}


@dataclass(frozen=True)
class Geometry:
    """Sizes of one winograd_conv, and how its tiles are cut into units of work."""

    batch: int
    height: int
    width: int
    cin: int
    cout: int
    out_h: int
    out_w: int
    top: int
    left: int
    tile: int
    block: int
    columns: int
    groups: int

    @property
    def alpha(self) -> int:
        return self.tile + 2

    @property
    def tiles_h(self) -> int:
        return _ceil(self.out_h, self.tile)

    @property
    def tiles_w(self) -> int:
        return _ceil(self.out_w, self.tile)

    @property
    def tiles(self) -> int:
        return self.batch * self.tiles_h * self.tiles_w

    @property
    def units(self) -> int:
        return _ceil(self.tiles, self.block) * self.groups

    @property
    def blocks_per_group(self) -> int:
        return self.cout // self.columns // self.groups

    @property
    def inputs_per_unit(self) -> int:
        return self.alpha ** 2 * self.block * self.cin

    @property
    def scratch_per_unit(self) -> int:
        return self.inputs_per_unit + self.alpha ** 2 * self.block * self.columns


def geometry(node: Node, out_shape: tuple[int, ...] | None = None) -> Geometry:
    x = node.inputs[0]
    (top, bottom), (left, right) = node.attrs["padding"]
    out_h, out_w = (out_shape or node.outputs[0].shape)[1:3]
    cout = node.inputs[1].size // (x.shape[-1] * (node.attrs["tile"] + 2) ** 2)
    return Geometry(x.shape[0], x.shape[1], x.shape[2], x.shape[3], cout, out_h, out_w, top, left,
                    node.attrs["tile"], node.attrs["block"], node.attrs["columns"], node.attrs["groups"])


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def blocks(tiles: int, cin: int, tile: int, rows: int, budget_bytes: int) -> int:
    """Tiles per unit: a multiple of the register tile's rows whose transformed inputs (a^2 x Cin f32
    per tile) fit budget_bytes, evened out over the tiles (49 tiles: 2 units of 30, not 48 + 1)."""
    per_tile = (tile + 2) ** 2 * cin * 4
    most = max(rows, budget_bytes // per_tile // rows * rows)
    return rows * _ceil(_ceil(tiles, _ceil(tiles, most)), rows)


def transform_kernel(w: np.ndarray, tile: int, columns: int) -> np.ndarray:
    """U = G g G^T of a [3, 3, Cin, Cout] kernel, in float64 then rounded once to f32, as
    (Cout/columns, a^2, Cin, columns)."""
    _, g, _ = TRANSFORMS[tile]
    alpha, cin, cout = tile + 2, w.shape[2], w.shape[3]
    u = np.einsum("ai,ijkl,bj->abkl", g, w.astype(np.float64), g).reshape(alpha * alpha, cin, cout)
    return np.ascontiguousarray(u.reshape(alpha * alpha, cin, cout // columns, columns)
                                .transpose(2, 0, 1, 3)).astype(np.float32)


def untransformed(u: np.ndarray, tile: int, cin: int) -> np.ndarray:
    """U as [a, a, Cin, Cout] from transform_kernel's layout."""
    alpha = tile + 2
    blocks_, _, _, columns = u.reshape(-1, alpha * alpha, cin, u.shape[-1]).shape
    return u.reshape(blocks_, alpha, alpha, cin, columns).transpose(1, 2, 3, 0, 4).reshape(
        alpha, alpha, cin, blocks_ * columns)


def rule(node: Node) -> list:
    x, u = node.inputs[:2]
    tile = node.attrs.get("tile")
    if tile not in TRANSFORMS or x.rank != 4 or x.dtype is not DType.f32 or u.dtype is not DType.f32:
        raise IRError(f"{node.where()}: needs f32 x[N, H, W, Cin] and a tile of {sorted(TRANSFORMS)}")
    alpha, cin = tile + 2, x.shape[-1]
    columns, block, groups = (node.attrs.get(key, 0) for key in ("columns", "block", "groups"))
    if columns < 1 or block < 1 or groups < 1 or u.size % (alpha * alpha * cin * columns * groups):
        raise IRError(f"{node.where()}: kernel of {u.size} elements is not {alpha}x{alpha}x{cin}x(k*{groups}"
                      f"*{columns})")
    (top, bottom), (left, right) = node.attrs["padding"]
    out_h, out_w = x.shape[1] + top + bottom - 2, x.shape[2] + left + right - 2
    if min(top, bottom, left, right) < 0 or out_h < 1 or out_w < 1:
        raise IRError(f"{node.where()}: padding {node.attrs['padding']} does not fit x{x.shape}")
    g = geometry(node, (x.shape[0], out_h, out_w))
    return [((x.shape[0], out_h, out_w, g.cout), DType.f32), ((g.units * g.scratch_per_unit,), DType.f32)]


def reference(node: Node, x: np.ndarray, u: np.ndarray, *operands: np.ndarray) -> list[np.ndarray]:
    """The transforms in float64 on the f32 inputs, then the chain (as a conv's epilogue)."""
    from cerebro.compiler.ir.fused_reference import _run_body, _walk

    (shape, _), (scratch, _) = rule(node)
    g = geometry(node, shape)
    bt, _, at = TRANSFORMS[g.tile]
    span = (g.tiles_h * g.tile + 2, g.tiles_w * g.tile + 2)
    padded = np.zeros((g.batch, *span, g.cin))
    padded[:, g.top:g.top + g.height, g.left:g.left + g.width] = x
    windows = np.lib.stride_tricks.sliding_window_view(padded, (g.alpha, g.alpha), axis=(1, 2))
    d = windows[:, ::g.tile, ::g.tile]  # [N, th, tw, Cin, a, a]
    v = np.einsum("ai,nhwcij,bj->nhwabc", bt, d, bt)
    m = np.einsum("nhwabc,abck->nhwabk", v, untransformed(u, g.tile, g.cin).astype(np.float64))
    y = np.einsum("ya,nhwabk,xb->nhywxk", at, m, at).reshape(g.batch, g.tiles_h * g.tile, g.tiles_w * g.tile, -1)
    result = y[:, :g.out_h, :g.out_w].astype(np.float32)
    chain = node.attrs.get("chain")
    if chain is not None:
        out = node.outputs[0]
        env = {chain.source: result}
        for vid, slot, row_stride, col_stride in chain.loads:
            rows = out.size // g.cout
            env[vid] = _walk(operands[slot - 2], (rows, g.cout), (row_stride, col_stride)).reshape(out.shape)
        _run_body(chain.nodes, env)
        result = env[out.id]
    return [result, np.zeros(scratch, np.float32)]


def flops(node: Node) -> int:
    """The products (the transforms are a few adds per element, next to Cin multiply-adds)."""
    g = geometry(node)
    return 2 * g.tiles * g.alpha ** 2 * g.cin * g.cout + math.prod(node.outputs[0].shape)
