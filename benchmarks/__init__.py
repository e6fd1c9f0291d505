"""Cerebro vs XLA (jax.jit) vs ONNX Runtime latency benchmarks: run `python -m benchmarks` (see docs/benchmarks.md)."""
