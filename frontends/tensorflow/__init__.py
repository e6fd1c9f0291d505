"""The TensorFlow frontend: SavedModel -> ONNX (tf2onnx, in process) -> Cerebro IR."""

from cerebro.frontends.tensorflow.saved_model import (
    compile_saved_model,
    import_saved_model,
    saved_model_to_onnx,
)

__all__ = ["compile_saved_model", "import_saved_model", "saved_model_to_onnx"]
