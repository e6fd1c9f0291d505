"""The quantize= modes of build(), cerebro.compile, compile_onnx and `cerebroc compile --quantize` (kept
apart from the passes so the CLI can list them without importing the compiler)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from cerebro.compiler.ir import IRError

STATIC = "int8"  # passes/int8_static.py: needs calibration inputs, rewrites the graph before build()
QUANTIZE_MODES = ("int8-weights", STATIC)  # int8-weights: passes/int8_weights.py, inside build()
# How int8 picks each activation's range (passes/int8_calibrate.py); the first is the default: clipping
# outliers (percentile, mse) cost MiniLM cosine (docs/architecture.md, Quantization).
CALIBRATION_METHODS = ("minmax", "percentile", "mse")


def check_quantize(mode: str | None, calibration: object = None, method: str | None = None) -> None:
    """A one-line error for an unknown quantize= mode or calibration method, int8 without calibration
    inputs, or calibration inputs or a method for a mode that reads none."""
    if mode is not None and mode not in QUANTIZE_MODES:
        raise IRError(f"unknown quantize mode {mode!r}: expected one of {', '.join(QUANTIZE_MODES)}")
    if mode == STATIC and calibration is None:
        raise IRError(f'quantize="{STATIC}" needs calibration inputs (calibration=[x1, ...] or a .npz file; '
                      "cerebroc: --calibration FILE.npz)")
    if mode != STATIC and calibration is not None:
        raise IRError(f'calibration inputs are read by quantize="{STATIC}" only, not {mode!r}')
    if method is not None and (mode != STATIC or method not in CALIBRATION_METHODS):
        raise IRError(f"calibration method {method!r}: expected one of {', '.join(CALIBRATION_METHODS)}, "
                      f'with quantize="{STATIC}"')


def calibration_digest(calibration: object) -> str:
    """sha256 of the calibration inputs (a .npz file's bytes, or every array's type, shape and bytes)."""
    digest = hashlib.sha256()
    if isinstance(calibration, (str, os.PathLike)):
        digest.update(Path(calibration).read_bytes())
        return digest.hexdigest()
    for entry in calibration:
        for array in entry if isinstance(entry, (list, tuple)) else [entry]:
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()
