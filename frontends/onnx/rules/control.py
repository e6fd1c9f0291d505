"""Control flow, unrolled: shapes are static, so If picks a branch and Scan/Loop unroll."""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import Value
from cerebro.frontends.onnx import build as b
from cerebro.frontends.onnx.table import Ctx, DynamicShapeError, OnnxImportError, rule


def _body(ctx: Ctx, graph: object, bindings: dict[str, Value]) -> list[Value]:
    return ctx.importer.run_subgraph(graph, ctx.extras["env"], bindings, ctx.extras["opsets"],
                                     ctx.extras["fn_attrs"])


@rule("If")
def if_(ctx: Ctx, cond: Value) -> list[Value]:
    """A constant condition imports one branch; a runtime one computes both and selects,
    which needs both branches to compile with the same shapes (they are pure, so this is exact).
    When they do not (silero-vad's 8 kHz branch for a 16 kHz-sized input), the error names the
    inputs the condition depends on, so fixing them (constants=) picks one branch."""
    if cond.is_const:
        branch = ctx.attr("then_branch") if bool(cond.data.reshape(-1)[0]) else ctx.attr("else_branch")
        return _body(ctx, branch, {})
    then, other = _runtime_branch(ctx, "then_branch", cond), _runtime_branch(ctx, "else_branch", cond)
    flag = b.reshape(ctx, cond, ())
    outs = []
    for a, c in zip(then, other):
        if a.shape != c.shape or a.dtype is not c.dtype:
            raise DynamicShapeError(f"{ctx.loc}: its branches produce different shapes {a.shape} and {c.shape}, "
                                    "and the condition is computed from runtime values", cond)
        outs.append(b.select(ctx, b.expand(ctx, flag, a.shape), a, c))
    return outs


def _runtime_branch(ctx: Ctx, which: str, cond: Value) -> list[Value]:
    try:
        return _body(ctx, ctx.attr(which), {})
    except DynamicShapeError:
        raise  # already names the inputs to fix
    except OnnxImportError as e:
        raise DynamicShapeError(f"{ctx.loc}: its {which} cannot be compiled ({e}), and the condition "
                                "choosing it is computed from runtime values", cond) from e


@rule("Loop")
def loop(ctx: Ctx, trip: Value | None, cond: Value | None, *carried: Value) -> list[Value]:
    """Unrolled: the trip count must be a constant and the condition must fold to a constant each step."""
    body = ctx.attr("body")
    count = b.ints(ctx, trip, "Loop's trip count")[0] if trip is not None else None
    keep_going = True if cond is None else bool(b.ints(ctx, cond, "Loop's condition")[0])
    names = [i.name for i in body.input]
    n_carried = len(carried)
    state = list(carried)
    scans: list[list[Value]] = []
    i = 0
    while keep_going and (count is None or i < count):
        if i >= 10_000:
            raise ctx.error("Loop runs more than 10000 iterations; unrolling it is not sensible")
        results = _body(ctx, body, dict(zip(names, [ctx.const(np.array(i, np.int64)),
                                                    ctx.const(np.array(True))] + state)))
        keep_going = bool(b.ints(ctx, results[0], "Loop's condition")[0])
        state = results[1:1 + n_carried]
        for k, y in enumerate(results[1 + n_carried:]):
            if len(scans) <= k:
                scans.append([])
            scans[k].append(b.reshape(ctx, y, (1,) + y.shape))
        i += 1
    n_scan = len(body.output) - 1 - n_carried
    if any(not parts for parts in scans) or len(scans) < n_scan:
        raise ctx.error("Loop with zero iterations and scan outputs is not supported")
    return state + [parts[0] if len(parts) == 1 else ctx.add("concatenate", *parts, axis=0) for parts in scans]


@rule("Scan", since=8)
def scan_batched(ctx: Ctx, seq_lens: Value | None, *inputs: Value) -> list[Value]:
    """Opset 8: every input has a leading batch axis; run the opset-9 scan per batch entry."""
    if seq_lens is not None:
        raise ctx.error("Scan's sequence_lens is not supported")
    per_batch = []
    for i in range(inputs[0].shape[0]):
        rows = [b.reshape(ctx, b.slice_axis(ctx, v, 0, i, i + 1), v.shape[1:]) for v in inputs]
        per_batch.append(scan(ctx, *rows))
    return [ctx.add("concatenate", *[b.reshape(ctx, r[k], (1,) + r[k].shape) for r in per_batch], axis=0)
            if len(per_batch) > 1 else b.reshape(ctx, per_batch[0][k], (1,) + per_batch[0][k].shape)
            for k in range(len(per_batch[0]))]


@rule("Scan", since=9)
def scan(ctx: Ctx, *inputs: Value) -> list[Value]:
    body = ctx.attr("body")
    n_scan = ctx.attr("num_scan_inputs")
    n_state = len(inputs) - n_scan
    states, scans = list(inputs[:n_state]), inputs[n_state:]
    in_axes = ctx.attr("scan_input_axes") or [0] * n_scan
    in_dirs = ctx.attr("scan_input_directions") or [0] * n_scan
    n_out = len(body.output) - n_state
    out_axes = ctx.attr("scan_output_axes") or [0] * n_out
    out_dirs = ctx.attr("scan_output_directions") or [0] * n_out
    in_axes = [b.axis(ctx, a, s.rank) for a, s in zip(in_axes, scans)]
    steps = scans[0].shape[in_axes[0]] if scans else 0
    collected: list[list[Value]] = [[] for _ in range(n_out)]
    names = [i.name for i in body.input]
    for t in range(steps):
        slices = []
        for x, ax, rev in zip(scans, in_axes, in_dirs):
            i = steps - 1 - t if rev else t
            part = b.slice_axis(ctx, x, ax, i, i + 1)
            slices.append(b.reshape(ctx, part, x.shape[:ax] + x.shape[ax + 1:]))
        results = _body(ctx, body, dict(zip(names, states + slices)))
        states = results[:n_state]
        for k, y in enumerate(results[n_state:]):
            collected[k].append(y)
    outs = []
    for k, ys in enumerate(collected):
        if out_dirs[k]:
            ys = ys[::-1]
        ax = b.axis(ctx, out_axes[k], ys[0].rank + 1)
        parts = [b.reshape(ctx, y, y.shape[:ax] + (1,) + y.shape[ax:]) for y in ys]
        outs.append(parts[0] if len(parts) == 1 else ctx.add("concatenate", *parts, axis=ax))
    return states + outs


# What a rule does not cover (docs/coverage.md shows these as "supported with limits").
LIMITS = {
    "Loop": "unrolled: at most 10000 iterations, known when compiling",
    "Scan": "no sequence_lens",
}
