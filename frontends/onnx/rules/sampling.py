"""GridSample and DeformConv: data-dependent sampling as gathers from the flattened input, weighted and summed.

Each output point reads a few taps per spatial dim (1 nearest, 2 linear, 4 cubic);
every tap combination is one take() from x viewed as [N*prod(spatial), C].
Coordinates, borders and reflection follow onnx's reference implementation.
"""

from __future__ import annotations

import itertools

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.frontends.onnx import build as b
from cerebro.frontends.onnx.table import Ctx, rule

CUBIC_A = -0.75


def _k(ctx: Ctx, x: Value, v: float) -> Value:
    return b.scalar(ctx, v, x)


def _reflect(ctx: Ctx, x: Value, lo: float, hi: float) -> Value:
    """Fold x back into [lo, hi] the way a mirror does (both sides, any distance)."""
    span = hi - lo
    out = x
    for below in (True, False):
        dx = b.sub(ctx, _k(ctx, x, lo), x) if below else b.sub(ctx, x, _k(ctx, x, hi))
        n = ctx.add("floor", b.div(ctx, dx, _k(ctx, x, span)))
        r = b.sub(ctx, dx, b.mul(ctx, n, _k(ctx, x, span)))
        even = b.binary(ctx, "eq", b.sub(ctx, n, b.mul(ctx, ctx.add("floor", b.mul(ctx, n, _k(ctx, x, 0.5))),
                                                         _k(ctx, x, 2))), _k(ctx, x, 0))
        near, far = (lo, hi) if below else (hi, lo)
        sign = 1 if below else -1
        folded = b.select(ctx, even, b.add(ctx, _k(ctx, x, near), b.mul(ctx, r, _k(ctx, x, sign))),
                          b.sub(ctx, _k(ctx, x, far), b.mul(ctx, r, _k(ctx, x, sign))))
        outside = b.binary(ctx, "lt" if below else "gt", x, _k(ctx, x, lo if below else hi))
        out = b.select(ctx, outside, folded, out)
    return out


def _clamp(ctx: Ctx, x: Value, lo: float, hi: float) -> Value:
    return b.binary(ctx, "min", b.binary(ctx, "max", x, _k(ctx, x, lo)), _k(ctx, x, hi))


def _horner(ctx: Ctx, d: Value, coeffs: list[float]) -> Value:
    out = _k(ctx, d, coeffs[0])
    for c in coeffs[1:]:
        out = b.add(ctx, b.mul(ctx, out, d), _k(ctx, d, c))
    return out


def _cubic(ctx: Ctx, t: Value) -> list[Value]:
    """Keys' cubic weights for taps at offsets -1, 0, 1, 2 from floor(x); t = x - floor(x)."""
    a = CUBIC_A
    far = [a, -5 * a, 8 * a, -4 * a]  # 1 <= |d| < 2
    near = [a + 2, -(a + 3), 0.0, 1.0]  # |d| < 1
    one, two = _k(ctx, t, 1), _k(ctx, t, 2)
    return [_horner(ctx, b.add(ctx, t, one), far), _horner(ctx, t, near),
            _horner(ctx, b.sub(ctx, one, t), near), _horner(ctx, b.sub(ctx, two, t), far)]


@rule("GridSample", since=16)
def grid_sample(ctx: Ctx, x: Value, grid: Value) -> Value:
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(ctx.attr("mode"), ctx.attr("mode"))
    align = bool(ctx.attr("align_corners", 0))
    dims = x.shape[2:]
    nd = len(dims)
    g_shape = grid.shape[:-1]
    positions = []
    for i, size in enumerate(dims):
        coord = b.reshape(ctx, b.slice_axis(ctx, grid, grid.rank - 1, nd - 1 - i, nd - i), g_shape)
        if align:
            positions.append(b.mul(ctx, b.add(ctx, coord, _k(ctx, coord, 1)), _k(ctx, coord, (size - 1) / 2)))
        else:
            scaled = b.mul(ctx, b.add(ctx, coord, _k(ctx, coord, 1)), _k(ctx, coord, size))
            positions.append(b.mul(ctx, b.sub(ctx, scaled, _k(ctx, coord, 1)), _k(ctx, coord, 0.5)))
    return sample(ctx, x, positions, mode, ctx.attr("padding_mode", "zeros"), align)


def sample(ctx: Ctx, x: Value, positions: list[Value], mode: str, padding: str, align: bool) -> Value:
    """x[N, C, *dims] read at fractional positions (one [N, *out] value per spatial dim,
    in input coordinates) -> [N, C, *out]."""
    n, c = x.shape[:2]
    dims = x.shape[2:]
    nd = len(dims)
    g_shape = positions[0].shape
    out_spatial = g_shape[1:]
    taps_per_dim = []  # per spatial dim: list of (index, weight or None)
    for i, size in enumerate(dims):
        pos = positions[i]
        lo, hi = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
        if mode == "nearest":
            pos = ctx.add("round", pos)
        if padding == "border":
            outside = ctx.add("or", b.binary(ctx, "lt", pos, _k(ctx, pos, lo)),
                              b.binary(ctx, "gt", pos, _k(ctx, pos, hi)))
            pos = b.select(ctx, outside, _clamp(ctx, pos, 0, size - 1), pos)
        elif padding == "reflection":
            pos = _reflect(ctx, pos, lo, hi)
        if mode == "nearest":
            taps = [(pos, None)]
        else:
            base = ctx.add("floor", pos)
            t = b.sub(ctx, pos, base)
            if mode == "linear":
                taps = [(base, b.sub(ctx, _k(ctx, t, 1), t)), (b.add(ctx, base, _k(ctx, t, 1)), t)]
            elif mode == "cubic":
                taps = [(b.add(ctx, base, _k(ctx, t, off)), w) for off, w in zip((-1, 0, 1, 2), _cubic(ctx, t))]
            else:
                raise ctx.error(f"GridSample mode {mode!r} is not supported")
        resolved = []
        for idx, w in taps:
            if padding == "zeros":
                valid = ctx.add("and", b.binary(ctx, "ge", idx, _k(ctx, idx, 0)),
                                b.binary(ctx, "le", idx, _k(ctx, idx, size - 1)))
                mask = b.cast(ctx, valid, x.dtype)
                w = mask if w is None else ctx.add("mul", w, mask)
                idx = _clamp(ctx, idx, 0, size - 1)
            elif padding == "border":
                idx = _clamp(ctx, idx, 0, size - 1)
            else:
                idx = _clamp(ctx, _reflect(ctx, idx, lo, hi), 0, size - 1)
            resolved.append((b.cast(ctx, idx, DType.i64), w))
        taps_per_dim.append(resolved)
    table = b.reshape(ctx, b.transpose(ctx, x, (0,) + tuple(range(2, x.rank)) + (1,)), (n * int(np.prod(dims)), c))
    strides = [int(np.prod(dims[i + 1:])) for i in range(nd)]
    batch = ctx.add("iota", shape=g_shape, dtype=DType.i64, dimension=0)
    batch = b.mul(ctx, batch, ctx.const(np.int64(np.prod(dims))))
    total = None
    for combo in itertools.product(*taps_per_dim):
        linear, weight = batch, None
        for (idx, w), stride in zip(combo, strides):
            linear = b.add(ctx, linear, b.mul(ctx, idx, ctx.const(np.int64(stride))))
            if w is not None:
                weight = w if weight is None else ctx.add("mul", weight, w)
        picked = ctx.add("take", table, linear, axis=0, mode="clip")  # [N, *out, C]
        if weight is not None:
            picked = b.mul(ctx, picked, b.reshape(ctx, weight, weight.shape + (1,)))
        total = picked if total is None else ctx.add("add", total, picked)
    perm = (0, len(out_spatial) + 1) + tuple(range(1, len(out_spatial) + 1))
    return b.transpose(ctx, total, perm)


@rule("DeformConv", since=19)
def deform_conv(ctx: Ctx, x: Value, w: Value, offset: Value, bias: Value | None = None,
                mask: Value | None = None) -> Value:
    """Sample every kernel tap at its offset position (bilinear, zeros outside, as onnx's
    reference does through GridSample), weight by the mask, then one grouped matmul."""
    if x.rank != 4:
        raise ctx.error(f"DeformConv supports 2-D inputs, got rank {x.rank}")
    n, cin, ih, iw = x.shape
    cout, cin_g, kh, kw = w.shape
    groups, off_groups = ctx.attr("group", 1), ctx.attr("offset_group", 1)
    sh, sw = ctx.attr("strides") or [1, 1]
    dh, dw = ctx.attr("dilations") or [1, 1]
    pads = ctx.attr("pads") or [0, 0, 0, 0]
    oh, ow = offset.shape[2:]
    taps = kh * kw
    off = b.reshape(ctx, offset, (n, off_groups, kh, kw, 2, oh, ow))
    base_h = (np.arange(oh) * sh - pads[0])[None, :, None] + (np.arange(kh) * dh)[:, None, None]  # [kh, oh, 1]
    base_w = (np.arange(ow) * sw - pads[1])[None, None, :] + (np.arange(kw) * dw)[:, None, None]  # [kw, 1, ow]
    grid_h = np.broadcast_to(base_h[:, None], (kh, kw, oh, ow)).astype(x.dtype.numpy)
    grid_w = np.broadcast_to(base_w[None], (kh, kw, oh, ow)).astype(x.dtype.numpy)
    per_group = []
    for g in range(off_groups):
        part = b.slice_axis(ctx, off, 1, g, g + 1)
        dy = b.reshape(ctx, b.slice_axis(ctx, part, 4, 0, 1), (n, kh, kw, oh, ow))
        dx = b.reshape(ctx, b.slice_axis(ctx, part, 4, 1, 2), (n, kh, kw, oh, ow))
        pos = [b.add(ctx, dy, ctx.const(grid_h, x.dtype)), b.add(ctx, dx, ctx.const(grid_w, x.dtype))]
        channels = b.slice_axis(ctx, x, 1, g * cin // off_groups, (g + 1) * cin // off_groups)
        per_group.append(sample(ctx, channels, pos, "linear", "zeros", True))  # [N, C/G, kh, kw, oh, ow]
    cols = per_group[0] if off_groups == 1 else ctx.add("concatenate", *per_group, axis=1)
    if mask is not None:
        m = b.reshape(ctx, mask, (n, off_groups, 1, kh, kw, oh, ow))
        cols = b.reshape(ctx, cols, (n, off_groups, cin // off_groups, kh, kw, oh, ow))
        cols = b.mul(ctx, cols, m)
    cols = b.reshape(ctx, cols, (n * groups, cin_g * taps, oh * ow))
    weights = b.reshape(ctx, w, (1, groups, cout // groups, cin_g * taps))
    weights = b.reshape(ctx, b.expand(ctx, weights, (n, groups, cout // groups, cin_g * taps)),
                        (n * groups, cout // groups, cin_g * taps))
    y = b.reshape(ctx, ctx.add("matmul", weights, cols), (n, cout, oh, ow))
    if bias is not None:
        y = b.add(ctx, y, b.reshape(ctx, bias, (1, cout, 1, 1)))
    return y


# What a rule does not cover (docs/coverage.md shows these as "supported with limits").
LIMITS = {
    "DeformConv": "2-D inputs",
}
