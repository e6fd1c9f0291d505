"""The numbers of quantize="int8" (passes/int8_static.py): activation scales and zero points from a
calibrated range, and the fixed-point form of a real requantization multiplier.

Activations are u8, asymmetric, per tensor, as onnxruntime's quantize_static (MinMax) makes them: the
range widened to hold 0, scale = (hi - lo) / 255, zero point round(-lo / scale), so 0.0 is exact.

Requantization is TFLite's MultiplyByQuantizedMultiplier in its single-rounding form: a real multiplier
r = mantissa * 2^exponent (mantissa in [0.5, 1)) is stored as the i32 M = round(mantissa * 2^31) and a
right shift s = 31 - exponent, and acc * r becomes (acc * M + 2^(s-1)) >> s in i64 (the product fits:
|acc| < 2^31, M < 2^31), which rounds halves up (toward +infinity).
"""

from __future__ import annotations

import math

import numpy as np

U8 = (0, 255)
MAX_SHIFT = 62  # the rounding term 2^(s-1) and the product both stay inside i64


def activation_params(low: float, high: float) -> tuple[np.float32, int]:
    """(f32 scale, u8 zero point) for values seen in [low, high]."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    scale = np.float32((high - low) / 255) if high > low else np.float32(1)
    zero = int(np.clip(np.rint(-low / float(scale)), *U8))
    return scale, zero


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(M, s) with real ~ M * 2^-s, M in [2^30, 2^31) or 0; a multiplier too small for a 62-bit shift
    (or 0) is (0, 1): every product then requantizes to the zero point."""
    if real <= 0:
        return 0, 1
    mantissa, exponent = math.frexp(real)
    multiplier = round(mantissa * (1 << 31))
    if multiplier == 1 << 31:
        multiplier, exponent = multiplier // 2, exponent + 1
    shift = 31 - exponent
    if shift > MAX_SHIFT:
        return 0, 1
    if shift < 1:
        raise ValueError(f"requantization multiplier {real:g} is too large for a fixed-point shift")
    return multiplier, shift
