"""Recurrent layers (RNN, GRU, LSTM), unrolled over the static sequence length.

The input projection of every time step is one matmul up front; each step then
adds its recurrent matmul and applies the gate activations.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cerebro.compiler.ir import Value
from cerebro.frontends.onnx import build as b
from cerebro.frontends.onnx.table import Ctx, rule

Activation = Callable[[Ctx, Value, float | None, float | None], Value]


def _k(ctx: Ctx, x: Value, v: float) -> Value:
    return b.scalar(ctx, v, x)


def _clamp(ctx: Ctx, x: Value, lo: float, hi: float) -> Value:
    return b.binary(ctx, "min", b.binary(ctx, "max", x, _k(ctx, x, lo)), _k(ctx, x, hi))


ACTIVATIONS: dict[str, Activation] = {
    "tanh": lambda ctx, x, a, c: ctx.add("tanh", x),
    "sigmoid": lambda ctx, x, a, c: ctx.add("logistic", x),
    "relu": lambda ctx, x, a, c: b.binary(ctx, "max", x, _k(ctx, x, 0)),
    "affine": lambda ctx, x, a, c: b.add(ctx, b.mul(ctx, x, _k(ctx, x, a)), _k(ctx, x, c)),
    "leakyrelu": lambda ctx, x, a, c: b.select(ctx, b.binary(ctx, "lt", x, _k(ctx, x, 0)),
                                               b.mul(ctx, x, _k(ctx, x, a if a is not None else 0.01)), x),
    "thresholdedrelu": lambda ctx, x, a, c: b.select(
        ctx, b.binary(ctx, "gt", x, _k(ctx, x, a if a is not None else 1.0)), x, _k(ctx, x, 0)),
    "scaledtanh": lambda ctx, x, a, c: b.mul(ctx, ctx.add("tanh", b.mul(ctx, x, _k(ctx, x, c))), _k(ctx, x, a)),
    "hardsigmoid": lambda ctx, x, a, c: _clamp(ctx, b.add(ctx, b.mul(ctx, x, _k(ctx, x, a if a is not None else 0.2)),
                                                          _k(ctx, x, c if c is not None else 0.5)), 0, 1),
    "elu": lambda ctx, x, a, c: b.select(ctx, b.binary(ctx, "lt", x, _k(ctx, x, 0)),
                                         b.mul(ctx, ctx.add("expm1", x), _k(ctx, x, a if a is not None else 1.0)), x),
    "softsign": lambda ctx, x, a, c: b.div(ctx, x, b.add(ctx, ctx.add("abs", x), _k(ctx, x, 1))),
    "softplus": lambda ctx, x, a, c: ctx.add("log1p", ctx.add("exp", x)),
}
DEFAULTS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _activations(ctx: Ctx, directions: int) -> list[list[Callable[[Value], Value]]]:
    names = ctx.attr("activations") or DEFAULTS[ctx.op_type] * directions
    alphas = list(ctx.attr("activation_alpha") or [])
    betas = list(ctx.attr("activation_beta") or [])
    fns = []
    for i, name in enumerate(names):
        if name.lower() not in ACTIVATIONS:
            raise ctx.error(f"activation {name!r} is not supported")
        a = alphas[i] if i < len(alphas) else None
        c = betas[i] if i < len(betas) else None
        fn = ACTIVATIONS[name.lower()]
        fns.append(lambda x, f=fn, a=a, c=c: f(ctx, x, a, c))
    per = len(DEFAULTS[ctx.op_type])
    return [fns[d * per:(d + 1) * per] for d in range(directions)]


def _gate(ctx: Ctx, x: Value, i: int, hidden: int) -> Value:
    return b.slice_axis(ctx, x, x.rank - 1, i * hidden, (i + 1) * hidden)


def _recurrent(ctx: Ctx, x: Value, w: Value, r: Value, bias: Value | None, seq_lens: Value | None,
               h0: Value | None, c0: Value | None = None, peep: Value | None = None) -> list[Value]:
    op = ctx.op_type
    if seq_lens is not None:
        lens = b.ints(ctx, seq_lens, "sequence_lens")
        if any(n != x.shape[ctx.attr("layout", 0)] for n in lens):
            raise ctx.error("sequence_lens shorter than the sequence are not supported")
    layout = ctx.attr("layout", 0)
    if layout:
        x = b.transpose(ctx, x, (1, 0, 2))
        h0 = b.transpose(ctx, h0, (1, 0, 2)) if h0 is not None else None
        c0 = b.transpose(ctx, c0, (1, 0, 2)) if c0 is not None else None
    steps, batch, _ = x.shape
    hidden = ctx.attr("hidden_size") or r.shape[-1]
    direction = ctx.attr("direction", "forward")
    dirs = 2 if direction == "bidirectional" else 1
    acts = _activations(ctx, dirs)
    clip = ctx.attr("clip")
    g = GATES[op]
    ys, hs, cs = [], [], []
    flat_x = b.reshape(ctx, x, (steps * batch, x.shape[2]))
    for d in range(dirs):
        wd = b.reshape(ctx, b.slice_axis(ctx, w, 0, d, d + 1), w.shape[1:])
        rd = b.reshape(ctx, b.slice_axis(ctx, r, 0, d, d + 1), r.shape[1:])
        proj = ctx.add("matmul", flat_x, b.transpose(ctx, wd, (1, 0)))
        rb = None
        if bias is not None:
            bd = b.reshape(ctx, b.slice_axis(ctx, bias, 0, d, d + 1), (2 * g * hidden,))
            wb, rb = b.slice_axis(ctx, bd, 0, 0, g * hidden), b.slice_axis(ctx, bd, 0, g * hidden, 2 * g * hidden)
            proj = b.add(ctx, proj, wb if op == "GRU" else b.add(ctx, wb, rb))
        proj = b.reshape(ctx, proj, (steps, batch, g * hidden))
        rt = b.transpose(ctx, rd, (1, 0))
        zeros = ctx.const(np.zeros((batch, hidden), x.dtype.numpy), x.dtype)
        h = b.reshape(ctx, b.slice_axis(ctx, h0, 0, d, d + 1), (batch, hidden)) if h0 is not None else zeros
        c = b.reshape(ctx, b.slice_axis(ctx, c0, 0, d, d + 1), (batch, hidden)) if c0 is not None else zeros
        pd = b.reshape(ctx, b.slice_axis(ctx, peep, 0, d, d + 1), (3 * hidden,)) if peep is not None else None
        reverse = direction == "reverse" or d == 1
        outs = [None] * steps
        for t in (reversed(range(steps)) if reverse else range(steps)):
            xt = b.reshape(ctx, b.slice_axis(ctx, proj, 0, t, t + 1), (batch, g * hidden))
            step = STEPS[op]
            h, c = step(ctx, xt, h, c, rt, rb, pd, hidden, acts[d], clip)
            outs[t] = h
        ys.append(ctx.add("concatenate", *[b.reshape(ctx, o, (1, 1, batch, hidden)) for o in outs], axis=0)
                  if steps > 1 else b.reshape(ctx, outs[0], (1, 1, batch, hidden)))
        hs.append(b.reshape(ctx, h, (1, batch, hidden)))
        cs.append(b.reshape(ctx, c, (1, batch, hidden)))
    y = ys[0] if dirs == 1 else ctx.add("concatenate", *ys, axis=1)
    yh = hs[0] if dirs == 1 else ctx.add("concatenate", *hs, axis=0)
    yc = cs[0] if dirs == 1 else ctx.add("concatenate", *cs, axis=0)
    if layout:
        y, yh, yc = b.transpose(ctx, y, (2, 0, 1, 3)), b.transpose(ctx, yh, (1, 0, 2)), b.transpose(ctx, yc, (1, 0, 2))
    return [y, yh, yc]


def _clip(ctx: Ctx, x: Value, clip: float | None) -> Value:
    return _clamp(ctx, x, -clip, clip) if clip is not None else x


def _rnn_step(ctx, xt, h, c, rt, rb, peep, hidden, acts, clip):
    pre = b.add(ctx, xt, ctx.add("matmul", h, rt))
    return acts[0](_clip(ctx, pre, clip)), c


def _gru_step(ctx, xt, h, c, rt, rb, peep, hidden, acts, clip):
    f, g = acts
    hr = ctx.add("matmul", h, rt)
    if rb is not None:
        hr = b.add(ctx, hr, rb)
    z = f(_clip(ctx, b.add(ctx, _gate(ctx, xt, 0, hidden), _gate(ctx, hr, 0, hidden)), clip))
    r = f(_clip(ctx, b.add(ctx, _gate(ctx, xt, 1, hidden), _gate(ctx, hr, 1, hidden)), clip))
    if ctx.attr("linear_before_reset", 0):
        cand = b.add(ctx, _gate(ctx, xt, 2, hidden), ctx.add("mul", r, _gate(ctx, hr, 2, hidden)))
    else:
        rh = ctx.add("matmul", ctx.add("mul", r, h), _gate(ctx, rt, 2, hidden))
        if rb is not None:
            rh = b.add(ctx, rh, _gate(ctx, rb, 2, hidden))
        cand = b.add(ctx, _gate(ctx, xt, 2, hidden), rh)
    cand = g(_clip(ctx, cand, clip))
    one = _k(ctx, z, 1)
    return b.add(ctx, ctx.add("mul", b.sub(ctx, one, z), cand), ctx.add("mul", z, h)), c


def _lstm_step(ctx, xt, h, c, rt, rb, peep, hidden, acts, clip):
    f, g, hact = acts
    pre = b.add(ctx, xt, ctx.add("matmul", h, rt))
    gates = [_gate(ctx, pre, i, hidden) for i in range(4)]  # i, o, f, c
    if peep is not None:
        pi, po, pf = (b.slice_axis(ctx, peep, 0, k * hidden, (k + 1) * hidden) for k in range(3))
        gates[0] = b.add(ctx, gates[0], b.mul(ctx, c, pi))
        gates[2] = b.add(ctx, gates[2], b.mul(ctx, c, pf))
    i = f(_clip(ctx, gates[0], clip))
    forget = f(_clip(ctx, gates[2], clip))
    if ctx.attr("input_forget", 0):
        forget = b.sub(ctx, _k(ctx, i, 1), i)
    cand = g(_clip(ctx, gates[3], clip))
    c_new = b.add(ctx, ctx.add("mul", forget, c), ctx.add("mul", i, cand))
    o_pre = gates[1] if peep is None else b.add(ctx, gates[1], b.mul(ctx, c_new, po))
    o = f(_clip(ctx, o_pre, clip))
    return ctx.add("mul", o, hact(c_new)), c_new


STEPS = {"RNN": _rnn_step, "GRU": _gru_step, "LSTM": _lstm_step}


@rule("RNN", "GRU", since=7)
def rnn(ctx: Ctx, x: Value, w: Value, r: Value, bias: Value | None = None, seq_lens: Value | None = None,
        h0: Value | None = None) -> list[Value]:
    return _recurrent(ctx, x, w, r, bias, seq_lens, h0)[:2]


@rule("LSTM", since=7)
def lstm(ctx: Ctx, x: Value, w: Value, r: Value, bias: Value | None = None, seq_lens: Value | None = None,
         h0: Value | None = None, c0: Value | None = None, peep: Value | None = None) -> list[Value]:
    return _recurrent(ctx, x, w, r, bias, seq_lens, h0, c0, peep)


# What a rule does not cover (docs/coverage.md shows these as "supported with limits").
LIMITS = {
    "RNN": "sequence_lens equal to the sequence length",
    "GRU": "sequence_lens equal to the sequence length",
    "LSTM": "sequence_lens equal to the sequence length",
}
