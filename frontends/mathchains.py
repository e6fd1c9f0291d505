"""Elementwise IR chains for functions the IR has no op for, shared by the JAX and ONNX rules (any Builder)."""

from __future__ import annotations

import math

import numpy as np

from cerebro.compiler.ir import Value
from cerebro.compiler.ir.builder import Builder


def _k(b: Builder, value: float, like: Value) -> Value:
    return b.const(np.array(value, like.dtype.numpy), like.dtype)


def atan(b: Builder, x: Value) -> Value:
    """Cephes atanf: reduce |x| into [0, tan(pi/8)] and evaluate a degree-9 odd polynomial."""
    ax = b.add("abs", x)
    big = b.elementwise("gt", ax, _k(b, 2.414213562373095, x))
    mid = b.elementwise("gt", ax, _k(b, 0.4142135623730950, x))
    safe = b.elementwise("max", ax, _k(b, 1e-30, x))
    one = _k(b, 1, x)
    reduced = b.elementwise("select", big, b.add("neg", b.add("reciprocal", safe)), b.elementwise(
        "select", mid, b.elementwise("div", b.elementwise("sub", ax, one), b.elementwise("add", ax, one)), ax))
    offset = b.elementwise("select", big, _k(b, math.pi / 2, x),
                           b.elementwise("select", mid, _k(b, math.pi / 4, x), _k(b, 0, x)))
    z = b.elementwise("mul", reduced, reduced)
    poly = _k(b, 8.05374449538e-2, x)
    for c in (-1.38776856032e-1, 1.99777106478e-1, -3.33329491539e-1):
        poly = b.elementwise("add", b.elementwise("mul", poly, z), _k(b, c, x))
    y = b.elementwise("add", b.elementwise("mul", b.elementwise("mul", poly, z), reduced), reduced)
    y = b.elementwise("add", y, offset)
    return b.elementwise("mul", b.add("sign", x), y)
