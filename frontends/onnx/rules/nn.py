"""Matrix products, convolutions and normalisations (ONNX is channels-first, the IR's conv is channels-last)."""

from __future__ import annotations

import itertools

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.frontends.onnx import build as b
from cerebro.frontends.onnx.table import Ctx, rule


@rule("MatMul")
def matmul(ctx: Ctx, x: Value, y: Value) -> Value:
    return b.matmul(ctx, x, y)


@rule("Gemm")
def gemm(ctx: Ctx, a: Value, w: Value, c: Value | None = None) -> Value:
    if ctx.attr("transA", 0):
        a = b.transpose(ctx, a, (1, 0))
    if ctx.attr("transB", 0):
        w = b.transpose(ctx, w, (1, 0))
    y = ctx.add("matmul", a, w)
    alpha, beta = ctx.attr("alpha", 1.0), ctx.attr("beta", 1.0)
    if alpha != 1.0:
        y = b.mul(ctx, y, b.scalar(ctx, alpha, y))
    if c is not None:
        if beta != 1.0:
            c = b.mul(ctx, c, b.scalar(ctx, beta, c))
        y = b.expand(ctx, b.add(ctx, y, c), y.shape)
    return y


def channels_last(ctx: Ctx, x: Value) -> Value:
    return b.transpose(ctx, x, (0,) + tuple(range(2, x.rank)) + (1,))


def channels_first(ctx: Ctx, x: Value) -> Value:
    return b.transpose(ctx, x, (0, x.rank - 1) + tuple(range(1, x.rank - 1)))


def conv_padding(ctx: Ctx, spatial: tuple[int, ...], kernel: tuple[int, ...], strides: list[int],
                 dilations: list[int]) -> list[tuple[int, int]]:
    """Per spatial dim (lo, hi) from pads or auto_pad (SAME_UPPER puts the odd cell at the end)."""
    n = len(spatial)
    mode = ctx.attr("auto_pad", "NOTSET")
    if mode in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for size, k, s, d in zip(spatial, kernel, strides, dilations):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small = total // 2
            out.append((small, total - small) if mode == "SAME_UPPER" else (total - small, small))
        return out
    if mode == "VALID":
        return [(0, 0)] * n
    pads = ctx.attr("pads") or [0] * (2 * n)
    return [(pads[i], pads[i + n]) for i in range(n)]


def _bias(ctx: Ctx, y: Value, bias: Value | None) -> Value:
    """Add a per-channel bias to a channels-last tensor."""
    if bias is None:
        return y
    return b.add(ctx, y, b.reshape(ctx, bias, (1,) * (y.rank - 1) + (bias.size,)))


@rule("Conv")
def conv(ctx: Ctx, x: Value, w: Value, bias: Value | None = None) -> Value:
    spatial = x.rank - 2
    kernel = w.shape[2:]
    strides = ctx.attr("strides") or [1] * spatial
    dilations = ctx.attr("dilations") or [1] * spatial
    padding = conv_padding(ctx, x.shape[2:], kernel, strides, dilations)
    groups = ctx.attr("group", 1)
    w_last = b.transpose(ctx, w, tuple(range(2, w.rank)) + (1, 0))
    y = ctx.add("conv", channels_last(ctx, x), w_last, strides=tuple(strides), padding=tuple(padding),
                rhs_dilation=tuple(dilations), groups=groups)
    return channels_first(ctx, _bias(ctx, y, bias))


@rule("ConvTranspose")
def conv_transpose(ctx: Ctx, x: Value, w: Value, bias: Value | None = None) -> Value:
    """A conv over the input dilated by the strides, with the kernel flipped and in/out swapped."""
    spatial = x.rank - 2
    kernel = w.shape[2:]
    groups = ctx.attr("group", 1)
    strides = ctx.attr("strides") or [1] * spatial
    dilations = ctx.attr("dilations") or [1] * spatial
    out_pad = ctx.attr("output_padding") or [0] * spatial
    out_shape = ctx.attr("output_shape")
    full = [s * (n - 1) + (k - 1) * d + 1 for s, n, k, d in zip(strides, x.shape[2:], kernel, dilations)]
    mode = ctx.attr("auto_pad", "NOTSET")
    if mode in ("SAME_UPPER", "SAME_LOWER"):
        target = out_shape or [n * s for n, s in zip(x.shape[2:], strides)]
        pads = []
        for f, p, t in zip(full, out_pad, target):
            total = f + p - t
            small = total // 2
            pads.append((small, total - small) if mode == "SAME_UPPER" else (total - small, small))
    else:
        raw = ctx.attr("pads") or [0] * (2 * spatial)
        pads = [(raw[i], raw[i + spatial]) for i in range(spatial)]
        if out_shape:
            out_pad = [t - (f - lo - hi) for t, f, (lo, hi) in zip(out_shape, full, pads)]
    cin, cout_g = w.shape[0], w.shape[1]
    wg = b.reshape(ctx, w, (groups, cin // groups, cout_g) + kernel)
    perm = tuple(range(3, 3 + spatial)) + (1, 0, 2)
    w_last = b.reshape(ctx, b.transpose(ctx, wg, perm), kernel + (cin // groups, cout_g * groups))
    w_last = ctx.add("rev", w_last, dims=tuple(range(spatial))) if not w_last.is_const else \
        ctx.const(np.flip(w_last.data, tuple(range(spatial))).copy(), w_last.dtype)
    padding = tuple(((k - 1) * d - lo, (k - 1) * d - hi + p)
                    for k, d, (lo, hi), p in zip(kernel, dilations, pads, out_pad))
    y = ctx.add("conv", channels_last(ctx, x), w_last, strides=(1,) * spatial, padding=padding,
                lhs_dilation=tuple(strides), rhs_dilation=tuple(dilations), groups=groups)
    return channels_first(ctx, _bias(ctx, y, bias))


def _per_channel(ctx: Ctx, v: Value, rank: int) -> Value:
    return b.reshape(ctx, v, (1, v.size) + (1,) * (rank - 2))


def _normalize(ctx: Ctx, x: Value, mean: Value, var: Value, eps: float) -> Value:
    return b.div(ctx, b.sub(ctx, x, mean), ctx.add("sqrt", b.add(ctx, var, b.scalar(ctx, eps, var))))


def _moments(ctx: Ctx, x: Value, dims: list[int]) -> tuple[Value, Value]:
    """Mean and population variance over dims, kept as unit dims."""
    count = b.scalar(ctx, int(np.prod([x.shape[d] for d in dims])), x)
    mean = b.div(ctx, b.reduce(ctx, "reduce_sum", x, dims, True), count)
    centered = b.sub(ctx, x, mean)
    var = b.div(ctx, b.reduce(ctx, "reduce_sum", ctx.add("mul", centered, centered), dims, True), count)
    return mean, var


@rule("BatchNormalization")
def batch_norm(ctx: Ctx, x: Value, scale: Value, bias: Value, mean: Value, var: Value) -> list[Value]:
    eps = ctx.attr("epsilon", 1e-5)
    r = x.rank
    if not ctx.attr("training_mode", 0):
        if ctx.version < 7 and ctx.attr("is_test", 0) == 0 and ctx.n_outputs > 1:
            raise ctx.error("BatchNormalization in training mode (is_test=0) before opset 7 is not supported")
        y = _normalize(ctx, x, _per_channel(ctx, mean, r), _per_channel(ctx, var, r), eps)
        return [b.add(ctx, b.mul(ctx, y, _per_channel(ctx, scale, r)), _per_channel(ctx, bias, r))]
    dims = [0] + list(range(2, r))
    batch_mean, batch_var = _moments(ctx, x, dims)
    y = _normalize(ctx, x, batch_mean, batch_var, eps)
    y = b.add(ctx, b.mul(ctx, y, _per_channel(ctx, scale, r)), _per_channel(ctx, bias, r))
    momentum = ctx.attr("momentum", 0.9)
    flat_mean, flat_var = b.reshape(ctx, batch_mean, mean.shape), b.reshape(ctx, batch_var, var.shape)
    run_mean = b.add(ctx, b.mul(ctx, mean, b.scalar(ctx, momentum, mean)),
                     b.mul(ctx, flat_mean, b.scalar(ctx, 1 - momentum, mean)))
    run_var = b.add(ctx, b.mul(ctx, var, b.scalar(ctx, momentum, var)),
                    b.mul(ctx, flat_var, b.scalar(ctx, 1 - momentum, var)))
    return [y, run_mean, run_var]


@rule("InstanceNormalization")
def instance_norm(ctx: Ctx, x: Value, scale: Value, bias: Value) -> Value:
    mean, var = _moments(ctx, x, list(range(2, x.rank)))
    y = _normalize(ctx, x, mean, var, ctx.attr("epsilon", 1e-5))
    return b.add(ctx, b.mul(ctx, y, _per_channel(ctx, scale, x.rank)), _per_channel(ctx, bias, x.rank))


@rule("LayerNormalization", since=17)
def layer_norm(ctx: Ctx, x: Value, scale: Value, bias: Value | None = None) -> list[Value]:
    ax = b.axis(ctx, ctx.attr("axis", -1), x.rank)
    dims = list(range(ax, x.rank))
    work = b.cast(ctx, x, DType.f32) if ctx.attr("stash_type", 1) == 1 and x.dtype is DType.f64 else x
    mean, var = _moments(ctx, work, dims)
    inv_std = ctx.add("rsqrt", b.add(ctx, var, b.scalar(ctx, ctx.attr("epsilon", 1e-5), var)))
    y = b.cast(ctx, b.mul(ctx, b.sub(ctx, work, mean), inv_std), x.dtype)
    y = b.mul(ctx, y, scale)
    if bias is not None:
        y = b.add(ctx, y, bias)
    return [b.expand(ctx, y, x.shape), mean, inv_std]


@rule("LRN")
def lrn(ctx: Ctx, x: Value) -> Value:
    size = ctx.attr("size")
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    window = (1, size) + (1,) * (x.rank - 2)
    sq = ctx.add("reduce_window", ctx.add("mul", x, x), kind="sum", window=window, strides=(1,) * x.rank,
                 padding=((0, 0), (lo, hi)) + ((0, 0),) * (x.rank - 2))
    alpha, beta, bias = ctx.attr("alpha", 1e-4), ctx.attr("beta", 0.75), ctx.attr("bias", 1.0)
    base = b.add(ctx, b.mul(ctx, sq, b.scalar(ctx, alpha / size, x)), b.scalar(ctx, bias, x))
    return b.div(ctx, x, b.binary(ctx, "pow", base, b.scalar(ctx, beta, x)))


@rule("Det")
def det(ctx: Ctx, x: Value) -> Value:
    """Leibniz's formula, sum over permutations of signed products; fine for the small
    matrices Det appears with (n <= 4: at most 24 terms)."""
    n = x.shape[-1]
    if x.shape[-2] != n or n > 4:
        raise ctx.error(f"Det supports square matrices up to 4x4, got {x.shape[-2:]}")
    batch = x.shape[:-2]
    entries = {}
    for i in range(n):
        for j in range(n):
            part = b.slice_axis(ctx, b.slice_axis(ctx, x, x.rank - 2, i, i + 1), x.rank - 1, j, j + 1)
            entries[i, j] = b.reshape(ctx, part, batch)
    total = None
    for perm in itertools.permutations(range(n)):
        term = entries[0, perm[0]]
        for i in range(1, n):
            term = ctx.add("mul", term, entries[i, perm[i]])
        inversions = sum(1 for a in range(n) for c in range(a + 1, n) if perm[a] > perm[c])
        if total is None:
            total = term if inversions % 2 == 0 else ctx.add("neg", term)
        else:
            total = ctx.add("sub" if inversions % 2 else "add", total, term)
    return total


# What a rule does not cover (docs/coverage.md shows these as "supported with limits").
LIMITS = {
    "Det": "square matrices up to 4x4",
}
