"""Cerebro: an ahead-of-time model compiler for JAX/Flax, ONNX and TensorFlow models."""
