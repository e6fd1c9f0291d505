"""The Cerebro compiler: IR, passes, LLVM code generation and the .cbx writer."""

from cerebro.compiler.build import build

__all__ = ["build"]
