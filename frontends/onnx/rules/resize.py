"""Resize and Upsample: interpolation is separable and affine per axis, so each resized axis
becomes one matmul with a [out, in] matrix computed at compile time with onnx's own reference
formulas (every mode, coordinate transform and cubic variant comes out exactly as ONNX defines it).
"""

from __future__ import annotations

import numpy as np
from onnx.reference.ops import op_resize as ref

from cerebro.compiler.ir import Value
from cerebro.frontends.onnx import build as b
from cerebro.frontends.onnx.table import Ctx, rule


def _coeffs(ctx: Ctx):
    mode, antialias = ctx.attr("mode", "nearest"), ctx.attr("antialias", 0)
    if mode == "nearest":
        nearest = ctx.attr("nearest_mode", "round_prefer_floor")
        return lambda ratio, scale: ref._nearest_coeffs(ratio, mode=nearest)
    if mode == "linear":
        return ref._linear_coeffs_antialias if antialias else ref._linear_coeffs
    if mode == "cubic":
        fn, a = (ref._cubic_coeffs_antialias if antialias else ref._cubic_coeffs), ctx.attr("cubic_coeff_a", -0.75)
        return lambda ratio, scale: fn(ratio, scale, A=a)
    raise ctx.error(f"Resize mode {mode!r} is not supported")


def _plan(ctx: Ctx, x: Value, scales: list[float] | None, sizes: list[int] | None,
          roi: list[float] | None) -> tuple[list[float], list[int], list[float] | None]:
    """Per-axis scale factors and output sizes, as onnx.reference's _interpolate_nd computes them."""
    r = x.rank
    axes = b.axes(ctx, ctx.attr("axes"), r) if ctx.attr("axes") else list(range(r))
    if roi is not None and len(roi) == 2 * len(axes) and len(axes) != r:
        full = [0.0] * r + [1.0] * r
        for i, d in enumerate(axes):
            full[d], full[r + d] = roi[i], roi[len(axes) + i]
        roi = full
    if sizes is not None:
        out = list(x.shape)
        for i, d in enumerate(axes):
            out[d] = sizes[i]
        factors = [out[i] / x.shape[i] for i in range(r)]
        policy = ctx.attr("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            pick = min if policy == "not_larger" else max
            scale = pick(factors[d] for d in axes)
            factors = [scale if i in axes else 1.0 for i in range(r)]
            out = [int(scale * x.shape[i] + 0.5) if i in axes else x.shape[i] for i in range(r)]
        return factors, out, roi
    if scales is None:
        raise ctx.error("Resize needs scales or sizes")
    factors = [1.0] * r
    for i, d in enumerate(axes):
        factors[d] = scales[i]
    return factors, [int(f * n) for f, n in zip(factors, x.shape)], roi


def _resize(ctx: Ctx, x: Value, factors: list[float], out: list[int], roi: list[float] | None) -> Value:
    get_coeffs = _coeffs(ctx)
    r = x.rank
    for axis in range(r):
        identity_roi = roi is None or (np.isclose(roi[axis], 0) and np.isclose(roi[axis + r], 1))
        if np.isclose(factors[axis], 1.0) and out[axis] == x.shape[axis] and identity_roi:
            continue
        n = x.shape[axis]
        kwargs = dict(roi=None if roi is None else [roi[axis], roi[axis + r]],
                      extrapolation_value=ctx.attr("extrapolation_value", 0.0),
                      coordinate_transformation_mode=ctx.attr("coordinate_transformation_mode", "half_pixel"),
                      exclude_outside=bool(ctx.attr("exclude_outside", 0)))
        basis = ref._interpolate_1d_along_axis(np.eye(n), 1, factors[axis], out[axis], get_coeffs, **kwargs)
        offset = ref._interpolate_1d_along_axis(np.zeros((1, n)), 1, factors[axis], out[axis], get_coeffs, **kwargs)
        weights = (basis - offset).astype(x.dtype.numpy)  # [in, out]: row i is the response to e_i
        perm = tuple(d for d in range(r) if d != axis) + (axis,)
        moved = b.transpose(ctx, x, perm)
        flat = b.reshape(ctx, moved, (int(np.prod(moved.shape[:-1])), n))
        y = ctx.add("matmul", flat, ctx.const(weights, x.dtype))
        if np.any(offset):
            y = b.add(ctx, y, ctx.const(offset.astype(x.dtype.numpy), x.dtype))
        y = b.reshape(ctx, y, moved.shape[:-1] + (out[axis],))
        x = b.transpose(ctx, y, tuple(int(i) for i in np.argsort(perm)))
    return x


@rule("Resize", since=11)
def resize(ctx: Ctx, x: Value, roi: Value | None = None, scales: Value | None = None,
           sizes: Value | None = None) -> Value:
    scale_list = b.floats(ctx, scales, "Resize's scales") if scales is not None and scales.size else None
    size_list = b.ints(ctx, sizes, "Resize's sizes") if sizes is not None and sizes.size else None
    roi_list = b.floats(ctx, roi, "Resize's roi") if roi is not None and roi.size else None
    return _resize(ctx, x, *_plan(ctx, x, scale_list, size_list, roi_list))


@rule("Upsample", since=9)
def upsample(ctx: Ctx, x: Value, scales: Value) -> Value:
    """Upsample is Resize with asymmetric coordinates (nearest rounds down)."""
    ctx.attrs.setdefault("coordinate_transformation_mode", "asymmetric")
    ctx.attrs["coordinate_transformation_mode"] = "asymmetric"
    ctx.attrs["nearest_mode"] = "floor"
    factors = b.floats(ctx, scales, "Upsample's scales")
    return _resize(ctx, x, factors, [int(f * n) for f, n in zip(factors, x.shape)], None)
