"""The ONNX frontend: ONNX models -> Cerebro IR (see docs/onnx.md)."""

from cerebro.frontends.onnx.importer import import_onnx
from cerebro.frontends.onnx.table import DynamicShapeError, OnnxImportError

__all__ = ["DynamicShapeError", "OnnxImportError", "import_onnx"]
