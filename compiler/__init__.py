"""The Cerebro compiler: IR, passes, LLVM code generation and the .cbx writer.

`build` (from the driver module) is imported lazily so that loading a .cbx
(which needs only compiler.cbx) does not pull in llvmlite.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build"]


def __getattr__(name: str) -> Any:
    if name == "build":
        from cerebro.compiler.driver import build

        return build
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
