"""Lowering of the heavy primitives: dot_general, conv_general_dilated and windowed reductions."""

from __future__ import annotations

import math
from collections.abc import Callable

from cerebro.compiler.ir import Value
from cerebro.compiler.ir.ops import CONV_INTEGER_MIN_CHANNELS
from cerebro.frontends.jax import int8
from cerebro.frontends.jax.context import Context

Rule = Callable[..., list[Value]]


def _dot_general(ctx: Context, eqn, lhs: Value, rhs: Value) -> list[Value]:
    """Any dot_general as one batched matmul [*B, M, K] @ [*B, K, N] (int8.py's matmul_integer for bytes
    into int32, constant weights laid out [*B, N, K]).

    Batch dims go first, the free dims of each side are flattened into M (or N)
    and all contracting dims into K; the result is reshaped back to JAX's
    (batch, lhs free, rhs free) layout.
    """
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lc, rc, lb, rb = (tuple(int(d) for d in dims) for dims in (lc, rc, lb, rb))
    out_dtype = ctx.dtype(eqn.outvars[0].aval.dtype)
    as_bytes = int8.byte_operands(ctx, out_dtype, lhs, rhs)
    lhs, rhs = as_bytes or (ctx.convert(lhs, out_dtype), ctx.convert(rhs, out_dtype))
    lf = tuple(d for d in range(lhs.rank) if d not in lc and d not in lb)
    rf = tuple(d for d in range(rhs.rank) if d not in rc and d not in rb)
    batch = tuple(lhs.shape[d] for d in lb)
    contract = math.prod(lhs.shape[d] for d in lc)
    lhs_free = tuple(lhs.shape[d] for d in lf)
    rhs_free = tuple(rhs.shape[d] for d in rf)
    a = ctx.reshape(ctx.transpose(lhs, lb + lf + lc), batch + (math.prod(lhs_free), contract))
    if as_bytes and rhs.is_const:
        b = ctx.reshape(ctx.transpose(rhs, rb + rf + rc), batch + (math.prod(rhs_free), contract))
        product = int8.matmul(ctx, a, b, b_transposed=True)
    else:
        b = ctx.reshape(ctx.transpose(rhs, rb + rc + rf), batch + (contract, math.prod(rhs_free)))
        product = int8.matmul(ctx, a, b, b_transposed=False) if as_bytes else ctx.add("matmul", a, b)
    return [ctx.reshape(product, batch + lhs_free + rhs_free)]


def _conv_general_dilated(ctx: Context, eqn, lhs: Value, rhs: Value) -> list[Value]:
    """Transpose to the IR's channels-last x[N, *S, C], w[*K, Cin/groups, Cout], then back; a 2-D conv of
    bytes into int32 with enough channels per group as conv_integer, w[Cout, KH, KW, Cin/groups] (int8.py)."""
    params = eqn.params
    if int(params["batch_group_count"]) != 1:
        raise ctx.fail(f"conv_general_dilated with batch_group_count={params['batch_group_count']}")
    lhs_spec, rhs_spec, out_spec = (tuple(int(d) for d in spec) for spec in params["dimension_numbers"])
    out_dtype = ctx.dtype(eqn.outvars[0].aval.dtype)
    spatial = lhs.rank - 2
    attrs = dict(strides=tuple(int(s) for s in params["window_strides"]),
                 padding=tuple((int(lo), int(hi)) for lo, hi in params["padding"]),
                 rhs_dilation=tuple(int(d) for d in (params["rhs_dilation"] or (1,) * spatial)),
                 groups=int(params["feature_group_count"]))
    lhs_dilation = tuple(int(d) for d in (params["lhs_dilation"] or (1,) * spatial))
    fits_integer_op = (spatial == 2 and lhs_dilation == (1, 1) and min(sum(attrs["padding"], ())) >= 0
                       and rhs.shape[rhs_spec[1]] >= CONV_INTEGER_MIN_CHANNELS)
    as_bytes = int8.byte_operands(ctx, out_dtype, lhs, rhs) if fits_integer_op else None
    x_perm = (lhs_spec[0],) + lhs_spec[2:] + (lhs_spec[1],)
    if as_bytes:
        x, w = as_bytes
        y = int8.conv(ctx, ctx.transpose(x, x_perm), ctx.transpose(w, (rhs_spec[0],) + rhs_spec[2:] + (rhs_spec[1],)),
                      **attrs)
    else:
        x = ctx.transpose(ctx.convert(lhs, out_dtype), x_perm)
        w = ctx.transpose(ctx.convert(rhs, out_dtype), rhs_spec[2:] + (rhs_spec[1], rhs_spec[0]))
        y = ctx.add("conv", x, w, lhs_dilation=lhs_dilation, **attrs)
    perm = [0] * y.rank
    perm[out_spec[0]] = 0
    perm[out_spec[1]] = y.rank - 1
    for i, dim in enumerate(out_spec[2:]):
        perm[dim] = 1 + i
    return [ctx.transpose(y, tuple(perm))]


def _reduce_window(kind: str) -> Rule:
    def rule(ctx: Context, eqn, x: Value) -> list[Value]:
        params = eqn.params
        for name in ("base_dilation", "window_dilation"):
            if any(int(d) != 1 for d in params[name]):
                raise ctx.fail(f"reduce_window with {name}={tuple(params[name])}")
        return [ctx.add("reduce_window", x, kind=kind,
                        window=tuple(int(d) for d in params["window_dimensions"]),
                        strides=tuple(int(d) for d in params["window_strides"]),
                        padding=tuple((int(lo), int(hi)) for lo, hi in params["padding"]))]

    return rule


RULES: dict[str, Rule] = {
    "dot_general": _dot_general,
    "conv_general_dilated": _conv_general_dilated,
    "reduce_window_sum": _reduce_window("sum"),
    "reduce_window_max": _reduce_window("max"),
    "reduce_window_min": _reduce_window("min"),
}

# What a rule does not cover (docs/coverage.md shows these as "supported with limits").
LIMITS = {
    "conv_general_dilated": "batch_group_count 1",
    **dict.fromkeys(("reduce_window_sum", "reduce_window_max", "reduce_window_min"),
                    "no base or window dilation"),
}
