"""The .cbx container: meta layout, the writer that finishes LLVM's object, and the reader."""

from cerebro.compiler.cbx.format import EM_AARCH64, EM_X86_64, CbxError, Meta, TensorSpec, meta_size
from cerebro.compiler.cbx.reader import CbxFile, read_cbx
from cerebro.compiler.cbx.writer import finish_object, seal

__all__ = ["EM_AARCH64", "EM_X86_64", "CbxError", "CbxFile", "Meta", "TensorSpec", "finish_object", "meta_size",
           "read_cbx", "seal"]
