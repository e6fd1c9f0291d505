"""The Cerebro compiler: IR, passes, LLVM code generation and the .cbx writer.

`build` is imported lazily so that loading a .cbx (which needs only
compiler.cbx) does not pull in llvmlite.

The function `build` lives in the submodule of the same name, and importing a
submodule makes the import system set the package attribute to the module.
A property on the package's class keeps `cerebro.compiler.build` the function
whichever is imported first (the module stays reachable via sys.modules, so
`from cerebro.compiler.build import lower` works as usual).
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["build"]


class _Package(types.ModuleType):
    @property
    def build(self) -> Any:
        from cerebro.compiler.build import build

        return build

    @build.setter
    def build(self, module: object) -> None:
        """The import system announcing the submodule: the function keeps the name."""


sys.modules[__name__].__class__ = _Package
