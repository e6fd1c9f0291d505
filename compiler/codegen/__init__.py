"""LLVM code generation: importing this package registers every op's emitter in EMITTERS.

Each module listed here is one family of ops; a missing module is an error
(not a silently smaller op set), so a broken checkout fails loudly at import.
"""

from __future__ import annotations

import importlib

from cerebro.compiler.codegen.registry import EMITTERS, PARALLEL, SIZES, UNITS, EmitContext, emitter

EMITTER_MODULES = ("elementwise", "layout", "matmul", "matmul_int", "conv_int", "conv", "winograd", "reduce", "window",
                   "gather", "rows", "sort", "scatter", "cumulative", "tree_ensemble", "loop_op")

for _name in EMITTER_MODULES:
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{_name}":
            raise
        raise ImportError(f"cerebro.compiler.codegen: emitter module {_name!r} is missing "
                          f"(listed in EMITTER_MODULES)") from error

__all__ = ["EMITTERS", "PARALLEL", "SIZES", "UNITS", "EmitContext", "emitter"]
