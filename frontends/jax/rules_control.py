"""Lowering of structured control flow: scan is unrolled, cond computes every branch and selects.

Both are exact: jaxpr bodies have no side effects, so evaluating an untaken
branch changes nothing but the work done.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cerebro.compiler.ir import Value
from cerebro.frontends.jax.context import Context

Rule = Callable[..., list[Value]]

# Unrolling copies the body once per step; longer loops would make graphs too large.
MAX_UNROLL = 256


def _step(ctx: Context, x: Value, i: int) -> Value:
    start, limit = [0] * x.rank, list(x.shape)
    start[0], limit[0] = i, i + 1
    row = ctx.add("slice", x, start=tuple(start), limit=tuple(limit), strides=(1,) * x.rank)
    return ctx.reshape(row, x.shape[1:])


def _stack(ctx: Context, rows: list[Value]) -> Value:
    parts = [ctx.reshape(r, (1,) + r.shape) for r in rows]
    return parts[0] if len(parts) == 1 else ctx.add("concatenate", *parts, axis=0)


def _scan(ctx: Context, eqn, *args: Value) -> list[Value]:
    params = eqn.params
    length, num_consts, num_carry = int(params["length"]), int(params["num_consts"]), int(params["num_carry"])
    if not 0 < length <= MAX_UNROLL:
        raise ctx.fail(f"scan of length {length} (unrolled; 1..{MAX_UNROLL} steps are supported)")
    body = params["jaxpr"]
    consts, carry = list(args[:num_consts]), list(args[num_consts:num_consts + num_carry])
    xs = args[num_consts + num_carry:]
    steps: dict[int, list[Value]] = {}
    for i in (reversed(range(length)) if params["reverse"] else range(length)):
        outs = ctx.inline(body.jaxpr, list(body.consts), consts + carry + [_step(ctx, x, i) for x in xs])
        carry, steps[i] = list(outs[:num_carry]), list(outs[num_carry:])
    ys = [_stack(ctx, [steps[i][j] for i in range(length)]) for j in range(len(steps[0]))]
    return carry + ys


def _cond(ctx: Context, eqn, index: Value, *operands: Value) -> list[Value]:
    """lax.cond / lax.switch: index is clamped into range, as XLA does."""
    branches = eqn.params["branches"]
    if index.is_const:
        chosen = branches[min(max(int(ctx.scalar(index, "the branch index")), 0), len(branches) - 1)]
        return ctx.inline(chosen.jaxpr, list(chosen.consts), list(operands))
    results = [ctx.inline(b.jaxpr, list(b.consts), list(operands)) for b in branches]
    index = ctx.convert(index, ctx.dtype(np.int32))
    chosen = results[0]
    for k in range(1, len(branches)):
        take_k = ctx.elementwise("ge", index, ctx.const(np.array(k), index.dtype))
        chosen = [ctx.elementwise("select", take_k, new, old) for new, old in zip(results[k], chosen)]
    return chosen


RULES: dict[str, Rule] = {
    "scan": _scan,
    "cond": _cond,
}

# What a rule does not cover (docs/coverage.md shows these as "supported with limits").
LIMITS = {
    "scan": f"unrolled: 1..{MAX_UNROLL} steps",
}
