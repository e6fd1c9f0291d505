"""Einsum with one or two operands, lowered to reductions, transposes and one batched matmul."""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import Value
from cerebro.frontends.onnx import build as b
from cerebro.frontends.onnx.table import Ctx, rule

ELLIPSIS_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _parse(ctx: Ctx, equation: str, operands: tuple[Value, ...]) -> tuple[list[str], str]:
    """Terms with '...' spelled out as capital letters (right-aligned, as numpy broadcasts)
    and the output term (the implicit form resolved)."""
    equation = equation.replace(" ", "")
    lhs, arrow, out = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ctx.error(f"equation {equation!r} has {len(terms)} operands, got {len(operands)}")
    spans = [x.rank - (len(t) - 3) if "..." in t else 0 for t, x in zip(terms, operands)]
    widest = max(spans)
    spelled = [t.replace("...", ELLIPSIS_LETTERS[widest - n:widest]) for t, n in zip(terms, spans)]
    for term, x in zip(spelled, operands):
        if len(term) != x.rank:
            raise ctx.error(f"term {term!r} does not match operand rank {x.rank}")
        if len(set(term)) != len(term):
            raise ctx.error(f"repeated index in {term!r} (diagonals) is not supported")
    if arrow:
        return spelled, out.replace("...", ELLIPSIS_LETTERS[:widest])
    joined = "".join(spelled)
    return spelled, ELLIPSIS_LETTERS[:widest] + "".join(sorted(c for c in set(joined)
                                                             if joined.count(c) == 1 and c.islower()))


def _sum_out(ctx: Ctx, x: Value, term: str, keep: set[str]) -> tuple[Value, str]:
    dims = [i for i, c in enumerate(term) if c not in keep]
    if not dims:
        return x, term
    return b.reduce(ctx, "reduce_sum", x, dims, False), "".join(c for c in term if c in keep)


@rule("Einsum", since=12)
def einsum(ctx: Ctx, *operands: Value) -> Value:
    terms, out = _parse(ctx, ctx.attr("equation"), operands)
    if len(operands) == 1:
        x, term = _sum_out(ctx, operands[0], terms[0], set(out))
        return b.transpose(ctx, x, tuple(term.index(c) for c in out))
    if len(operands) != 2:
        raise ctx.error("Einsum with more than two operands is not supported")
    (a, ta), (c, tc) = (_sum_out(ctx, operands[0], terms[0], set(out) | set(terms[1])),
                        _sum_out(ctx, operands[1], terms[1], set(out) | set(terms[0])))
    sizes = {}
    for x, term in ((a, ta), (c, tc)):
        for ch, d in zip(term, x.shape):
            if d != 1 or ch not in sizes:
                sizes[ch] = d
    batch = [ch for ch in out if ch in ta and ch in tc]
    m = [ch for ch in out if ch in ta and ch not in tc]
    n = [ch for ch in out if ch in tc and ch not in ta]
    k = [ch for ch in ta if ch in tc and ch not in out]

    def arrange(x: Value, term: str, order: list[str], rows: list[str], cols: list[str]) -> Value:
        x = b.transpose(ctx, x, tuple(term.index(ch) for ch in order))
        x = b.expand(ctx, x, tuple(sizes[ch] for ch in order))
        size = lambda group: int(np.prod([sizes[ch] for ch in group]))  # noqa: E731
        return b.reshape(ctx, x, (size(batch), size(rows), size(cols)))

    left = arrange(a, ta, batch + m + k, m, k)
    right = arrange(c, tc, batch + k + n, k, n)
    y = ctx.add("matmul", left, right)
    order = batch + m + n
    y = b.reshape(ctx, y, tuple(sizes[ch] for ch in order))
    return b.transpose(ctx, y, tuple(order.index(ch) for ch in out))


# What a rule does not cover (docs/coverage.md shows these as "supported with limits").
LIMITS = {
    "Einsum": "at most two operands, no repeated index in a term",
}
