"""Small ONNX models built in code for the tests that feed them to ONNX Runtime's quantizers and to Cerebro."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # benchmarks/ is a top-level folder, not part of the installed package

from benchmarks.onnx_dense import dense_stack  # noqa: E402


def mlp(layers: list[tuple[np.ndarray, np.ndarray]], name: str = "mlp") -> onnx.ModelProto:
    """x[1, K] -> MatMul + Add per (w, b) layer, Relu between layers -> y (opset 21)."""
    return dense_stack(layers, opset=21, graph=name, output="y")
