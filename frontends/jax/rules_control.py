"""Lowering of structured control flow: scan and while_loop become one IR `loop` (compiler/ir/loop.py),
compiled as a loop whatever the trip count; cond computes every branch and selects.

Both are exact: jaxpr bodies have no side effects, so evaluating an untaken
branch changes nothing but the work done.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cerebro.compiler.ir import Graph, Value, verify
from cerebro.frontends.jax.context import Context

Rule = Callable[..., list[Value]]


def _subgraph(ctx: Context, name: str, closed, params: list[Value], skip: slice = slice(0, 0)) -> Graph:
    """A nested jaxpr as a graph of its own taking values shaped as params (named by position; those in
    `skip` are inputs the jaxpr does not read), lowered by the same rules; its equations keep their own
    source locations."""
    graph = Graph(name)
    args = [graph.add_input(v.shape, v.dtype, f"{name}{i}") for i, v in enumerate(params)]
    del args[skip]
    child = Context(graph, ctx._lower)
    child.loc, child.primitive = ctx.loc, ctx.primitive
    graph.set_outputs(child.inline(closed.jaxpr, list(closed.consts), args))
    verify(graph)
    return graph


def _scan(ctx: Context, eqn, *args: Value) -> list[Value]:
    params = eqn.params
    num_consts, num_carry = int(params["num_consts"]), int(params["num_carry"])
    state, xs = list(args[:num_consts + num_carry]), args[num_consts + num_carry:]
    rows = [Value(x.shape[1:], x.dtype) for x in xs]
    body = _subgraph(ctx, "step", params["jaxpr"], state + rows)
    return ctx.graph.add("loop", list(args), ctx.loc, body=body, num_consts=num_consts, num_carry=num_carry,
                         length=int(params["length"]), cond=None, reverse=bool(params["reverse"]))


def _while(ctx: Context, eqn, *args: Value) -> list[Value]:
    """lax.while_loop (and fori_loop with traced bounds): operands are the condition's consts, the body's
    consts, then the carries; the IR gives both graphs every const."""
    params = eqn.params
    cond_n, body_n = int(params["cond_nconsts"]), int(params["body_nconsts"])
    consts, carries = list(args[:cond_n + body_n]), list(args[cond_n + body_n:])
    cond = _subgraph(ctx, "cond", params["cond_jaxpr"], consts + carries, slice(cond_n, cond_n + body_n))
    body = _subgraph(ctx, "step", params["body_jaxpr"], consts + carries, slice(0, cond_n))
    return ctx.graph.add("loop", consts + carries, ctx.loc, body=body, cond=cond, length=None,
                         num_consts=len(consts), num_carry=len(carries))


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
    "while": _while,
    "cond": _cond,
}

# What a rule does not cover (docs/coverage.md shows these as "supported with limits").
LIMITS: dict[str, str] = {}
