"""The quantize= modes of build(), cerebro.compile, compile_onnx and `cerebroc compile --quantize` (kept
apart from the passes so the CLI can list them without importing the compiler)."""

from __future__ import annotations

from cerebro.compiler.ir import IRError

QUANTIZE_MODES = ("int8-weights",)  # passes/int8_weights.py


def check_quantize(mode: str | None) -> None:
    """A one-line error for an unknown quantize= mode."""
    if mode is not None and mode not in QUANTIZE_MODES:
        raise IRError(f"unknown quantize mode {mode!r}: expected one of {', '.join(QUANTIZE_MODES)}")
