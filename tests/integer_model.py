"""An integer-only model (int8 in, int8 and int32 out) and its numpy reference in int64.

Two int8 layers as a TFLite/gemmlowp-style model runs them: matmul_integer (int32 accumulation, zero
points), a bias, fixed-point requantization (multiply, add half a step, arithmetic shift right, clamp,
cast to int8) and a ReLU; the second layer takes its weights as [N, K] (the dot-product form). Every
value is an integer, so it compiles for the fpu "none" targets (x86_64-gpr, aarch64-gpr). Shared by
tests/test_integer_only.py and the kernel VM test (tests/kernel/conftest.py).
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import Graph
from cerebro.compiler.ir.dtypes import DType

ROWS, DEPTH, HIDDEN, CLASSES = 3, 70, 24, 10
# (multiplier, shift) of each requantization: acc * m, rounded, >> shift; |acc| < 70 * 255 * 255 keeps acc * m
# inside int32 for m < 2^7 (the reference checks it)
REQUANT = ((93, 15), (117, 14))


def parameters(seed: int = 11) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"w1": rng.integers(-128, 128, (DEPTH, HIDDEN), dtype=np.int8),
            "w1_zero": rng.integers(-5, 6, HIDDEN, dtype=np.int8),
            "b1": rng.integers(-3000, 3000, HIDDEN, dtype=np.int32),
            "w2t": rng.integers(-128, 128, (CLASSES, HIDDEN), dtype=np.int8),
            "w2_zero": rng.integers(-5, 6, CLASSES, dtype=np.int8),
            "x_zero": np.full(ROWS, -3, np.int8), "h_zero": np.zeros(ROWS, np.int8)}


def graph(params: dict[str, np.ndarray] | None = None) -> Graph:
    """x: int8[ROWS, DEPTH] -> (int8 logits[ROWS, CLASSES], int32 accumulators[ROWS, CLASSES])."""
    p = params or parameters()
    g = Graph("int8_mlp")
    x = g.add_input((ROWS, DEPTH), DType.i8, "x")
    acc1 = g.add1("matmul_integer", x, g.const(p["w1"]), g.const(p["x_zero"]), g.const(p["w1_zero"]), loc="layer1")
    hidden = _requantize(g, g.add1("add", acc1, g.const(p["b1"][None, :]), loc="layer1"), *REQUANT[0], relu=True)
    acc2 = g.add1("matmul_integer", hidden, g.const(p["w2t"]), g.const(p["h_zero"]), g.const(p["w2_zero"]),
                  loc="layer2", transpose_b=True)
    g.set_outputs([_requantize(g, acc2, *REQUANT[1]), acc2], ["logits", "acc"])
    return g


def _requantize(g: Graph, acc, multiplier: int, shift: int, relu: bool = False):
    def scalar(value: int):
        return g.const(np.full((1, 1), value, np.int32))

    scaled = g.add1("mul", acc, scalar(multiplier), loc="requantize")
    rounded = g.add1("shift_right_arithmetic", g.add1("add", scaled, scalar(1 << (shift - 1)), loc="requantize"),
                     scalar(shift), loc="requantize")
    clamped = g.add1("min", g.add1("max", rounded, scalar(0 if relu else -128), loc="requantize"), scalar(127),
                     loc="requantize")
    return g.add1("convert", clamped, dtype=DType.i8, loc="requantize")


def reference(x: np.ndarray, params: dict[str, np.ndarray] | None = None) -> list[np.ndarray]:
    """The model in numpy int64, each intermediate checked to fit the int32 the code computes in."""
    p = {k: v.astype(np.int64) for k, v in (params or parameters()).items()}
    acc1 = (x.astype(np.int64) - p["x_zero"][:, None]) @ (p["w1"] - p["w1_zero"][None, :]) + p["b1"]
    hidden = _requantize_ref(acc1, *REQUANT[0], low=0)
    acc2 = (hidden - p["h_zero"][:, None]) @ (p["w2t"] - p["w2_zero"][:, None]).T
    return [_requantize_ref(acc2, *REQUANT[1]).astype(np.int8), acc2.astype(np.int32)]


def _requantize_ref(acc: np.ndarray, multiplier: int, shift: int, low: int = -128) -> np.ndarray:
    scaled = acc * multiplier + (1 << (shift - 1))
    assert np.abs(scaled).max() < 2**31, "the model's int32 arithmetic would overflow"
    return np.clip(scaled >> shift, low, 127)


def inputs(seed: int = 3) -> list[np.ndarray]:
    return [np.random.default_rng(seed).integers(-128, 128, (ROWS, DEPTH), dtype=np.int8)]
