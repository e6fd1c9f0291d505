"""The TensorFlow frontend: SavedModel -> ONNX (tf2onnx, in process) -> Cerebro IR.

It builds IR and stops; cerebro.compile_saved_model (cerebro/api.py) compiles it.
"""

from cerebro.frontends.tensorflow.saved_model import import_saved_model, saved_model_to_onnx

__all__ = ["import_saved_model", "saved_model_to_onnx"]
