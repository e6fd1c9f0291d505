"""ai.onnx.ml (classical ML) ops that are elementwise arithmetic. The tree ensembles are in trees.py; label
encoders and the rest of the domain need strings or maps and have no rule."""

from __future__ import annotations

import math

from cerebro.compiler.ir import Value
from cerebro.frontends.onnx import build as b
from cerebro.frontends.onnx.table import Ctx, rule

ML = "ai.onnx.ml"


@rule("Binarizer", domain=ML)
def binarizer(ctx: Ctx, x: Value) -> Value:
    """x > threshold ? 1 : 0 in x's type; for integers x > t is x > floor(t), so the threshold need not fit."""
    threshold = float(ctx.attr("threshold", 0.0))
    if x.dtype.numpy.kind in "iu":
        threshold = math.floor(threshold)
    above = b.binary(ctx, "gt", x, b.scalar(ctx, threshold, x))
    return b.select(ctx, above, b.scalar(ctx, 1, x), b.scalar(ctx, 0, x))
