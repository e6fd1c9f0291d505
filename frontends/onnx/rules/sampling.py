"""GridSample: data-dependent sampling as gathers from the flattened input, weighted and summed.

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


def _cubic(ctx: Ctx, t: Value) -> list[Value]:
    """Keys' cubic weights for taps at offsets -1, 0, 1, 2 from floor(x); t = x - floor(x)."""
    a = CUBIC_A

    def far(d: Value) -> Value:  # 1 < |d| < 2
        return b.sub(ctx, b.mul(ctx, b.add(ctx, b.mul(ctx, b.sub(ctx, b.mul(ctx, d, _k(ctx, d, a)), _k(ctx, d, 5 * a)), d),
                                              _k(ctx, d, 8 * a)), d), _k(ctx, d, 4 * a))

    def near(d: Value) -> Value:  # |d| <= 1
        return b.add(ctx, b.mul(ctx, b.mul(ctx, b.sub(ctx, b.mul(ctx, d, _k(ctx, d, a + 2)), _k(ctx, d, a + 3)), d), d),
                     _k(ctx, d, 1))

    one = _k(ctx, t, 1)
    return [far(b.add(ctx, t, one)), near(t), near(b.sub(ctx, one, t)), far(b.sub(ctx, _k(ctx, t, 2), t))]


@rule("GridSample", since=16)
def grid_sample(ctx: Ctx, x: Value, grid: Value) -> Value:
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(ctx.attr("mode"), ctx.attr("mode"))
    padding = ctx.attr("padding_mode", "zeros")
    align = bool(ctx.attr("align_corners", 0))
    n, c = x.shape[:2]
    dims = x.shape[2:]
    nd = len(dims)
    out_spatial = grid.shape[1:-1]
    g_shape = grid.shape[:-1]
    taps_per_dim = []  # per spatial dim: list of (index value float, weight)
    for i, size in enumerate(dims):
        coord = b.reshape(ctx, b.slice_axis(ctx, grid, grid.rank - 1, nd - 1 - i, nd - i), g_shape)
        if align:
            pos = b.mul(ctx, b.add(ctx, coord, _k(ctx, coord, 1)), _k(ctx, coord, (size - 1) / 2))
            lo, hi = 0.0, size - 1.0
        else:
            pos = b.mul(ctx, b.sub(ctx, b.mul(ctx, b.add(ctx, coord, _k(ctx, coord, 1)), _k(ctx, coord, size)),
                                   _k(ctx, coord, 1)), _k(ctx, coord, 0.5))
            lo, hi = -0.5, size - 0.5
        if mode == "nearest":
            pos = ctx.add("round", pos)
        if padding == "border":
            outside = ctx.add("or", b.binary(ctx, "lt", pos, _k(ctx, pos, lo)), b.binary(ctx, "gt", pos, _k(ctx, pos, hi)))
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
