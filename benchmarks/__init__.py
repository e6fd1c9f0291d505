"""Cerebro vs XLA (jax.jit) vs ONNX Runtime latency benchmarks: run `python -m benchmarks` (see docs/benchmarks.md)."""

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"  # where every run writes its tables, plots and json
