"""The ONNX frontend: ONNX models -> Cerebro IR (see docs/onnx.md)."""

from cerebro.frontends.onnx.importer import import_onnx
from cerebro.frontends.onnx.table import OnnxImportError

__all__ = ["OnnxImportError", "import_onnx"]
