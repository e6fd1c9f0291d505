"""Pooling: MaxPool, AveragePool, LpPool and the global forms, on channels-first tensors."""

from __future__ import annotations

import itertools

import numpy as np

from cerebro.compiler.ir import Value
from cerebro.frontends.onnx import build as b
from cerebro.frontends.onnx.rules.nn import conv_padding
from cerebro.frontends.onnx.table import Ctx, rule

IDENTITY = {"max": -np.inf, "sum": 0.0}


def _geometry(ctx: Ctx, x: Value) -> tuple[list[int], list[int], list[int], list[tuple[int, int]], list[int]]:
    """kernel, strides, dilations, explicit (lo, hi) pads, and the extra hi cells ceil_mode needs."""
    kernel = ctx.attr("kernel_shape")
    n = len(kernel)
    strides = ctx.attr("strides") or [1] * n
    dilations = ctx.attr("dilations") or [1] * n
    pads = conv_padding(ctx, x.shape[2:], kernel, strides, dilations)
    extra = []
    for size, k, s, d, (lo, hi) in zip(x.shape[2:], kernel, strides, dilations, pads):
        span = size + lo + hi - ((k - 1) * d + 1)
        out = span // s + 1
        if ctx.attr("ceil_mode", 0):
            out = -(-span // s) + 1
            if (out - 1) * s >= size + lo:  # the last window would start in the padding
                out -= 1
        extra.append(max((out - 1) * s + (k - 1) * d + 1 - (size + lo + hi), 0))
    return kernel, strides, dilations, pads, extra


def window_reduce(ctx: Ctx, x: Value, kind: str, kernel: list[int], strides: list[int], dilations: list[int],
                  pads: list[tuple[int, int]], extra: list[int]) -> Value:
    """Reduce windows over the spatial dims; dilated windows become a max/sum over shifted slices."""
    spatial = len(kernel)
    padding = ((0, 0), (0, 0)) + tuple((lo, hi + e) for (lo, hi), e in zip(pads, extra))
    if all(d == 1 for d in dilations):
        return ctx.add("reduce_window", x, kind=kind, window=(1, 1) + tuple(kernel),
                       strides=(1, 1) + tuple(strides), padding=padding)
    padded = b.pad(ctx, x, [p[0] for p in padding], [p[1] for p in padding], IDENTITY[kind])
    outs = [(padded.shape[2 + i] - ((k - 1) * d + 1)) // s + 1
            for i, (k, s, d) in enumerate(zip(kernel, strides, dilations))]
    result = None
    for taps in itertools.product(*(range(k) for k in kernel)):
        start = (0, 0) + tuple(t * d for t, d in zip(taps, dilations))
        limit = x.shape[:2] + tuple(st + (o - 1) * s + 1 for st, o, s in zip(start[2:], outs, strides))
        part = ctx.add("slice", padded, start=start, limit=limit, strides=(1, 1) + tuple(strides))
        result = part if result is None else ctx.add("max" if kind == "max" else "add", result, part)
    assert result is not None and spatial > 0
    return result


def _counts(x: Value, kernel: list[int], strides: list[int], dilations: list[int], pads: list[tuple[int, int]],
            extra: list[int], include_pad: bool) -> np.ndarray:
    """How many cells each average-pool window covers (a compile-time constant)."""
    mask = np.ones(x.shape[2:], np.float64)
    mask = np.pad(mask, [(lo, hi) for lo, hi in pads], constant_values=1.0 if include_pad else 0.0)
    mask = np.pad(mask, [(0, e) for e in extra])
    outs = [(mask.shape[i] - ((k - 1) * d + 1)) // s + 1 for i, (k, s, d) in enumerate(zip(kernel, strides, dilations))]
    total = np.zeros(outs)
    for taps in itertools.product(*(range(k) for k in kernel)):
        index = tuple(slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, o, s in zip(taps, dilations, outs, strides))
        total += mask[index]
    return total


@rule("MaxPool")
def max_pool(ctx: Ctx, x: Value) -> Value:
    if ctx.n_outputs > 1:
        raise ctx.error("MaxPool's Indices output is not supported")
    return window_reduce(ctx, x, "max", *_geometry(ctx, x))


@rule("AveragePool")
def average_pool(ctx: Ctx, x: Value) -> Value:
    geometry = _geometry(ctx, x)
    total = window_reduce(ctx, x, "sum", *geometry)
    counts = _counts(x, *geometry, include_pad=bool(ctx.attr("count_include_pad", 0)))
    return b.div(ctx, total, ctx.const(counts.reshape((1, 1) + counts.shape).astype(x.dtype.numpy), x.dtype))


@rule("LpPool")
def lp_pool(ctx: Ctx, x: Value) -> Value:
    p = ctx.attr("p", 2)
    powered = b.binary(ctx, "pow", ctx.add("abs", x), b.scalar(ctx, p, x))
    total = window_reduce(ctx, powered, "sum", *_geometry(ctx, x))
    return b.binary(ctx, "pow", total, b.scalar(ctx, 1.0 / p, x))


def _global(ctx: Ctx, x: Value, kind: str) -> Value:
    return b.reduce(ctx, kind, x, list(range(2, x.rank)), True)


@rule("GlobalMaxPool")
def global_max_pool(ctx: Ctx, x: Value) -> Value:
    return _global(ctx, x, "reduce_max")


@rule("GlobalAveragePool")
def global_average_pool(ctx: Ctx, x: Value) -> Value:
    total = _global(ctx, x, "reduce_sum")
    return b.div(ctx, total, b.scalar(ctx, int(np.prod(x.shape[2:])), x))


@rule("GlobalLpPool")
def global_lp_pool(ctx: Ctx, x: Value) -> Value:
    p = ctx.attr("p", 2)
    total = _global(ctx, b.binary(ctx, "pow", ctx.add("abs", x), b.scalar(ctx, p, x)), "reduce_sum")
    return b.binary(ctx, "pow", total, b.scalar(ctx, 1.0 / p, x))


# What a rule does not cover (docs/coverage.md shows these as "supported with limits").
LIMITS = {
    "MaxPool": "no Indices output",
}
