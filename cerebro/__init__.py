"""Cerebro: an ahead-of-time model compiler for JAX/Flax, ONNX and TensorFlow models.

`compile` traces with JAX (imported on first use); `load` runs a .cbx with
numpy and the C runtime only, so deployed models never import JAX or TensorFlow.
"""

from cerebro.api import CompiledFunction, Model, compile, compile_onnx, compile_saved_model, load

__all__ = ["CompiledFunction", "Model", "compile", "compile_onnx", "compile_saved_model", "load"]
__version__ = "0.1.0"
